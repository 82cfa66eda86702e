// Follows a run over server-sent events and keeps its page in step, without a framework.
//
// Load with <script type="module">. The page opts in with
//   <div data-run-id="…" data-stream-url="/runs/ID/stream?page=1" data-after="<last event shown>">
// and the server sends frames like
//   id: 1700000000000-0
//   event: task.finished
//   data: <tr id="task-3" …>…</tr>
// Each frame's data is one or more HTML elements rendered by the server from the run's
// projection. An element whose id is already in the document replaces it; otherwise an
// element with data-append-to="ID" is appended into that container (before the element
// named by data-before, when it is there). An `end` frame is the last one: the page stops
// following.
//
// Between frames the page keeps time on the server's clock, never the device's: every frame
// carries the instant the server rendered it (data-at-ms, milliseconds since the run was
// created), and the page counts on from the latest of those with its monotonic clock, held
// back by a delivery margin so that it never runs ahead of an event still on its way. With
// that time it ticks the clock in tenths, grows the running attempts' bars and moves the
// "now" cursor. The run's end brings its exact wall time.
//
// Also here, because the same pages need them: [data-copy] buttons and [data-poll] parts.

// Event names the server may send. EventSource has no wildcard listener, so a name missing
// here would be dropped silently; a page can override the list with
// data-stream-events="a b c" on that element. "message" covers frames without an event: line.
const STREAM_EVENTS = [
  'message',
  'ping',
  'run.created',
  'tasks.queued',
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

// How far behind the server's time the page shows a live run: about what an event takes to
// reach the page, so that a bar never grows past the end an event is bringing. The server
// draws a live run's page as much behind (liveMargin in web/pages.go).
export const MARGIN_MS = 100;

/**
 * A run's clock on the server's time. sync() takes an instant the server stamped (ms since
 * the run was created) with the moment it was received (performance.now()); now() is the
 * server's time since then, less MARGIN_MS, and never less than it said before. An instant
 * that is a fact of the run (the time of an event the page shows) is reached at once: the
 * page never shows an event ahead of its clock.
 */
export class RunClock {
  constructor(shownMs = 0) {
    this.offset = -Infinity; // server time − performance.now(), the best lower bound yet
    this.shown = shownMs;
    // Whether the page's stream has caught up: only then does no news mean the run goes on.
    // A page still loading, or a stream that broke, may have missed the run's end.
    this.live = false;
  }

  /** The stream is (re)connecting: hold the clock until it says it has caught up. */
  hold() {
    this.live = false;
  }

  /**
   * Takes an instant of the server's. A fact is the time of an event the page shows; an
   * instant that is not (a ping's, which the stream sends once it has sent every event it
   * had) says the stream has caught up.
   */
  sync(atMs, receivedAt, fact = true) {
    if (!Number.isFinite(atMs)) {
      return;
    }
    if (Number.isFinite(receivedAt)) {
      this.offset = Math.max(this.offset, atMs - receivedAt);
    }
    if (fact) {
      this.shown = Math.max(this.shown, atMs);
    } else {
      this.live = true;
    }
  }

  now(perf = performance.now()) {
    if (this.live && Number.isFinite(this.offset)) {
      this.shown = Math.max(this.shown, perf + this.offset - MARGIN_MS);
    }
    return this.shown;
  }
}

const clocks = new Map(); // run ID → RunClock

/** The clock of a run, created from what its page shows when first asked. */
export function clockOf(runId, doc = document) {
  let clock = clocks.get(runId);
  if (!clock) {
    const shown = Number(doc.getElementById(`elapsed-${runId}`)?.getAttribute('data-at-ms')) || 0;
    clock = new RunClock(shown);
    clocks.set(runId, clock);
  }
  return clock;
}

/**
 * Applies one frame's HTML to the document: replace by id, else append where
 * data-append-to says. Elements matching neither are ignored, so a fragment for a part of
 * the page that this view does not show is harmless. Additions:
 *   - an element with data-keep is only added, never replaced (a timeline lane keeps its bars);
 *   - <svg data-svg-fragment> wraps SVG elements so they parse as SVG: its children are
 *     applied, not the wrapper;
 *   - an element with data-at-ms and data-tscale="RUN" or data-sync="RUN" sets that run's
 *     clock; a data-sync one is not added to the page;
 *   - <i data-row="ID" data-steps="…"> gives row ID its steps (for the replay), and is not
 *     added either;
 *   - <i id="bar-…" data-bar="…"> is a big run's timeline bar as data: the bar is drawn
 *     from it (see applyBar).
 * receivedAt is when the frame arrived (performance.now()).
 */
export function applyFragments(html, doc = document, receivedAt = performance.now()) {
  // The server sends one element a line. Each line is parsed on its own: a <template> picks
  // its parsing mode from the first tag it meets, so a <tr> after a <div> would be dropped.
  for (const line of String(html).split('\n')) {
    if (line.trim()) {
      applyLine(line, doc, receivedAt);
    }
  }
  syncTimelines(doc);
}

function applyLine(html, doc, receivedAt) {
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
    // A ping's time (data-sync) is the server's now, which events still on their way may
    // precede: it sets the pace, not the time shown.
    const runId = el.getAttribute('data-sync') || el.getAttribute('data-tscale');
    if (runId && el.hasAttribute('data-at-ms')) {
      clockOf(runId, doc).sync(Number(el.getAttribute('data-at-ms')), receivedAt, !el.hasAttribute('data-sync'));
    }
    if (el.hasAttribute('data-sync')) {
      return;
    }
    if (el.hasAttribute('data-row')) {
      // A row's steps, for the replay of a run that has ended.
      doc.getElementById(el.getAttribute('data-row'))?.setAttribute('data-steps', el.getAttribute('data-steps'));
      return;
    }
    if (el.hasAttribute('data-bar')) {
      applyBar(el, doc);
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
      const before = el.getAttribute('data-before');
      const next = before ? doc.getElementById(before) : null;
      if (next && next.parentNode === container) {
        container.insertBefore(el, next);
      } else {
        container.append(el);
      }
    }
  };
  for (const el of Array.from(template.content.children)) {
    apply(el);
  }
  if (focusedId && doc.activeElement !== doc.getElementById(focusedId)) {
    doc.getElementById(focusedId)?.focus();
  }
}

/**
 * Draws a bar of a big run's timeline from the data its stream sends instead of the bar's
 * HTML (templates.BarData): <i id="bar-RUN-INDEX-ATTEMPT" data-bar="LANE OUTCOME X WIDTH
 * [START DUR]"> (START and DUR are X and WIDTH unless given; data-retry for a failed attempt
 * that is tried again). The bar is the one the server draws (templates.AppendBar): same
 * attributes, same title, the class of its outcome from the page's state kit.
 */
function applyBar(el, doc) {
  const [lane, outcome, x, width, start = x, dur = width] = el.getAttribute('data-bar').split(' ');
  const [, runId, index, attempt] = el.id.split('-');
  let bar = doc.getElementById(el.id);
  if (!bar) {
    const track = doc.getElementById(`track-${runId}-${lane}`);
    if (!track) {
      return;
    }
    // The track is SVG: its namespace is the bar's.
    bar = doc.createElementNS(track.namespaceURI, 'rect');
    bar.id = el.id;
    bar.setAttribute('data-append-to', track.id);
    bar.setAttribute('y', '0.12');
    bar.setAttribute('height', '0.76');
    bar.setAttribute('data-index', index);
    bar.setAttribute('data-attempt', attempt);
    bar.append(doc.createElementNS(track.namespaceURI, 'title'));
    track.append(bar);
  }
  const retry = el.hasAttribute('data-retry');
  const kitBar = doc.getElementById('state-kit')?.content.querySelector(`[data-kit-bar="${outcome}"]`);
  bar.setAttribute('x', x);
  bar.setAttribute('width', width);
  bar.setAttribute('class', kitBar?.getAttribute('class') || `gbar gbar-${outcome}`);
  bar.setAttribute('data-start-ms', start);
  bar.setAttribute('data-dur-ms', dur);
  bar.setAttribute('data-state', outcome);
  bar.toggleAttribute('data-retry', retry);
  // The words of templates.AttemptWord.
  const word = outcome === 'failed' && retry ? 'failed, retried' : outcome;
  bar.querySelector('title').textContent = `Task ${index}, attempt ${attempt}: ${word}`;
}

/**
 * What a timeline's axis spans for a run: its ideal time, or the time it has run (its wall
 * time once ended), with the server's head-room.
 */
function extentOf(scale, doc) {
  const ideal = Number(scale.getAttribute('data-ideal-ms')) || 0;
  const headroom = Number(scale.getAttribute('data-headroom')) || 1;
  let ran = Number(scale.getAttribute('data-wall-ms')) || 0;
  if (scale.hasAttribute('data-running')) {
    ran = clockOf(scale.getAttribute('data-tscale'), doc).now();
  }
  return Math.max(ideal, ran, 100) * headroom;
}

/**
 * Sizes every timeline group's tracks to one time axis: the longest extent of its runs. The
 * scale only stretches the axis; bars are placed by event times.
 */
export function syncTimelines(doc = document) {
  for (const group of doc.querySelectorAll('[data-timeline-group]')) {
    if (group.getAttribute('data-replay') === 'running') {
      continue;
    }
    let scale = 1;
    for (const s of group.querySelectorAll('[data-tscale]')) {
      scale = Math.max(scale, extentOf(s, doc));
    }
    const box = `0 0 ${Math.round(scale)} 1`;
    for (const track of group.querySelectorAll('svg[data-track]')) {
      if (track.getAttribute('viewBox') !== box) {
        track.setAttribute('viewBox', box);
      }
    }
    const label = `${(scale / 1000).toFixed(2)} s`;
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

/**
 * Formats a running clock in whole tenths, never rounded up, e.g. 3290 → "3.2 s": it never
 * reads more than the wall time the run ends with.
 */
export function formatElapsed(ms) {
  return `${(Math.floor(Math.max(0, ms) / 100) / 10).toFixed(1)} s`;
}

/** Moves one live run's page to its clock's now: clock, running bars, cursor, row bars. */
function tickRun(scale, doc) {
  const runId = scale.getAttribute('data-tscale');
  const timeline = doc.getElementById(`timeline-${runId}`);
  if (!scale.hasAttribute('data-running')) {
    // Ended: the server has drawn its end; only the cursor is left to take away.
    timeline?.querySelectorAll('[data-now-cursor]').forEach((c) => c.remove());
    return;
  }
  const now = clockOf(runId, doc).now();
  const clock = doc.getElementById(`elapsed-${runId}`);
  if (clock && clock.hasAttribute('data-running')) {
    const text = formatElapsed(now);
    if (clock.textContent !== text) {
      clock.textContent = text;
    }
  }
  if (timeline) {
    for (const bar of timeline.querySelectorAll('rect[data-state="running"]')) {
      const width = now - Number(bar.getAttribute('data-start-ms'));
      if (width > Number(bar.getAttribute('width'))) {
        bar.setAttribute('width', width.toFixed(1));
      }
    }
    for (const cursor of timeline.querySelectorAll('[data-now-cursor]')) {
      cursor.setAttribute('x1', now.toFixed(1));
      cursor.setAttribute('x2', now.toFixed(1));
    }
  }
  const rows = doc.getElementById(`tasks-${runId}`);
  if (rows) {
    for (const bar of rows.querySelectorAll('tr[data-state="running"] [data-rowbar][data-start-ms]')) {
      const delay = Number(bar.getAttribute('data-delay-ms'));
      const done = delay > 0 ? (now - Number(bar.getAttribute('data-start-ms'))) / delay : 0;
      bar.style.width = `${Math.min(100, Math.max(0, done * 100)).toFixed(1)}%`;
    }
  }
}

/**
 * Ticks every live run of the page on its server clock until the returned function is
 * called. Elements are looked up on each tick, so ones swapped in over the stream move too,
 * and ones the server re-renders as ended stop. Keep clocks out of aria-live regions: many
 * updates a second would drown a screen reader.
 */
export function startClock(doc = document) {
  const tick = () => {
    for (const scale of doc.querySelectorAll('[data-tscale]')) {
      tickRun(scale, doc);
    }
    syncTimelines(doc);
  };
  tick();
  const timer = setInterval(tick, TICK_MS);
  return () => {
    clearInterval(timer);
    tick();
  };
}

/** When the page's own HTML arrived, on performance.now()'s clock (0 when unknown). */
function pageReceivedAt() {
  const nav = performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
  return nav && nav.responseStart > 0 ? nav.responseStart : 0;
}

/** Sets the clocks of the live runs the page shows from the instant it was rendered. */
function syncFromPage(doc = document) {
  const receivedAt = pageReceivedAt();
  for (const scale of doc.querySelectorAll('[data-tscale][data-running][data-at-ms]')) {
    clockOf(scale.getAttribute('data-tscale'), doc).sync(Number(scale.getAttribute('data-at-ms')), receivedAt);
  }
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
      applyFragments(event.data, document, performance.now());
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
    clockOf(main.getAttribute('data-run-id')).hold();
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
    clockOf(main.getAttribute('data-run-id')).hold();
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
    let said = 'Copied';
    try {
      await copyText(button.getAttribute('data-copy'), doc);
    } catch {
      said = 'Copy failed';
    }
    announce(said);
    // Seen as well as heard: the button says it for COPIED_MS, then reads as before.
    if (!button.hasAttribute('data-label')) {
      button.setAttribute('data-label', button.textContent);
    }
    button.textContent = said;
    button.setAttribute('data-copied', said === 'Copied' ? 'ok' : 'failed');
    clearTimeout(copiedTimers.get(button));
    copiedTimers.set(
      button,
      setTimeout(() => {
        button.textContent = button.getAttribute('data-label');
        button.removeAttribute('data-copied');
      }, COPIED_MS),
    );
  });
}

// How long a copy button says "Copied".
const COPIED_MS = 2000;
const copiedTimers = new WeakMap();

/**
 * Refreshes every [data-poll="URL"] element from its URL every few seconds, with the same
 * replace-by-id rule (the capacity on the home page, say), until the element loses its
 * data-poll (a run's page drops it when the run ends).
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
      if (!el.hasAttribute('data-poll')) {
        continue;
      }
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
  syncFromPage();
  syncTimelines();
  // A run page follows one stream; the compare page one per running run. (The workers
  // page's stream is js/workers.js's.)
  const live = Array.from(document.querySelectorAll('[data-run-id][data-stream-url]'));
  if (!live.length) {
    return;
  }
  const stopClock = startClock();
  let running = live.length;
  for (const el of live) {
    follow(el, {
      onEnd: () => {
        el.querySelectorAll('[data-poll]').forEach((p) => p.removeAttribute('data-poll'));
        running -= 1;
        if (running === 0) {
          stopClock();
          // Nothing on the page runs any more: what only a running run offers goes.
          document.querySelectorAll('[data-while-live]').forEach((w) => w.remove());
          // ... and what only an ended one offers comes (presentation mode's Replay).
          document.querySelectorAll('[data-when-ended][hidden]').forEach((w) => {
            w.hidden = false;
          });
        }
      },
    });
  }
}

if (typeof document !== 'undefined') {
  init();
}
