// Replays a finished run's timeline at 1× or 4×, as its projection has it at each instant:
// every bar appears at its recorded start (÷ speed) and grows until its recorded end, every
// task row shows the state its steps (data-steps, from the server's projection) give for
// that instant, and the run's status, progress and summary are those of its moment then
// (GET /runs/ID/replay: the server's rendering of app.Moments, fetched when a replay
// starts), with the clock at that instant. Only the animation runs on the browser's clock;
// every offset, duration, state and count is the server's, and they are drawn with the
// server's own badges and classes (the page's <template id="state-kit">, the moments'
// fragments). At the end the page is as the server drew it.
//
// Buttons: <button data-replay="4" data-replay-target="GROUP-ID">. Each replayed bar gets
// data-replay-start / data-replay-end (ms since the replay began, as observed), so a test
// can check the animation against the recorded offsets, and the group data-replay-at, the
// instant shown; showAt(group, t) shows the instant t (ms since the run was created) and
// leaves it there.

// The replay's clock reads as a live one does (live.js's formatElapsed). It is not imported:
// the page loads live.js under its hashed URL, and a second URL would run a second copy.
function formatElapsed(ms) {
  return `${(Math.floor(Math.max(0, ms) / 100) / 10).toFixed(1)} s`;
}

function kit(doc) {
  return doc.getElementById('state-kit')?.content;
}

/** The state steps ("0 queued;1.2 running;…") give at instant t. */
export function stateAt(steps, t) {
  let state = '';
  for (const step of String(steps).split(';')) {
    const [at, s] = step.split(' ');
    if (Number(at) <= t) {
      state = s;
    }
  }
  return state;
}

/** The instant of the step in force at t. */
function stepStart(steps, t) {
  let start = 0;
  for (const step of String(steps).split(';')) {
    const at = Number(step.split(' ')[0]);
    if (at <= t) {
      start = at;
    }
  }
  return start;
}

function setRowState(row, state, t, delay, doc) {
  const parts = kit(doc);
  if (row.getAttribute('data-state') !== state) {
    row.setAttribute('data-state', state);
    const badge = parts?.querySelector(`[data-kit-badge="${state}"]`);
    const cell = row.querySelector('[data-badge]');
    if (badge && cell) {
      cell.replaceChildren(...Array.from(badge.cloneNode(true).childNodes));
    }
  }
  const bar = row.querySelector('[data-rowbar]');
  const shape = parts?.querySelector(`[data-kit-rowbar="${state}"]`);
  if (!bar || !shape) {
    return;
  }
  if (bar.getAttribute('class') !== shape.getAttribute('class')) {
    bar.setAttribute('class', shape.getAttribute('class'));
  }
  if (state === 'running' && delay > 0) {
    const done = (t - stepStart(row.getAttribute('data-steps'), t)) / delay;
    bar.style.width = `${Math.min(100, Math.max(0, done * 100)).toFixed(1)}%`;
  } else {
    bar.style.width = row.getAttribute('data-final-width') || '0%';
  }
}

/** Remembers how the server drew the group's bars and rows, to come back to. */
function prepareBars(group) {
  if (group.hasAttribute('data-replay-ready')) {
    return;
  }
  for (const el of group.querySelectorAll('rect[data-start-ms]')) {
    el.setAttribute('data-final-x', el.getAttribute('x'));
    el.setAttribute('data-final-width', el.getAttribute('width'));
    el.setAttribute('data-final-class', el.getAttribute('class'));
  }
  const root = group.closest('[data-run-id]');
  for (const row of root?.querySelectorAll('tr[data-steps]') || []) {
    row.setAttribute('data-final-width', row.querySelector('[data-rowbar]')?.style.width || '0%');
  }
  group.setAttribute('data-replay-ready', '');
}

const moments = new Map(); // run ID → Promise of its moments: element ID → [{at, el}]

/** A run's moments, from the server: for each element they hold, its versions in time order. */
function momentsOf(runId, doc) {
  if (!moments.has(runId)) {
    const load = fetch(`/runs/${encodeURIComponent(runId)}/replay`, { headers: { Accept: 'text/html' } })
      .then((res) => (res.ok ? res.text() : ''))
      .then((html) => {
        const holder = doc.createElement('template');
        holder.innerHTML = html;
        const byId = new Map();
        for (const frame of holder.content.querySelectorAll('template[data-at-ms]')) {
          const at = Number(frame.getAttribute('data-at-ms'));
          for (const el of Array.from(frame.content.children)) {
            if (!el.id) {
              continue;
            }
            if (!byId.has(el.id)) {
              byId.set(el.id, []);
            }
            byId.get(el.id).push({ at, el });
          }
        }
        return byId;
      })
      // Offline or gone: the replay still shows rows and bars.
      .catch(() => new Map());
    moments.set(runId, load);
  }
  return moments.get(runId);
}

const prepared = new WeakMap(); // group → Promise of its runs, ready to replay

/** Readies group's replay: its bars and rows remembered, each run's moments and end. */
function prepare(group, doc) {
  prepareBars(group);
  if (!prepared.has(group)) {
    const runs = Array.from(group.querySelectorAll('[data-tscale]')).map((scale) => {
      const id = scale.getAttribute('data-tscale');
      const clock = doc.getElementById(`elapsed-${id}`);
      return { id, wall: Number(scale.getAttribute('data-wall-ms')) || 0, clock, clockText: clock?.textContent, shown: new Map() };
    });
    prepared.set(
      group,
      Promise.all(
        runs.map(async (run) => {
          run.moments = await momentsOf(run.id, doc);
          // The end is what the server drew: kept to come back to.
          run.finals = new Map();
          for (const id of run.moments.keys()) {
            const el = doc.getElementById(id);
            if (el) {
              run.finals.set(id, el.cloneNode(true));
            }
          }
          return run;
        }),
      ),
    );
  }
  return prepared.get(group);
}

/** Shows each run's status, progress, summary and clock at instant t. */
function showRuns(runs, t, doc) {
  for (const run of runs) {
    const ended = t >= run.wall;
    for (const [id, versions] of run.moments) {
      let pick = 'end';
      if (!ended) {
        pick = 0;
        for (let i = 0; i < versions.length && versions[i].at <= t; i++) {
          pick = i;
        }
      }
      const el = doc.getElementById(id);
      if (!el || run.shown.get(id) === pick) {
        continue;
      }
      const next = pick === 'end' ? run.finals.get(id) : versions[pick].el;
      if (next) {
        el.replaceWith(doc.importNode(next, true));
        run.shown.set(id, pick);
      }
    }
    if (run.clock) {
      const text = ended ? run.clockText : formatElapsed(t);
      if (run.clock.textContent !== text) {
        run.clock.textContent = text;
      }
    }
  }
}

/** Shows rows and bars at instant t; the runs' moments must be ready. */
function draw(group, runs, t, doc) {
  const running = kit(doc)?.querySelector('[data-kit-bar="running"]')?.getAttribute('class') || 'gbar gbar-running';
  for (const el of group.querySelectorAll('rect[data-start-ms]')) {
    const start = Number(el.getAttribute('data-start-ms'));
    const end = start + Number(el.getAttribute('data-dur-ms'));
    if (t < start) {
      el.setAttribute('width', '0');
    } else if (t < end) {
      el.setAttribute('x', String(start));
      el.setAttribute('width', String(t - start));
      el.setAttribute('class', running);
    } else {
      el.setAttribute('x', el.getAttribute('data-final-x'));
      el.setAttribute('width', el.getAttribute('data-final-width'));
      el.setAttribute('class', el.getAttribute('data-final-class'));
    }
  }
  const root = group.closest('[data-run-id]');
  const delay = Number(root?.getAttribute('data-delay-ms')) || 0;
  for (const row of root?.querySelectorAll('tr[data-steps]') || []) {
    setRowState(row, stateAt(row.getAttribute('data-steps'), t), t, delay, doc);
  }
  showRuns(runs, t, doc);
  group.setAttribute('data-replay-at', String(t));
}

/** Shows the run at instant t (ms since it was created), as its projection at t has it. */
export async function showAt(group, t, doc = document) {
  draw(group, await prepare(group, doc), t, doc);
}

/** Replays the timelines in group at speed; resolves when the run's end is reached. */
export async function replay(group, speed, doc = document) {
  group.setAttribute('data-replay', 'running');
  group.setAttribute('data-replay-speed', String(speed));
  const runs = await prepare(group, doc);
  const bars = Array.from(group.querySelectorAll('rect[data-start-ms]')).map((el) => ({
    el,
    start: Number(el.getAttribute('data-start-ms')),
    end: Number(el.getAttribute('data-start-ms')) + Number(el.getAttribute('data-dur-ms')),
  }));
  const end = Math.max(0, ...runs.map((r) => r.wall), ...bars.map((b) => b.end));
  for (const b of bars) {
    b.el.removeAttribute('data-replay-start');
    b.el.removeAttribute('data-replay-end');
  }
  const t0 = performance.now();
  return new Promise((resolve) => {
    const frame = () => {
      const real = performance.now() - t0;
      const t = Math.min(real * speed, end);
      draw(group, runs, t, doc);
      for (const b of bars) {
        if (t >= b.start && !b.el.hasAttribute('data-replay-start')) {
          b.el.setAttribute('data-replay-start', real.toFixed(1));
        }
        if (t >= b.end && !b.el.hasAttribute('data-replay-end')) {
          b.el.setAttribute('data-replay-end', real.toFixed(1));
        }
      }
      if (t >= end) {
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
