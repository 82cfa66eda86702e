// Keeps the tasks page live: the server sends its live part (the counts, the rows, the next
// page's link) as a `tasks` event whenever it changes, at most ten times a second, one
// element a line; each replaces the element of the same id. Between updates, running tasks'
// runtimes count on from the server's time of the rows (data-at on the rows' tbody).

function formatDuration(ms) {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  const m = Math.floor(ms / 60000);
  const s = Math.floor((ms % 60000) / 1000);
  if (m < 60) return `${m} min ${String(s).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** Replaces, by id, each element of the lines of html. */
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

let rowsAt = { server: 0, local: 0 }; // the rows' server time, and when they arrived

function tick(section) {
  if (!rowsAt.server) return;
  const now = rowsAt.server + (performance.now() - rowsAt.local);
  section.querySelectorAll('[data-running-since]').forEach((td) => {
    const since = Date.parse(td.getAttribute('data-running-since'));
    if (Number.isFinite(since)) td.textContent = formatDuration(Math.max(0, now - since));
  });
}

function stamp(section) {
  const at = Date.parse(section.querySelector('#tasks-rows')?.getAttribute('data-at') || '');
  rowsAt = Number.isFinite(at) ? { server: at, local: performance.now() } : { server: 0, local: 0 };
}

function init() {
  const section = document.querySelector('[data-tasks]');
  if (!section) return;
  stamp(section);
  setInterval(() => tick(section), 250);
  const url = section.getAttribute('data-stream-url');
  if (!url || typeof EventSource === 'undefined') return;
  // Each event is the whole live part: after a reconnect the next one brings everything.
  const source = new EventSource(url);
  source.addEventListener('tasks', (event) => {
    apply(section, event.data);
    stamp(section);
    tick(section);
  });
  source.addEventListener('open', () => { section.dataset.connected = '1'; });
  window.addEventListener('pagehide', () => source.close());
}

init();
