// What the pages that a stream redraws share: the server sends the page's live parts as
// HTML, one element a line, and each replaces the element of the same id in the section;
// between frames, [data-running-since] times count on from the server's time of the last
// frame (data-at on an element of it), never the device's clock alone.

/** Duration for people, as templates.Duration writes it. */
export function formatDuration(ms) {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  const m = Math.floor(ms / 60000);
  const s = Math.floor((ms % 60000) / 1000);
  if (m < 60) return `${m} min ${String(s).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** Replaces, by id, each element of the lines of html that section holds. */
export function apply(section, html, doc = document) {
  for (const line of String(html).split('\n')) {
    if (!line.trim()) continue;
    const template = doc.createElement('template');
    template.innerHTML = line;
    const el = template.content.firstElementChild;
    const old = el && el.id ? doc.getElementById(el.id) : null;
    if (old && section.contains(old)) {
      old.replaceWith(el);
    }
  }
  section.dataset.updates = String(Number(section.dataset.updates || 0) + 1);
}

/**
 * Follows section's data-stream-url: each `event` frame is applied, and running times tick
 * between frames. Returns the EventSource, or null without a stream.
 */
export function follow(section, event) {
  let at = { server: 0, local: 0 };
  const stamp = () => {
    const t = Date.parse(section.querySelector('[data-at]')?.getAttribute('data-at') || '');
    at = Number.isFinite(t) ? { server: t, local: performance.now() } : { server: 0, local: 0 };
  };
  const tick = () => {
    if (!at.server) return;
    const now = at.server + (performance.now() - at.local);
    section.querySelectorAll('[data-running-since]').forEach((el) => {
      const since = Date.parse(el.getAttribute('data-running-since'));
      if (Number.isFinite(since)) el.textContent = formatDuration(Math.max(0, now - since));
    });
  };
  stamp();
  setInterval(tick, 250);
  const url = section.getAttribute('data-stream-url');
  if (!url || typeof EventSource === 'undefined') return null;
  // Each frame is the whole live part: after a reconnect the next one brings everything.
  const source = new EventSource(url);
  source.addEventListener(event, (e) => {
    apply(section, e.data);
    stamp();
    tick();
  });
  source.addEventListener('open', () => { section.dataset.connected = '1'; });
  window.addEventListener('pagehide', () => source.close());
  return source;
}
