// Keeps the workers page's table in step with /api/workers/stream: a `workers` event every
// 2 s carries the whole list (GET /api/workers), and the table is redrawn from it with the
// same markup the server renders (templates/workers.templ, WorkerRow).

/** host:pid of a server. */
const processOf = (w) => `${w.host}:${w.pid}`;

/** 2006-01-02 15:04:05 UTC, as the server writes times. */
export function utcClock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() <= 1) {
    return '—';
  }
  return d.toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
}

const plural = (n, one, many) => (n === 1 ? `1 ${one}` : `${n} ${many}`);

/** "2 workers · 10 slots · 3 tasks active", as WorkersView.WorkersSummary. */
export function summary(list) {
  const active = list.servers.reduce((n, s) => n + s.active.length, 0);
  return `${plural(list.servers.length, 'worker', 'workers')} · ${plural(list.capacity, 'slot', 'slots')} · ${plural(active, 'task', 'tasks')} active`;
}

function el(doc, tag, attrs = {}, ...children) {
  const e = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') {
      e.className = v;
    } else {
      e.setAttribute(k, v);
    }
  }
  for (const c of children) {
    e.append(c);
  }
  return e;
}

/** One server's row, as WorkerRow renders it. */
export function workerRow(w, doc = document) {
  const queues = el(doc, 'td', { class: 'hidden py-2 pr-3 sm:table-cell' });
  (w.queues || []).forEach((q, i) => {
    if (i > 0) {
      queues.append(', ');
    }
    queues.append(el(doc, 'span', { class: 'font-mono text-xs' }, q));
  });
  const active = el(doc, 'td', { class: 'py-2 pr-3', 'data-active': String(w.active.length) });
  if (w.active.length === 0) {
    active.append(el(doc, 'span', { class: 'muted' }, 'idle'));
  } else {
    const ul = el(doc, 'ul', { class: 'space-y-0.5' });
    for (const t of w.active) {
      let item;
      if (t.run_id) {
        item = el(doc, 'a', { class: 'underline', href: `/runs/${t.run_id}#task-${t.run_id}-${t.index}`, 'data-active-task': t.task_id },
          'run ', el(doc, 'span', { class: 'font-mono' }, t.run_id.slice(-8)), ` · task ${t.index}`);
      } else {
        item = el(doc, 'span', { class: 'font-mono text-xs' }, t.task_id);
      }
      ul.append(el(doc, 'li', {}, item));
    }
    active.append(ul);
  }
  return el(doc, 'tr', { class: 'border-t border-slate-200 align-top dark:border-slate-800', 'data-worker': processOf(w) },
    el(doc, 'th', { scope: 'row', class: 'py-2 pr-3 font-mono text-xs font-normal' }, processOf(w)),
    el(doc, 'td', { class: 'py-2 pr-3 text-right tabular' }, String(w.concurrency)),
    queues,
    active,
    el(doc, 'td', { class: 'hidden py-2 pr-3 md:table-cell' }, el(doc, 'time', { datetime: w.started }, utcClock(w.started))),
    el(doc, 'td', { class: 'py-2' }, w.status));
}

/** Redraws the section from a WorkerList. */
export function render(section, list, doc = document) {
  const rows = section.querySelector('[data-workers-rows]');
  rows.replaceChildren(...list.servers.map((w) => workerRow(w, doc)));
  section.querySelector('[data-workers-empty]').classList.toggle('hidden', list.servers.length > 0);
  const text = summary(list);
  const sum = section.querySelector('[data-workers-summary]');
  // Screen readers hear a change of the summary, not every 2 s redraw.
  if (sum.textContent !== text) {
    sum.textContent = text;
    section.querySelector('[data-workers-live]').textContent = `Now ${text}.`;
  }
  const at = section.querySelector('[data-workers-at]');
  at.setAttribute('datetime', list.at);
  at.textContent = utcClock(list.at);
  section.dataset.updates = String(Number(section.dataset.updates || 0) + 1);
}

function init() {
  const section = document.querySelector('[data-workers][data-stream-url]');
  if (!section || typeof EventSource === 'undefined') {
    return;
  }
  // EventSource reconnects by itself after a drop; each event is the whole list.
  const source = new EventSource(section.getAttribute('data-stream-url'));
  source.addEventListener('workers', (event) => {
    try {
      render(section, JSON.parse(event.data));
    } catch {
      // A malformed frame is skipped; the next one, 2 s later, redraws everything.
    }
  });
  window.addEventListener('pagehide', () => source.close());
}

init();
