// Replays a finished run's timeline at 1× or 4×, from the times its events recorded: every
// bar appears at its recorded start offset (÷ speed) and grows for its recorded duration.
// Only the animation runs on the browser's clock; every offset and duration is the server's.
//
// Buttons: <button data-replay="4" data-replay-target="GROUP-ID">. Each replayed bar gets
// data-replay-start / data-replay-end (ms since the replay began, as observed), so a test
// can check the animation against the recorded offsets.

// Literal class names, so Tailwind keeps them in the built CSS.
const BAR_CLASS = {
  running: 'gbar gbar-running',
  done: 'gbar gbar-done',
  failed: 'gbar gbar-failed',
  retrying: 'gbar gbar-retrying',
};
const BADGE = {
  queued: ['badge badge-queued', '…'],
  running: ['badge badge-running', '▶'],
  done: ['badge badge-done', '✓'],
  failed: ['badge badge-failed', '✕'],
  retrying: ['badge badge-retrying', '↻'],
};

function setRowState(row, state) {
  if (!row || row.getAttribute('data-state') === state) {
    return;
  }
  row.setAttribute('data-state', state);
  const cell = row.querySelector('[data-badge]');
  if (cell) {
    const [cls, icon] = BADGE[state] || BADGE.queued;
    cell.innerHTML = '';
    const badge = document.createElement('span');
    badge.className = cls;
    badge.setAttribute('data-state', state);
    const glyph = document.createElement('span');
    glyph.setAttribute('aria-hidden', 'true');
    glyph.textContent = icon;
    badge.append(glyph, ` ${state}`);
    cell.append(badge);
  }
}

/** Replays the timelines in group at speed; resolves when the last bar has ended. */
export function replay(group, speed, doc = document) {
  const bars = Array.from(group.querySelectorAll('rect[data-start-ms]')).map((el) => ({
    el,
    index: el.getAttribute('data-index'),
    start: Number(el.getAttribute('data-start-ms')),
    dur: Number(el.getAttribute('data-dur-ms')),
    state: el.getAttribute('data-state'),
    cls: el.getAttribute('class'),
    runId: (el.id.match(/^bar-([^-]+)-/) || [])[1],
  }));
  const end = Math.max(0, ...bars.map((b) => b.start + b.dur));
  // Each task's row: running from its first attempt's start, its final state at its last end.
  const rows = new Map();
  for (const b of bars) {
    const key = `${b.runId}-${b.index}`;
    const r = rows.get(key) || { start: Infinity, end: -1, state: 'done', el: doc.getElementById(`task-${key}`) };
    r.start = Math.min(r.start, b.start);
    if (b.start + b.dur >= r.end) {
      r.end = b.start + b.dur;
      r.state = b.state;
    }
    rows.set(key, r);
  }
  for (const b of bars) {
    b.el.setAttribute('width', '0');
    b.el.removeAttribute('data-replay-start');
    b.el.removeAttribute('data-replay-end');
    b.shown = false;
    b.ended = false;
  }
  for (const r of rows.values()) {
    setRowState(r.el, 'queued');
  }
  const clocks = Array.from(group.closest('[data-run-id]')?.querySelectorAll('[id^="elapsed-"]') || []);
  const finalText = clocks.map((c) => c.textContent);
  group.setAttribute('data-replay', 'running');
  group.setAttribute('data-replay-speed', String(speed));
  const t0 = performance.now();
  return new Promise((resolve) => {
    const frame = () => {
      const real = performance.now() - t0;
      const t = real * speed;
      for (const b of bars) {
        if (!b.shown && t >= b.start) {
          b.shown = true;
          b.el.setAttribute('data-replay-start', real.toFixed(1));
          b.el.setAttribute('class', BAR_CLASS.running);
        }
        if (b.shown && !b.ended) {
          if (t >= b.start + b.dur) {
            b.ended = true;
            b.el.setAttribute('width', String(b.dur));
            b.el.setAttribute('class', b.cls);
            b.el.setAttribute('data-replay-end', real.toFixed(1));
          } else {
            b.el.setAttribute('width', String(t - b.start));
          }
        }
      }
      for (const r of rows.values()) {
        if (t >= r.end) {
          setRowState(r.el, r.state);
        } else if (t >= r.start) {
          setRowState(r.el, 'running');
        }
      }
      for (const c of clocks) {
        c.textContent = `${(Math.min(t, end) / 1000).toFixed(1)} s`;
      }
      if (t >= end) {
        clocks.forEach((c, i) => {
          c.textContent = finalText[i];
        });
        group.setAttribute('data-replay', 'done');
        resolve();
        return;
      }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
}

document.addEventListener('click', (event) => {
  const button = event.target.closest && event.target.closest('[data-replay]');
  if (!button) {
    return;
  }
  const group = document.getElementById(button.getAttribute('data-replay-target'));
  if (group && group.getAttribute('data-replay') !== 'running') {
    replay(group, Number(button.getAttribute('data-replay')) || 1);
  }
});
