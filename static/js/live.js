// Follows a run over server-sent events and keeps its page in step, without a framework.
//
// Load with <script type="module">. The page opts in with
//   <div data-run-id="…" data-stream-url="/runs/ID/stream" data-after="<last event shown>">
// and the server sends frames like
//   id: 1700000000000-0
//   event: task.finished
//   data: <li id="task-3" …>…</li>
// Each frame's data is one or more HTML elements rendered by the server. An element whose id
// is already in the document replaces it; otherwise an element with data-append-to="ID" is
// appended into that container. An `end` frame is the last one: the page stops following.
//
// Also here, because the same pages need them: a ticking clock for [data-since][data-running]
// elements while the run is live, and [data-copy] buttons.

// Event names the server may send. EventSource has no wildcard listener, so a name missing
// here would be dropped silently; a page can override the list with
// data-stream-events="a b c" on that element. "message" covers frames without an event: line.
const STREAM_EVENTS = [
  'message',
  'run.created',
  'task.queued',
  'task.started',
  'task.finished',
  'task.failed',
  'run.finished',
  'run.canceled',
  'run.interrupted',
];

// After one of these the run is over; if the connection drops before `end` arrives, there is
// nothing left to wait for, and the server would answer a resume with 204 anyway.
const TERMINAL_EVENTS = new Set(['run.finished', 'run.canceled', 'run.interrupted']);

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5000;
const TICK_MS = 100;

/**
 * Applies one frame's HTML to the document: replace by id, else append where
 * data-append-to says. Elements matching neither are ignored, so a fragment for a part of
 * the page that this view does not show is harmless. Three additions:
 *   - an element with data-keep is only added, never replaced (a timeline lane keeps its bars);
 *   - <svg data-svg-fragment> wraps SVG elements so they parse as SVG: its children are
 *     applied, not the wrapper;
 *   - <i data-bump="ID" data-failed="0|1"> counts one more ended task in progress ID.
 */
export function applyFragments(html, doc = document) {
  // The server sends one element a line. Each line is parsed on its own: a <template> picks
  // its parsing mode from the first tag it meets, so a <tr> after a <div> would be dropped.
  for (const line of String(html).split('\n')) {
    if (line.trim()) {
      applyLine(line, doc);
    }
  }
  syncTimelines(doc);
}

function applyLine(html, doc) {
  const template = doc.createElement('template');
  template.innerHTML = html;
  // Replacing an element that holds the keyboard focus (a Cancel button, say) would drop
  // focus to <body>; put it back on the element with the same id in the new content.
  const focusedId = doc.activeElement && doc.activeElement.id;
  const apply = (el) => {
    if (el.hasAttribute('data-svg-fragment')) {
      for (const child of Array.from(el.children)) {
        apply(child);
      }
      return;
    }
    if (el.hasAttribute('data-bump')) {
      bumpProgress(doc.getElementById(el.getAttribute('data-bump')), el.getAttribute('data-failed') === '1');
      return;
    }
    const existing = el.id ? doc.getElementById(el.id) : null;
    if (existing) {
      if (!el.hasAttribute('data-keep')) {
        existing.replaceWith(el);
      }
      return;
    }
    const containerId = el.getAttribute('data-append-to');
    const container = containerId ? doc.getElementById(containerId) : null;
    if (container) {
      container.append(el);
    }
  };
  for (const el of Array.from(template.content.children)) {
    apply(el);
  }
  if (focusedId && doc.activeElement !== doc.getElementById(focusedId)) {
    doc.getElementById(focusedId)?.focus();
  }
}

/** Counts one more ended task in a progress block rendered by the server. */
function bumpProgress(block, failed) {
  if (!block) {
    return;
  }
  const done = Number(block.getAttribute('data-done')) + 1;
  const failedCount = Number(block.getAttribute('data-failed')) + (failed ? 1 : 0);
  const total = block.getAttribute('data-total');
  block.setAttribute('data-done', String(done));
  block.setAttribute('data-failed', String(failedCount));
  const bar = block.querySelector('progress');
  if (bar) {
    bar.value = done;
    bar.textContent = `${done} of ${total}`;
  }
  const text = block.querySelector('[data-progress-text]');
  if (text) {
    text.textContent = `${done} of ${total} tasks ended`;
  }
  const failedText = block.querySelector('[data-failed-text]');
  if (failedText) {
    failedText.textContent = failedCount > 0 ? `, ${failedCount} failed` : '';
  }
}

/**
 * Sizes every timeline group's tracks to one time axis: the longest of its runs' ideal
 * time, wall time (ended runs, from the events) and, for running runs, time so far. The
 * scale only stretches the axis; bars are placed by event times.
 */
export function syncTimelines(doc = document, now = Date.now()) {
  for (const group of doc.querySelectorAll('[data-timeline-group]')) {
    let scale = 1;
    for (const s of group.querySelectorAll('[data-tscale]')) {
      scale = Math.max(scale, Number(s.getAttribute('data-ideal-ms')) || 0);
      if (s.hasAttribute('data-running')) {
        const since = parseTime(s.getAttribute('data-since'));
        if (!Number.isNaN(since)) {
          scale = Math.max(scale, now - since);
        }
      } else {
        scale = Math.max(scale, Number(s.getAttribute('data-wall-ms')) || 0);
      }
    }
    const box = `0 0 ${Math.round(scale)} 1`;
    for (const track of group.querySelectorAll('svg[data-track]')) {
      if (track.getAttribute('viewBox') !== box) {
        track.setAttribute('viewBox', box);
      }
    }
    const label = `${(scale / 1000).toFixed(1)} s`;
    for (const el of group.querySelectorAll('[data-scale-label]')) {
      if (el.textContent !== label) {
        el.textContent = label;
      }
    }
  }
}

/**
 * Parses an RFC 3339 time to epoch milliseconds (NaN when invalid). Date.parse is only
 * specified for up to three fractional digits and the server writes six, so trim them first.
 */
export function parseTime(value) {
  return Date.parse(String(value).replace(/(\.\d{3})\d+/, '$1'));
}

/** Formats a duration for the ticking clock, e.g. 3200 → "3.2 s". */
export function formatElapsed(ms) {
  return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
}

/**
 * Ticks every [data-since][data-running] element as elapsed seconds until the returned
 * function is called. Elements are looked up on each tick, so ones swapped in over the
 * stream start ticking, and ones the server re-renders without data-running stop.
 * Keep these elements out of aria-live regions: ten updates a second would drown a screen
 * reader.
 */
export function startClock(doc = document) {
  const tick = () => {
    const now = Date.now();
    syncTimelines(doc, now);
    for (const el of doc.querySelectorAll('[data-since][data-running]')) {
      const since = parseTime(el.getAttribute('data-since'));
      if (!Number.isNaN(since)) {
        el.textContent = formatElapsed(now - since);
      }
    }
  };
  tick();
  const timer = setInterval(tick, TICK_MS);
  return () => clearInterval(timer);
}

/**
 * Follows the stream named by the element's data-stream-url until an `end` frame, then dispatches
 * `taskrace:end` on the document and calls onEnd. The end of a run whose data vanished comes
 * as an `end` frame too; a page that reconnects only after it vanished gets 404, and stops with
 * detail.gone set. Returns a function that stops following early (without the event).
 *
 * The browser's own EventSource retry is not used: it retries at a fixed pace, and it gives
 * up for good on any non-200 answer (a restarting server's 502 included). Instead every error
 * closes the source and a new one resumes with ?after=<last event id> (the server honours
 * Last-Event-ID too, but a new EventSource cannot set it), backing off 0.5 s, 1 s, … 5 s.
 */
export function follow(main, { onEnd } = {}) {
  const url = main.getAttribute('data-stream-url');
  const listed = (main.getAttribute('data-stream-events') || '').split(/\s+/).filter(Boolean);
  const events = listed.length ? listed : STREAM_EVENTS;

  let source = null;
  // The page was rendered up to this event: the stream starts after it.
  let lastId = main.getAttribute('data-after') || '';
  let delay = BACKOFF_MIN_MS;
  let retryTimer = 0;
  let sawTerminal = false;
  let stopped = false;

  const streamURL = () => {
    if (!lastId) {
      return url;
    }
    const sep = url.includes('?') ? '&' : '?';
    return `${url}${sep}after=${encodeURIComponent(lastId)}`;
  };

  const onFrame = (event) => {
    // lastEventId persists across frames without an id: line, so it is always the newest.
    if (event.lastEventId) {
      lastId = event.lastEventId;
    }
    if (event.data) {
      applyFragments(event.data);
    }
    if (TERMINAL_EVENTS.has(event.type)) {
      sawTerminal = true;
    }
  };

  const stop = () => {
    stopped = true;
    clearTimeout(retryTimer);
    if (source) {
      source.close();
    }
  };

  const finish = (extra = {}) => {
    if (stopped) {
      return;
    }
    stop();
    if (onEnd) {
      onEnd();
    }
    document.dispatchEvent(
      new CustomEvent('taskrace:end', {
        detail: { runId: main.getAttribute('data-run-id'), lastEventId: lastId, ...extra },
      }),
    );
  };

  const retry = () => {
    retryTimer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, BACKOFF_MAX_MS);
  };

  // EventSource says only that the server answered something other than a stream. Ask once
  // what: 204 means the run ended at the last event shown, 404 that the run is gone (its data
  // vanished); anything else (a busy server's 503, a restarting proxy's 502) is worth a retry.
  const probe = async () => {
    const abort = new AbortController();
    try {
      const res = await fetch(streamURL(), { headers: { Accept: 'text/event-stream' }, signal: abort.signal });
      abort.abort(); // a stream that did open is not read here: connect() opens its own
      return res.status;
    } catch {
      return 0;
    }
  };

  const onError = async (event) => {
    const refused = event.currentTarget.readyState === EventSource.CLOSED;
    event.currentTarget.close();
    if (stopped) {
      return;
    }
    if (sawTerminal) {
      finish();
      return;
    }
    if (refused) {
      const status = await probe();
      if (stopped) {
        return;
      }
      if (status === 204) {
        finish();
        return;
      }
      if (status === 404) {
        finish({ gone: true });
        return;
      }
    }
    retry();
  };

  function connect() {
    source = new EventSource(streamURL());
    source.addEventListener('open', () => {
      delay = BACKOFF_MIN_MS;
    });
    for (const type of events) {
      source.addEventListener(type, onFrame);
    }
    source.addEventListener('end', (event) => {
      onFrame(event);
      finish();
    });
    // Note: a frame named "error" would land here too, so the server must not use that name.
    source.addEventListener('error', onError);
  }

  connect();
  return stop;
}

// A polite live region for short confirmations. It must exist before its text changes or
// screen readers do not announce it, so it is created up front when the layout has none.
function announcer(doc = document) {
  let region = doc.querySelector('[data-announce]');
  if (!region) {
    region = doc.createElement('div');
    region.setAttribute('role', 'status');
    region.setAttribute('aria-live', 'polite');
    region.setAttribute('data-announce', '');
    region.className = 'sr-only';
    doc.body.append(region);
  }
  let timer = 0;
  return (text) => {
    // Live regions announce changes: clear first so a second "Copied" is heard too.
    region.textContent = '';
    clearTimeout(timer);
    timer = setTimeout(() => {
      region.textContent = text;
    }, 50);
  };
}

async function copyText(text, doc = document) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      // Denied (a permissions policy, an unfocused document): try the older way below.
    }
  }
  // The Clipboard API exists only in secure contexts; a demo served over plain http to a LAN
  // address (a laptop on a projector) falls back to the older selection-based copy.
  const active = doc.activeElement;
  const area = doc.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.top = '0';
  area.style.opacity = '0';
  doc.body.append(area);
  area.select();
  const ok = doc.execCommand('copy');
  area.remove();
  if (active && active.focus) {
    active.focus();
  }
  if (!ok) {
    throw new Error('copy refused');
  }
}

/** Makes every [data-copy] element, present or future, copy its value on click. */
export function wireCopyButtons(doc = document) {
  const announce = announcer(doc);
  doc.addEventListener('click', async (event) => {
    const button = event.target.closest && event.target.closest('[data-copy]');
    if (!button) {
      return;
    }
    event.preventDefault();
    try {
      await copyText(button.getAttribute('data-copy'), doc);
      announce('Copied');
      // For a visual cue: templates may style [data-copied].
      button.setAttribute('data-copied', '');
      setTimeout(() => button.removeAttribute('data-copied'), 2000);
    } catch {
      announce('Copy failed');
    }
  });
}

/**
 * Refreshes every [data-poll="URL"] element from its URL every few seconds, with the same
 * replace-by-id rule (the capacity on the home page, say).
 */
export function startPolling(doc = document, every = 5000) {
  const els = Array.from(doc.querySelectorAll('[data-poll]'));
  if (!els.length) {
    return () => {};
  }
  const timer = setInterval(async () => {
    if (doc.hidden) {
      return;
    }
    for (const el of els) {
      try {
        const res = await fetch(el.getAttribute('data-poll'), { headers: { Accept: 'text/html' } });
        if (res.ok) {
          applyFragments(await res.text(), doc);
        }
      } catch {
        // The server restarts, the laptop sleeps: try again at the next tick.
      }
    }
  }, every);
  return () => clearInterval(timer);
}

function init() {
  wireCopyButtons();
  startPolling();
  // A run page follows one stream; the compare page one per running run.
  const live = Array.from(document.querySelectorAll('[data-stream-url]'));
  syncTimelines();
  if (!live.length) {
    return;
  }
  const stopClock = startClock();
  let running = live.length;
  for (const el of live) {
    follow(el, {
      onEnd: () => {
        running -= 1;
        if (running === 0) {
          stopClock();
          syncTimelines();
        }
      },
    });
  }
}

if (typeof document !== 'undefined') {
  init();
}
