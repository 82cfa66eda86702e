package web

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/templates"
)

// What a viewer sees while a run is in progress, not only at its end.

// barGeometry reads, from the rendered page, where every bar of run id's timeline ends and
// where its "now" cursor is, in milliseconds of the run's time axis, with the clock's text.
const barGeometry = `((id) => {
  const bars = [];
  for (const svg of document.querySelectorAll('#timeline-' + id + ' svg[data-track]')) {
    const box = svg.getBoundingClientRect();
    const scale = svg.viewBox.baseVal.width;
    const at = (x) => (x - box.left) / box.width * scale;
    for (const r of svg.querySelectorAll('rect[data-start-ms]')) {
      const b = r.getBoundingClientRect();
      bars.push({State: r.dataset.state, EndMS: at(b.right), StartMS: +r.dataset.startMs, WidthPX: b.width});
    }
    for (const c of svg.querySelectorAll('[data-now-cursor]')) {
      const b = c.getBoundingClientRect();
      bars.push({State: 'cursor', EndMS: at((b.left + b.right) / 2)});
    }
  }
  const px = (() => { const s = document.querySelector('#timeline-' + id + ' svg[data-track]'); return s ? s.viewBox.baseVal.width / s.getBoundingClientRect().width : 0; })();
  return {Bars: bars, Clock: document.getElementById('elapsed-' + id).textContent, MSPerPX: px,
    Lanes: [...document.querySelectorAll('#lanes-' + id + ' .lane-long')].map(l => l.textContent)};
})`

type geometry struct {
	Bars []struct {
		State          string
		EndMS, StartMS float64
		WidthPX        float64
	}
	Clock   string
	MSPerPX float64
	Lanes   []string
}

// seconds parses a clock's text, "1.4 s".
func seconds(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), " s"), 64)
	if err != nil {
		t.Fatalf("the clock reads %q", s)
	}
	return f
}

// TestBrowserLiveRunIsTrueThenCanceled watches a 10 × 3 s distributed run: at about 1.5 s
// no bar reaches past the time elapsed, running bars have grown to now, lanes are in slot
// order and the workers tally counts the tasks taken. After Cancel, a viewer that did not
// reload sees no task running or queued, every bar ended by the cancel, the title, badge
// and buttons of a canceled run; the API agrees.
func TestBrowserLiveRunIsTrueThenCanceled(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	b := newBrowser(t, h.base)
	watcher := b.fresh()
	b.open(watcher, "/") // a fresh context starts slowly: before the run does
	b.open(b.ctx, "/")
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 10, "delay_ms": 3000})
	b.open(watcher, "/runs/"+r.ID)
	eval[bool](b, watcher, `(window.__marker = 1, true)`)
	title := eval[string](b, watcher, `document.title`)
	ctx := b.ctx
	b.open(ctx, "/runs/"+r.ID)
	b.until(ctx, 10*time.Second, "the clock to reach 1.5 s",
		`parseFloat(document.getElementById('elapsed-`+r.ID+`').textContent) >= 1.5`)

	for _, tab := range []context.Context{ctx, watcher} {
		g := eval[geometry](b, tab, barGeometry+`(`+strconvQuote(r.ID)+`)`)
		elapsed := float64(time.Since(r.CreatedAt.Time).Microseconds()) / 1000
		if elapsed > 2900 {
			t.Fatalf("the page took until %.0f ms to show 1.5 s: too late to see the first round running", elapsed)
		}
		slack := 2 * g.MSPerPX // a bar's edge is drawn to the pixel
		running := 0
		for _, bar := range g.Bars {
			if bar.EndMS > elapsed+slack {
				t.Errorf("a %s bar ends at %.0f ms, past the %.0f ms elapsed", bar.State, bar.EndMS, elapsed)
			}
			if bar.State == app.AttemptRunning {
				running++
				// Grown to now, less the delivery margin and a tick or two.
				if bar.EndMS < elapsed-600 {
					t.Errorf("a running bar ends at %.0f ms at %.0f ms elapsed: it does not grow", bar.EndMS, elapsed)
				}
			}
		}
		if running != 5 {
			t.Errorf("%d running bars at 1.5 s, want 5 (one per slot)", running)
		}
		if c := seconds(t, g.Clock) * 1000; c > elapsed || c < elapsed-600 {
			t.Errorf("the clock reads %s at %.0f ms elapsed", g.Clock, elapsed)
		}
		if !slices.IsSortedFunc(g.Lanes, func(a, b string) int { return strings.Compare(a, b) }) || len(g.Lanes) != 5 {
			t.Errorf("lanes %v: want the 5 slots in order", g.Lanes)
		}
	}
	if n := eval[int](b, watcher, `[...document.querySelectorAll('[data-proc-tasks]')].reduce((n, e) => n + +e.textContent, 0)`); n != 5 {
		t.Errorf("the workers tally counts %d tasks taken at 1.5 s, want 5", n)
	}
	b.screenshot(ctx, "run-live-bars", false)

	// Cancel from one tab; the other follows the stream.
	b.do(ctx, chromedp.Click(chromedp.CSS(`button[data-cancel]`)))
	for _, tab := range []context.Context{ctx, watcher} {
		b.until(tab, 10*time.Second, "the run to read canceled", `document.querySelector('#status-`+r.ID+`[data-status=canceled]') && document.querySelector('#elapsed-`+r.ID+`[data-wall-ms]')`)
		if n := eval[int](b, tab, `document.querySelectorAll('tr[data-task]:is([data-state=running],[data-state=queued],[data-state=retrying])').length`); n != 0 {
			t.Errorf("%d tasks still read running, queued or retrying after Cancel", n)
		}
		if n, done := eval[int](b, tab, `document.querySelectorAll('tr[data-task][data-state=canceled]').length`),
			eval[int](b, tab, `document.querySelectorAll('tr[data-task][data-state=done]').length`); n+done != 10 || n < 5 {
			t.Errorf("%d tasks read canceled and %d done, want the other tasks canceled", n, done)
		}
		wall := eval[float64](b, tab, `+document.getElementById('elapsed-`+r.ID+`').dataset.wallMs`)
		g := eval[geometry](b, tab, barGeometry+`(`+strconvQuote(r.ID)+`)`)
		canceled := 0
		for _, bar := range g.Bars {
			switch {
			case bar.State == "cursor":
				t.Error("the now cursor is still there after the end")
			case bar.State == app.AttemptRunning:
				t.Error("a bar still runs after Cancel")
			case bar.EndMS > wall+2*g.MSPerPX:
				t.Errorf("a %s bar ends at %.0f ms, past the cancel at %.0f ms", bar.State, bar.EndMS, wall)
			}
			if bar.State == app.AttemptCanceled {
				canceled++
			}
		}
		if canceled == 0 || canceled > 5 {
			t.Errorf("%d canceled bars, want those in flight, one per slot at most", canceled)
		}
		if eval[bool](b, tab, `!!document.querySelector('button[data-cancel]')`) {
			t.Error("a canceled run still offers Cancel")
		}
		if got := eval[string](b, tab, `document.title`); !strings.Contains(got, "canceled") || got == title {
			t.Errorf("the title after Cancel is %q (was %q)", got, title)
		}
		if got := eval[string](b, tab, `document.querySelector('[data-share-line]').textContent`); !strings.Contains(got, "canceled") {
			t.Errorf("the share line after Cancel reads %q", got)
		}
	}
	if !eval[bool](b, watcher, `window.__marker === 1`) {
		t.Error("the watching tab reloaded: the end must come over the stream")
	}
	b.screenshot(watcher, "run-canceled", false)
	d := h.apiRunDetail(r.ID)
	for _, task := range d.Tasks {
		if task.State != app.TaskStateCanceled && task.State != app.TaskStateDone {
			t.Errorf("the API has task %d %s after Cancel", task.Index, task.State)
		}
	}
	if d.Summary.Canceled+d.Summary.Done != 10 || d.Summary.Running != 0 || d.Summary.Queued != 0 || d.Summary.Retrying != 0 {
		t.Errorf("the API's summary after Cancel: %+v", d.Summary)
	}
	b.noConsoleErrors()
}

// apiRunDetail is GET /api/runs/{id}, with the first page of its tasks.
func (h *harness) apiRunDetail(id string) *RunDetail {
	h.t.Helper()
	res := h.get("/api/runs/" + id)
	if res.status != 200 {
		h.t.Fatalf("GET /api/runs/%s: %d %s", id, res.status, res.body)
	}
	var d RunDetail
	res.json(h.t, &d)
	return &d
}

func strconvQuote(s string) string { return strconv.Quote(s) }

// TestBrowserRetriesShowAndReplay runs tasks whose first attempt fails: the page shows each
// failed attempt (wide enough to see, striped), tasks reading retrying until they start
// again, and the retries counted as the API counts them. Then a replay shown at instants
// of the run shows what the run's projection at each of them says.
func TestBrowserRetriesShowAndReplay(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	b := newBrowser(t, h.base)
	ctx := b.ctx
	r := h.launch(map[string]any{"mode": "concurrent", "tasks": 12, "delay_ms": 600, "parallelism": 4, "failure_rate": 0.7})
	b.open(ctx, "/runs/"+r.ID)
	b.until(ctx, 10*time.Second, "a task to read retrying", `Object.values(window.__taskStates).some(s => s.includes('retrying'))`)
	b.screenshot(ctx, "run-retrying", false)
	b.until(ctx, 20*time.Second, "the run to end", `document.querySelector('#status-`+r.ID+`[data-status=finished]') && document.querySelector('[data-stat=retries]')`)
	d := h.apiRunDetail(r.ID)
	if d.Summary.Retries == 0 || d.Summary.FailedAttempts != d.Summary.Retries {
		t.Fatalf("the API counts %d retries and %d failed attempts: want some, one per retry", d.Summary.Retries, d.Summary.FailedAttempts)
	}
	if got := eval[string](b, ctx, `document.querySelector('[data-stat=retries]').textContent`); got != strconv.Itoa(d.Summary.Retries) {
		t.Errorf("the summary shows %s retries, the API %d", got, d.Summary.Retries)
	}
	type failedBar struct {
		WidthPX float64
		Fill    string
	}
	bars := eval[[]failedBar](b, ctx, `[...document.querySelectorAll('rect[data-state=failed]')].map(r => ({WidthPX: r.getBoundingClientRect().width, Fill: getComputedStyle(r).fill}))`)
	if len(bars) != d.Summary.FailedAttempts {
		t.Errorf("%d failed bars on the timeline, %d failed attempts in the API", len(bars), d.Summary.FailedAttempts)
	}
	for _, fb := range bars {
		if fb.WidthPX < 4 || !strings.Contains(fb.Fill, "url(") {
			t.Errorf("a failed attempt is drawn %.1f px wide, filled %s: want at least 4 px, striped", fb.WidthPX, fb.Fill)
		}
	}
	// Live, some task went from running to retrying and ran again.
	again := 0
	for _, seq := range taskStates(b, ctx) {
		if strings.Contains(strings.Join(seq, ","), "running,retrying,running") {
			again++
		}
	}
	if again == 0 {
		t.Errorf("no task read retrying between two runs of it: %v", taskStates(b, ctx))
	}
	b.screenshot(ctx, "run-retried", false)

	t.Run("replay at t is the projection at t", func(t *testing.T) {
		fctx := b.fresh()
		b.open(fctx, "/runs/"+r.ID)
		// The page that followed the run live got every row's steps with the end.
		const steps = `[...document.querySelectorAll('tr[data-task]')].map(r => r.dataset.steps || '')`
		if live, fresh := eval[[]string](b, ctx, steps), eval[[]string](b, fctx, steps); !slices.Equal(live, fresh) || fresh[0] == "" {
			t.Errorf("the live page's steps %q, a fresh page's %q", live, fresh)
		}
		evs, err := h.core.Log.ReadAll(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := h.core.Runs.Get(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Between every two events, where no state is on the edge of changing.
		var offsets []float64
		for _, e := range evs {
			offsets = append(offsets, float64(e.At.Sub(rec.CreatedAt.Time).Microseconds())/1000)
		}
		slices.Sort(offsets)
		type shown struct {
			Rows map[string]string
			Bars map[string]string
		}
		for i := 1; i < len(offsets); i++ {
			if offsets[i]-offsets[i-1] < 2 {
				continue
			}
			ms := (offsets[i-1] + offsets[i]) / 2
			got := eval[shown](b, fctx, fmt.Sprintf(`(async () => {
				const m = await import(document.querySelector('script[src*="/js/replay."]').src);
				await m.showAt(document.getElementById('group-%s'), %f);
				const rows = {}, bars = {};
				document.querySelectorAll('tr[data-task]').forEach(r => rows[r.dataset.task] = r.dataset.state);
				document.querySelectorAll('rect[data-start-ms]').forEach(r => bars[r.dataset.index + '/' + r.dataset.attempt] =
					r.getAttribute('width') === '0' ? '' : (r.classList.contains('gbar-running') ? 'running' : r.dataset.state));
				return {Rows: rows, Bars: bars};
			})()`, r.ID, ms))
			p := app.ProjectAt(rec, evs, rec.CreatedAt.Add(time.Duration(ms*float64(time.Millisecond))), nil)
			for _, task := range p.Tasks {
				if st := got.Rows[strconv.Itoa(task.Index)]; st != task.State {
					t.Errorf("at %.0f ms the replay shows task %d %s, the projection %s", ms, task.Index, st, task.State)
				}
				for _, a := range task.History {
					if st := got.Bars[fmt.Sprintf("%d/%d", a.Index, a.Number)]; st != a.Outcome {
						t.Errorf("at %.0f ms the replay shows task %d's attempt %d %q, the projection %s", ms, a.Index, a.Number, st, a.Outcome)
					}
				}
			}
			shownBars := 0
			for _, st := range got.Bars {
				if st != "" {
					shownBars++
				}
			}
			inProjection := 0
			for _, task := range p.Tasks {
				inProjection += len(task.History)
			}
			if shownBars != inProjection {
				t.Errorf("at %.0f ms the replay shows %d bars, the projection has %d attempts", ms, shownBars, inProjection)
			}
		}
	})
	b.noConsoleErrors()
}

// TestBrowserClockNeverGoesBack samples the clock of ten short runs every 50 ms: it never
// reads less than before, ends on the wall time the API gives, and the title changes at
// the end without a reload.
func TestBrowserClockNeverGoesBack(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	b := newBrowser(t, h.base)
	ctx := b.ctx
	plans := []map[string]any{
		{"mode": "sequential", "tasks": 3, "delay_ms": 250},
		{"mode": "concurrent", "tasks": 6, "delay_ms": 300, "parallelism": 3},
		{"mode": "distributed", "tasks": 8, "delay_ms": 300},
	}
	retitled := 0
	for i := range 10 {
		r := h.launch(plans[i%len(plans)])
		b.open(ctx, "/runs/"+r.ID)
		eval[bool](b, ctx, `(() => {
			window.__marker = 1;
			window.__clock = [];
			window.__titles = [document.title];
			const sample = () => {
				window.__clock.push(document.getElementById('elapsed-`+r.ID+`').textContent);
				if (document.title !== window.__titles[window.__titles.length - 1]) window.__titles.push(document.title);
			};
			sample();
			window.__sampler = setInterval(sample, 50);
			return true;
		})()`)
		b.until(ctx, 20*time.Second, "run "+strconv.Itoa(i)+" to end", `document.querySelector('#elapsed-`+r.ID+`[data-wall-ms]')`)
		type samples struct {
			Clock  []string
			Titles []string
			Marker int
		}
		s := eval[samples](b, ctx, `(clearInterval(window.__sampler), window.__clock.push(document.getElementById('elapsed-`+r.ID+`').textContent),
			window.__titles.push(document.title), {Clock: window.__clock, Titles: window.__titles, Marker: window.__marker})`)
		prev := -1.0
		for _, c := range s.Clock {
			v := seconds(t, c)
			if v < prev {
				t.Errorf("run %d: the clock went from %.2f s back to %s (%v)", i, prev, c, s.Clock)
				break
			}
			prev = v
		}
		d := h.apiRunDetail(r.ID)
		if want := templates.Wall(d.Run); s.Clock[len(s.Clock)-1] != want {
			t.Errorf("run %d: the clock ends on %s, the wall time is %s", i, s.Clock[len(s.Clock)-1], want)
		}
		last := s.Titles[len(s.Titles)-1]
		if !strings.Contains(last, templates.Seconds(*d.Run.WallMS)) {
			t.Errorf("run %d: the title at the end is %q, want the wall time in it", i, last)
		}
		if strings.Contains(s.Titles[0], "running") {
			retitled++
			if s.Marker != 1 {
				t.Errorf("run %d: the page reloaded to change its title", i)
			}
		}
	}
	if retitled == 0 {
		t.Error("no run's page was opened while it ran: the title change at the end went untested")
	}
	b.noConsoleErrors()
}
