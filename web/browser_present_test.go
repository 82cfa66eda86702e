package web

import (
	"context"
	"fmt"
	"math"
	"os"
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
		b.key(ctx, "dd") // pressed twice in a hurry: one launch
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
		if runs, _, err := h.core.Runs.List(t.Context(), app.ListQuery{Limit: 10}); err != nil || len(runs) != 1 {
			t.Errorf("d pressed twice launched %d runs (%v), want 1", len(runs), err)
		}
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
		b.screenshot(ctx, "present-compare", false)
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

// phoneCheck reads what a phone's viewer would miss: elements whose content is cut off with
// no sign of it (clipped without an ellipsis, or scrolling without the .scroller's shades),
// scrollers without their shade, text drawn under 11 px (SVG text at the size it is drawn),
// numbers broken over two lines, and how wide the page is.
const phoneCheck = `(() => {
  const out = {Clipped: [], Small: [], Wrapped: [], Width: document.scrollingElement.scrollWidth, Scrollers: 0};
  const visible = (el) => {
    if (!el.getClientRects().length || getComputedStyle(el).visibility === 'hidden') return false;
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1; // not .sr-only
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\s+/).slice(0, 3).join('.') : '');
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg, template, dialog:not([open])') || !visible(el) || el.scrollWidth <= el.clientWidth + 1) continue;
    const cs = getComputedStyle(el);
    if ((cs.overflowX === 'hidden' || cs.overflowX === 'clip') && cs.textOverflow !== 'ellipsis') out.Clipped.push(name(el));
    if (cs.overflowX === 'auto' || cs.overflowX === 'scroll') {
      if (!el.classList.contains('scroller') || !cs.backgroundImage.includes('gradient')) out.Clipped.push(name(el) + ' scrolls with no hint');
      else out.Scrollers++;
    }
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || el.closest('title, script, style, template, dialog:not([open])') || !visible(el)) continue;
    let size = parseFloat(getComputedStyle(el).fontSize);
    if (el instanceof SVGElement) {
      const m = el.getScreenCTM();
      size *= m ? Math.hypot(m.a, m.b) : 1;
    }
    if (size < 10.99) out.Small.push(name(el) + ' "' + n.textContent.trim().slice(0, 30) + '" at ' + size.toFixed(1) + ' px');
  }
  for (const el of document.querySelectorAll('.tabular, time, [data-stat]')) {
    if (!visible(el)) continue;
    const r = document.createRange();
    r.selectNodeContents(el);
    if (new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size > 1) out.Wrapped.push(name(el) + ' "' + el.textContent.trim() + '"');
  }
  return out;
})()`

type phoneReading struct {
	Clipped, Small, Wrapped []string
	Width, Scrollers        int
}

// TestBrowserPhones375 opens every page at 375 px as a phone in the audience would: nothing
// is cut off without a sign, no text is under 11 px, no number wraps, no page is wider than
// the screen (the API docs included), and the monitor says plainly that it needs a wider
// screen, with the way back.
func TestBrowserPhones375(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	seq := h.launch(map[string]any{"mode": "sequential", "tasks": 3, "delay_ms": 100})
	dist := h.launch(map[string]any{"mode": "distributed", "tasks": 10, "delay_ms": 200})
	conc := h.launch(map[string]any{"mode": "concurrent", "tasks": 8, "delay_ms": 100, "parallelism": 4, "failure_rate": 0.5})
	for _, id := range []string{seq.ID, dist.ID, conc.ID} {
		h.follow(id)
	}
	// The same work sequentially, so the dashboard's table and chart have two runs to compare.
	h.follow(h.launch(map[string]any{"mode": "sequential", "tasks": 10, "delay_ms": 20}).ID)
	h.follow(h.launch(map[string]any{"mode": "distributed", "tasks": 10, "delay_ms": 20}).ID)
	b := newBrowser(t, h.base)
	ctx := b.fresh()
	b.do(ctx, chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile))
	pages := []string{"/", "/runs", "/runs/" + dist.ID, "/runs/" + conc.ID, "/runs/" + seq.ID + "?present=1",
		"/compare?runs=" + seq.ID + "," + dist.ID, "/workers", "/?present=1"}
	scrollers := 0
	for _, p := range pages {
		b.open(ctx, p)
		got := eval[phoneReading](b, ctx, phoneCheck)
		t.Logf("%s: %d px wide, %d scrollers in use", p, got.Width, got.Scrollers)
		if got.Width > 375 {
			t.Errorf("%s is %d px wide at 375 px", p, got.Width)
		}
		for _, c := range got.Clipped {
			t.Errorf("%s: %s is cut off with no sign of it", p, c)
		}
		for _, s := range got.Small {
			t.Errorf("%s: text under 11 px: %s", p, s)
		}
		for _, w := range got.Wrapped {
			t.Errorf("%s: a number wraps: %s", p, w)
		}
		scrollers += got.Scrollers
	}
	if scrollers == 0 {
		t.Error("no table needed to scroll at 375 px: the check of its hint went untested")
	}
	b.open(ctx, "/")
	b.screenshot(ctx, "home-375", false)
	eval[bool](b, ctx, `(document.getElementById('results-title').scrollIntoView(), true)`)
	b.screenshot(ctx, "home-375-results", false)
	b.open(ctx, "/runs/"+conc.ID)
	eval[bool](b, ctx, `(document.getElementById('summary-title').scrollIntoView(), true)`)
	b.screenshot(ctx, "run-375-summary", false)
	b.open(ctx, "/runs/"+dist.ID)
	b.screenshot(ctx, "run-375", false)
	eval[bool](b, ctx, `(document.getElementById('timeline-title').scrollIntoView(), true)`)
	b.screenshot(ctx, "run-375-timeline", false)
	lanes := eval[[]string](b, ctx, `[...document.querySelectorAll('.lane-label')].filter(l => l.closest('#lanes-`+dist.ID+`')).map(l => l.innerText.trim())`)
	for _, l := range lanes {
		if len([]rune(l)) > 7 {
			t.Errorf("a lane's label reads %q at 375 px: want it short", l)
		}
	}
	if w := eval[float64](b, ctx, `document.querySelector('#lanes-`+dist.ID+` .lane-label').getBoundingClientRect().width / document.querySelector('#lanes-`+dist.ID+` .lane').getBoundingClientRect().width`); w > 0.25 {
		t.Errorf("lane labels take %.0f %% of the timeline's width at 375 px", w*100)
	}

	t.Run("docs", func(t *testing.T) {
		b.open(ctx, "/docs")
		b.until(ctx, 15*time.Second, "Swagger UI", `document.querySelector('.opblock-summary')`)
		if w := eval[int](b, ctx, `document.scrollingElement.scrollWidth`); w > 375 {
			t.Errorf("/docs is %d px wide at 375 px", w)
		}
		b.screenshot(ctx, "docs-375", false)
		// An operation opened, with its parameters, answers and schemas, fits too.
		op := `#operations-runs-get-run`
		b.do(ctx, chromedp.Click(chromedp.CSS(op+` .opblock-summary-control`)))
		b.until(ctx, 5*time.Second, "the operation to open", `document.querySelector('`+op+` .opblock-body')`)
		if w := eval[int](b, ctx, `document.scrollingElement.scrollWidth`); w > 375 {
			t.Errorf("/docs with an operation open is %d px wide at 375 px", w)
		}
		eval[bool](b, ctx, `(document.querySelector('`+op+`').scrollIntoView(), true)`)
		b.screenshot(ctx, "docs-375-operation", false)
	})

	t.Run("monitor", func(t *testing.T) {
		b.open(ctx, "/monitor/")
		type monitorView struct {
			Note, App, Back bool
			Href            string
		}
		shown := `(() => { const v = (s) => { const el = document.querySelector(s); return !!el && el.getClientRects().length > 0; };
			return {Note: v('[data-monitor-narrow]'), App: v('#root'), Back: v('[data-monitor-back]'),
				Href: document.querySelector('[data-monitor-narrow] a')?.getAttribute('href') || ''}; })()`
		if got := eval[monitorView](b, ctx, shown); !got.Note || got.App || got.Href != "/" {
			t.Errorf("/monitor/ at 375 px shows %+v: want the note with a link back, not asynqmon", got)
		}
		if w := eval[int](b, ctx, `document.scrollingElement.scrollWidth`); w > 375 {
			t.Errorf("/monitor/ is %d px wide at 375 px", w)
		}
		b.screenshot(ctx, "monitor-375", false)
		wide := b.fresh()
		b.open(wide, "/monitor/")
		b.until(wide, 15*time.Second, "asynqmon's queues", `[...document.querySelectorAll('table td, table th, table a')].some(e => e.textContent.trim() === 'taskrace')`)
		if got := eval[monitorView](b, wide, shown); got.Note || !got.App || !got.Back {
			t.Errorf("/monitor/ on a wide screen shows %+v: want asynqmon with the link back", got)
		}
		if href := eval[string](b, wide, `document.querySelector('[data-monitor-back]').getAttribute('href')`); href != "/" {
			t.Errorf("the monitor's link back leads to %q", href)
		}
		b.screenshot(wide, "monitor-back", false)
	})
	b.noConsoleErrors()
}

// TestBrowserDemoScreenshots retakes the README's pictures from the real demo: 10 tasks of
// 3 s from the dashboard's form, raced sequentially against 5 distributed slots, with a
// concurrent run of the same plan beside them. Its half minute is the sequential run's, so
// it runs when the pictures are retaken (UPDATE_SCREENSHOTS=1, make screenshots); the
// other browser tests check the same pages with shorter runs.
func TestBrowserDemoScreenshots(t *testing.T) {
	if os.Getenv("UPDATE_SCREENSHOTS") != "1" {
		t.Skip("retakes the README's screenshots from a 10 × 3 s demo: run it with UPDATE_SCREENSHOTS=1 (make screenshots)")
	}
	t.Parallel()
	h := start(t, withWorker())
	b := newBrowser(t, h.base)
	ctx := b.ctx
	watcher := b.fresh()
	b.open(watcher, "/") // a fresh context starts slowly: before the runs do
	b.open(ctx, "/")
	if got := eval[[]string](b, ctx, `[document.getElementById('tasks').value, document.getElementById('delay').value]`); !slices.Equal(got, []string{"10", "3"}) {
		t.Fatalf("the dashboard's form holds %v, want the demo's 10 tasks × 3 s", got)
	}
	conc := h.launch(map[string]any{"mode": "concurrent", "tasks": 10, "delay_ms": 3000, "parallelism": 5})
	b.do(ctx, chromedp.Click(chromedp.CSS(`button[data-launch="race"]`)))
	b.until(ctx, 10*time.Second, "the race", `location.pathname === '/compare' && document.querySelectorAll('[data-stream-url]').length === 2`)
	ids := strings.Split(eval[string](b, ctx, `new URLSearchParams(location.search).get('runs')`), ",")
	seq, dist := ids[0], ids[1]

	b.open(watcher, "/runs/"+dist)
	b.until(watcher, 10*time.Second, "the second round of tasks", `document.querySelector('tr[data-state=running]') && +document.querySelector('[data-progress]').dataset.done >= 5`)
	b.screenshot(watcher, "run-live", true)
	b.screenshot(ctx, "compare", true)

	b.until(watcher, 15*time.Second, "the distributed run to end", `document.querySelector('#status-`+dist+`[data-status=finished]')`)
	checkSummary(t, b, watcher, h.apiRun(dist))
	b.screenshot(watcher, "run-finished", true)
	b.do(watcher, chromedp.EmulateViewport(1280, 720))
	b.open(watcher, "/runs/"+dist+"?present=1")
	if over := fitsScreen(b, watcher, "#summary-"+dist); over > 0 {
		t.Errorf("presented at 1280×720, the summary ends %.0f px below the screen", over)
	}
	b.screenshot(watcher, "present", true)

	h.follow(conc.ID)
	b.until(ctx, 45*time.Second, "the sequential run to end", `document.querySelector('#status-`+seq+`[data-status=finished]')`)
	home := b.fresh()
	b.open(home, "/")
	rows := eval[map[string]string](b, home, `Object.fromEntries([...document.querySelectorAll('#results tr[data-run]')].map(r => [r.dataset.run, r.querySelector('[data-col=time]').textContent]))`)
	for _, id := range []string{seq, conc.ID, dist} {
		if want := templates.Wall(h.apiRun(id).Run); rows[id] != want {
			t.Errorf("the dashboard's results show run %s at %q, the API %q", id, rows[id], want)
		}
	}
	b.screenshot(home, "home", true)
	b.noConsoleErrors()
}
