// Follows a run over server-sent events and keeps its page in step, without a framework.
//
// Load with <script type="module">. The page opts in with
//   <main data-run-id="…" data-stream-url="/runs/ID/stream">
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
// data-stream-events="a b c" on <main>. "message" covers frames without an event: line.
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
 * the page that this view does not show is harmless.
 */
export function applyFragments(html, doc = document) {
  const template = doc.createElement('template');
  template.innerHTML = html;
  // Replacing an element that holds the keyboard focus (a Cancel button, say) would drop
  // focus to <body>; put it back on the element with the same id in the new content.
  const focusedId = doc.activeElement && doc.activeElement.id;
  for (const el of Array.from(template.content.children)) {
    const existing = el.id ? doc.getElementById(el.id) : null;
    if (existing) {
      existing.replaceWith(el);
      continue;
    }
    const containerId = el.getAttribute('data-append-to');
    const container = containerId ? doc.getElementById(containerId) : null;
    if (container) {
      container.append(el);
    }
  }
  if (focusedId && doc.activeElement !== doc.getElementById(focusedId)) {
    doc.getElementById(focusedId)?.focus();
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
 * Follows the stream named by main's data-stream-url until an `end` frame, then dispatches
 * `taskrace:end` on the document and calls onEnd. Returns a function that stops following
 * early (without the event).
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
  let lastId = '';
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

  const finish = () => {
    if (stopped) {
      return;
    }
    stop();
    if (onEnd) {
      onEnd();
    }
    document.dispatchEvent(
      new CustomEvent('taskrace:end', {
        detail: { runId: main.getAttribute('data-run-id'), lastEventId: lastId },
      }),
    );
  };

  const onError = (event) => {
    event.currentTarget.close();
    if (stopped) {
      return;
    }
    if (sawTerminal) {
      finish();
      return;
    }
    retryTimer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, BACKOFF_MAX_MS);
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

function init() {
  wireCopyButtons();
  const main = document.querySelector('main[data-stream-url]');
  if (!main) {
    return;
  }
  const stopClock = startClock();
  follow(main, { onEnd: stopClock });
}

if (typeof document !== 'undefined') {
  init();
}
