package web

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/templates"
)

// A speaker's flow, by keyboard only, and the audience's phones.

// key presses one key on whatever has the focus.
func (b *browser) key(ctx context.Context, k string) {
	b.t.Helper()
	b.do(ctx, chromedp.KeyEvent(k))
}

// blur takes the focus off any field: keys then go to the page.
func (b *browser) blur(ctx context.Context) {
	b.t.Helper()
	eval[bool](b, ctx, `(document.activeElement && document.activeElement.blur(), true)`)
}

// fitsScreen is how far below the viewport's bottom the bottom edge of the element, or of
// the card it is in, is (≤ 0: it fits), with the page scrolled to its top.
func fitsScreen(b *browser, ctx context.Context, selector string) float64 {
	return eval[float64](b, ctx, `(() => { window.scrollTo(0, 0); const el = document.querySelector(`+strconv.Quote(selector)+`);
		return (el.closest('.card') || el).getBoundingClientRect().bottom - window.innerHeight; })()`)
}

// presentBar reads presentation mode's controls as the viewer sees them.
const presentBar = `(() => {
  const bar = document.querySelector('[data-present-bar]');
  const shown = (el) => !!el && el.getClientRects().length > 0 && !el.closest('[hidden]');
  return {Bar: shown(bar), Again: shown(bar?.querySelector('[data-run-again]')), Replay: shown(bar?.querySelector('[data-replay="4"]')),
    Exit: shown(bar?.querySelector('[data-exit-present]')), Present: document.body.classList.contains('present'),
    Nav: getComputedStyle(document.querySelector('body > header')).display !== 'none'};
})()`

type presentControls struct{ Bar, Again, Replay, Exit, Present, Nav bool }

// TestBrowserPresentationByKeyboard gives the talk by keyboard: from the dashboard in
// presentation mode, a key launches, the run page stays presented with its controls, a key
// runs it again and another replays it, Exit leaves; a race stays presented too. Keys typed
// into a field, or held with a modifier, do nothing.
func TestBrowserPresentationByKeyboard(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	b := newBrowser(t, h.base)
	ctx := b.ctx

	// The way in, from the dashboard.
	b.open(ctx, "/")
	if href := eval[string](b, ctx, `document.querySelector('a[data-present-link]')?.getAttribute('href') || ''`); href != "/?present=1" {
		t.Fatalf("the dashboard's way into presentation mode leads to %q", href)
	}
	b.open(ctx, "/?present=1")
	if !eval[bool](b, ctx, `document.body.classList.contains('present') && getComputedStyle(document.querySelector('body > header')).display === 'none'`) {
		t.Fatal("/?present=1 is not in presentation mode")
	}
	// A 10-task run, as in the talk, but of short tasks.
	b.do(ctx, chromedp.SetValue(chromedp.CSS("#tasks"), "10"), chromedp.SetValue(chromedp.CSS("#delay"), "0.5"))

	t.Run("keys do nothing while typing or with a modifier", func(t *testing.T) {
		for _, field := range []string{"#tasks", "#delay", "#target"} {
			b.do(ctx, chromedp.Focus(chromedp.CSS(field)))
			for _, k := range []string{"s", "c", "d", "r", "?"} {
				b.key(ctx, k)
			}
		}
		b.blur(ctx)
		b.do(ctx, chromedp.KeyEvent("d", chromedp.KeyModifiers(chromedp.ModifierAlt)))
		// ? now opens the list: keys are taken in order, so any launch above came first.
		b.key(ctx, "?")
		b.until(ctx, 5*time.Second, "the list of shortcuts", `document.querySelector('dialog[data-shortcuts]').open`)
		keys := eval[[]string](b, ctx, `[...document.querySelectorAll('dialog[data-shortcuts] [data-shortcut]')].map(k => k.dataset.shortcut)`)
		if want := []string{"s", "c", "d", "r", "a", "p"}; !slices.Equal(keys, want) {
			t.Errorf("the list names keys %v, want %v", keys, want)
		}
		b.screenshot(ctx, "present-shortcuts", false)
		// While the list is open, a launch key does nothing either.
		b.key(ctx, "d")
		b.key(ctx, "\x1b") // Escape
		b.until(ctx, 5*time.Second, "Escape to close the list", `!document.querySelector('dialog[data-shortcuts]').open`)
		if got := eval[string](b, ctx, `location.pathname + location.search`); got != "/?present=1" {
			t.Errorf("keys typed into fields took the page to %s", got)
		}
		if runs, _, err := h.core.Runs.List(t.Context(), app.ListQuery{Limit: 10}); err != nil || len(runs) != 0 {
			t.Errorf("keys typed into fields launched %d runs (%v)", len(runs), err)
		}
	})

	var first string
	t.Run("d launches, presented, with its controls", func(t *testing.T) {
		b.blur(ctx)
		b.key(ctx, "d")
		b.until(ctx, 10*time.Second, "the run page", `location.pathname.startsWith('/runs/') && document.querySelector('[data-run-id]')`)
		if got := eval[string](b, ctx, `location.search`); got != "?present=1" {
			t.Errorf("the launch landed on %q, want ?present=1 kept", got)
		}
		first = runIDFromURL(t, eval[string](b, ctx, `location.href`))
		if h.apiRun(first).Run.Mode != app.Distributed {
			t.Errorf("d launched a %s run", h.apiRun(first).Run.Mode)
		}
		c := eval[presentControls](b, ctx, presentBar)
		if !c.Present || c.Nav || !c.Bar || !c.Again || !c.Exit {
			t.Errorf("a presented live run shows %+v: want presentation mode with Run again and Exit", c)
		}
		if c.Replay && eval[bool](b, ctx, `!document.querySelector('[data-status=finished]')`) {
			t.Error("Replay is offered while the run is live")
		}
		b.until(ctx, 20*time.Second, "the run to end", `document.querySelector('#status-`+first+`[data-status=finished]')`)
		b.until(ctx, 5*time.Second, "Replay to come with the end", `(`+presentBar+`).Replay`)
	})

	t.Run("header, timeline and summary fit the screen", func(t *testing.T) {
		for _, size := range [][2]int{{1280, 720}, {1024, 768}} {
			b.do(ctx, chromedp.EmulateViewport(int64(size[0]), int64(size[1])))
			b.open(ctx, "/runs/"+first+"?present=1")
			for _, part := range []string{"header", "#timeline-" + first, "#summary-" + first} {
				if over := fitsScreen(b, ctx, part); over > 0 {
					t.Errorf("at %d×%d the bottom of %s is %.0f px below the screen", size[0], size[1], part, over)
				}
			}
			if fs := eval[float64](b, ctx, `parseFloat(getComputedStyle(document.documentElement).fontSize)`); fs <= 16 {
				t.Errorf("at %d×%d presentation mode's type is %.1f px: want it larger than the page's 16", size[0], size[1], fs)
			}
			b.screenshot(ctx, fmt.Sprintf("present-run-%dx%d", size[0], size[1]), false)
		}
	})

	var again string
	t.Run("a runs again, presented", func(t *testing.T) {
		b.blur(ctx)
		b.key(ctx, "a")
		b.until(ctx, 10*time.Second, "the new run's page", fmt.Sprintf(`location.pathname.startsWith('/runs/') && !location.pathname.endsWith(%q) && document.querySelector('[data-run-id]')`, first))
		again = runIDFromURL(t, eval[string](b, ctx, `location.href`))
		if got := eval[string](b, ctx, `location.search`); got != "?present=1" {
			t.Errorf("Run again landed on %q, want ?present=1 kept", got)
		}
		a, o := h.apiRun(again).Run, h.apiRun(first).Run
		if a.Mode != o.Mode || a.Tasks != o.Tasks || a.DelayMS != o.DelayMS {
			t.Errorf("a launched %+v, want the plan of %+v", a.Plan, o.Plan)
		}
		b.until(ctx, 20*time.Second, "the new run to end", `document.querySelector('#status-`+again+`[data-status=finished]')`)
	})

	t.Run("p replays, presented", func(t *testing.T) {
		b.until(ctx, 5*time.Second, "Replay", `(`+presentBar+`).Replay`)
		b.blur(ctx)
		b.key(ctx, "p")
		b.until(ctx, 5*time.Second, "the replay to start", `document.querySelector('#group-`+again+`').dataset.replay === 'running' && document.querySelector('#group-`+again+`').dataset.replayAt > 0`)
		if got := eval[string](b, ctx, `document.querySelector('#group-`+again+`').dataset.replaySpeed`); got != "4" {
			t.Errorf("p replays at %s×, want 4×", got)
		}
		if st := eval[string](b, ctx, `document.getElementById('status-`+again+`').dataset.status`); st != app.StatusRunning {
			t.Errorf("mid-replay the status reads %s", st)
		}
		b.until(ctx, 15*time.Second, "the replay to end", `document.querySelector('#group-`+again+`').dataset.replay === 'done'`)
		checkSummary(t, b, ctx, h.apiRun(again))
		if st := eval[string](b, ctx, `document.getElementById('status-`+again+`').dataset.status`); st != app.StatusFinished {
			t.Errorf("after the replay the status reads %s", st)
		}
		if !eval[bool](b, ctx, `location.search === '?present=1' && document.body.classList.contains('present')`) {
			t.Error("the replay left presentation mode")
		}
	})

	t.Run("Exit, by keyboard", func(t *testing.T) {
		b.do(ctx, chromedp.Focus(chromedp.CSS(`[data-present-bar] [data-exit-present]`)))
		b.key(ctx, "\r")
		b.until(ctx, 10*time.Second, "the run page out of presentation mode", `location.pathname === '/runs/`+again+`' && location.search === '' && !document.body.classList.contains('present') && document.readyState === 'complete'`)
		if c := eval[presentControls](b, ctx, presentBar); c.Bar || !c.Nav {
			t.Errorf("after Exit the page shows %+v: want the navigation and no presentation controls", c)
		}
	})

	t.Run("r races, presented; a races again", func(t *testing.T) {
		b.open(ctx, "/?present=1")
		b.do(ctx, chromedp.SetValue(chromedp.CSS("#tasks"), "4"), chromedp.SetValue(chromedp.CSS("#delay"), "0.3"))
		b.blur(ctx)
		b.key(ctx, "r")
		b.until(ctx, 10*time.Second, "the compare page", `location.pathname === '/compare' && document.querySelectorAll('[data-run-id]').length === 2`)
		if !eval[bool](b, ctx, `new URLSearchParams(location.search).get('present') === '1' && document.body.classList.contains('present')`) {
			t.Errorf("the race landed on %s, not in presentation mode", eval[string](b, ctx, `location.href`))
		}
		ids := eval[string](b, ctx, `new URLSearchParams(location.search).get('runs')`)
		c := eval[presentControls](b, ctx, presentBar)
		if !c.Bar || !c.Again || !c.Exit {
			t.Errorf("a presented race shows %+v: want Race again and Exit", c)
		}
		b.until(ctx, 20*time.Second, "both runs to end", `document.querySelectorAll('[data-status=finished]').length === 2`)
		b.until(ctx, 5*time.Second, "Replay to come with the ends", `(`+presentBar+`).Replay`)
		b.blur(ctx)
		b.key(ctx, "a")
		b.until(ctx, 10*time.Second, "a second race", fmt.Sprintf(`location.pathname === '/compare' && new URLSearchParams(location.search).get('runs') !== %q && document.querySelectorAll('[data-run-id]').length === 2`, ids))
		if !eval[bool](b, ctx, `new URLSearchParams(location.search).get('present') === '1'`) {
			t.Error("Race again left presentation mode")
		}
	})
	b.noConsoleErrors()
}

// TestBrowserReplayMidwayIsTheInstant replays a finished run and reads the page mid-way:
// status, progress and clock are those of the projection at the instant shown, and the end
// of the replay is the page as the server drew it.
func TestBrowserReplayMidwayIsTheInstant(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	b := newBrowser(t, h.base)
	ctx := b.ctx
	r := h.launch(map[string]any{"mode": "concurrent", "tasks": 8, "delay_ms": 400, "parallelism": 2, "failure_rate": 0.4})
	h.follow(r.ID)
	rec, err := h.core.Runs.Get(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := h.core.Log.ReadAll(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var offsets []float64
	for _, e := range evs {
		offsets = append(offsets, float64(e.At.Sub(rec.CreatedAt.Time).Microseconds())/1000)
	}
	b.open(ctx, "/runs/"+r.ID)
	final := eval[string](b, ctx, `document.getElementById('summary-`+r.ID+`').textContent`)
	type instant struct {
		At                  float64
		Status, Line, Clock string
		Done, Failed, Value int
		Summary, Replay     string
	}
	read := `(() => { const g = document.getElementById('group-` + r.ID + `'), p = document.getElementById('progress-` + r.ID + `');
		return {At: +g.dataset.replayAt, Replay: g.dataset.replay || '', Status: document.getElementById('status-` + r.ID + `').dataset.status,
			Line: p.querySelector('p').textContent, Done: +p.dataset.done, Failed: +p.dataset.failed, Value: +p.querySelector('progress').value,
			Clock: document.getElementById('elapsed-` + r.ID + `').textContent, Summary: document.getElementById('summary-` + r.ID + `').textContent}; })`
	// Read the page at every frame of the replay, in the page: each reading is one instant.
	eval[bool](b, ctx, `(() => { const read = `+read+`; window.__replay = [];
		const tick = () => { const x = read(); if (x.Replay === 'running' && x.At > 0) window.__replay.push(x); if (x.Replay !== 'done') requestAnimationFrame(tick); };
		requestAnimationFrame(tick); return true; })()`)
	b.do(ctx, chromedp.Click(chromedp.CSS(`#actions-`+r.ID+` button[data-replay="1"]`)))
	b.until(ctx, 30*time.Second, "the replay to end", `document.getElementById('group-`+r.ID+`').dataset.replay === 'done'`)
	seen := eval[[]instant](b, ctx, `window.__replay`)
	wall := *h.apiRun(r.ID).Run.WallMS
	checked, changes := 0, map[string]bool{}
	for _, x := range seen {
		// An instant within a millisecond of an event could fall either side of it.
		if slices.ContainsFunc(offsets, func(o float64) bool { return math.Abs(o-x.At) < 1 }) || x.At >= wall {
			continue
		}
		p := app.ProjectAt(rec, evs, rec.CreatedAt.Add(time.Duration(x.At*float64(time.Millisecond))), nil)
		want := instant{At: x.At, Replay: "running", Status: p.Summary.Status, Line: templates.ProgressLine(p.Run, p.Summary),
			Done: p.Summary.Done + p.Summary.Failed, Failed: p.Summary.Failed, Value: p.Summary.Done + p.Summary.Failed,
			Clock: templates.Tenths(x.At), Summary: x.Summary}
		if x != want {
			t.Errorf("at %.1f ms the replay shows\n %+v\nthe projection at that instant\n %+v", x.At, x, want)
		}
		if !strings.Contains(x.Summary, "Results appear when the run ends") {
			t.Errorf("at %.1f ms the summary reads %q: the run had not ended", x.At, x.Summary)
		}
		checked++
		changes[x.Line] = true
	}
	if checked < 5 || len(changes) < 3 {
		t.Fatalf("checked %d instants mid-replay with %d different progress lines: want the replay seen as it went", checked, len(changes))
	}
	end := eval[instant](b, ctx, read+`()`)
	if end.Status != app.StatusFinished || end.Clock != templates.Wall(h.apiRun(r.ID).Run) || end.Summary != final {
		t.Errorf("after the replay the page shows %+v, want the run's end as drawn (%s)", end, final)
	}
	checkSummary(t, b, ctx, h.apiRun(r.ID))
	b.noConsoleErrors()
}

// TestBrowserCopyLinkSaysCopied: the share card's Copy link says it copied, to the eye and
// to a screen reader, then reads as before.
func TestBrowserCopyLinkSaysCopied(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0})
	h.follow(r.ID)
	b := newBrowser(t, h.base)
	ctx := b.ctx
	b.open(ctx, "/runs/"+r.ID)
	b.do(ctx, chromedp.Click(chromedp.CSS(`button[data-copy]`)))
	b.until(ctx, 5*time.Second, "the button to say Copied", `document.querySelector('button[data-copy]').textContent.trim() === 'Copied' && document.querySelector('[data-announce]').textContent === 'Copied'`)
	b.until(ctx, 5*time.Second, "the button to read Copy link again", `document.querySelector('button[data-copy]').textContent.trim() === 'Copy link'`)
	b.noConsoleErrors()
}
