package web

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
)

// timelineOf is every bar of a run's timeline as the page holds it: by bar ID, its lane, its
// attributes and its title; and the lanes in order.
const timelineOf = `((id) => {
  const bars = {};
  for (const r of document.querySelectorAll('#lanes-' + id + ' rect[id^="bar-"]')) {
    const attrs = [...r.attributes].map((a) => a.name + '=' + a.value).sort();
    bars[r.id] = r.parentNode.id + ' ' + attrs.join(' ') + ' | ' + r.querySelector('title')?.textContent;
  }
  const lanes = [...document.querySelectorAll('#lanes-' + id + ' > [id^="lane-"]')].map((l) => l.id);
  return { bars, lanes };
})`

type timelineDOM struct {
	Bars  map[string]string
	Lanes []string
}

// A big run's stream sends its bars as data the page draws them from: followed live to its
// end, the page's timeline is, bar for bar and attribute for attribute, the one the server
// draws when the page is loaded afresh.
func TestBrowserBigRunTimelineLiveIsTheServers(t *testing.T) {
	t.Parallel()
	h := start(t)
	b := newBrowser(t, h.base)
	ctx := b.ctx
	// Above coalesceAbove tasks, with retries: done, failed and retried bars, on 40 lanes,
	// for some six seconds: the page loads while it runs, on a loaded machine too.
	tasks := 2 * coalesceAbove
	r := h.launch(map[string]any{"mode": "concurrent", "tasks": tasks, "delay_ms": 600, "parallelism": 40, "failure_rate": 0.2})
	b.open(ctx, "/runs/"+r.ID)
	if !eval[bool](b, ctx, `!!document.querySelector('[data-stream-url]')`) {
		t.Fatal("the run ended before its page loaded: nothing was drawn live")
	}
	b.until(ctx, time.Minute, "the run to end", `document.querySelector('[data-status=finished]')`)
	read := fmt.Sprintf(`%s(%q)`, timelineOf, r.ID)
	live := eval[timelineDOM](b, ctx, read)
	fresh := b.fresh()
	b.open(fresh, "/runs/"+r.ID)
	want := eval[timelineDOM](b, fresh, read)
	if len(want.Bars) < tasks || len(want.Lanes) != 40 {
		t.Fatalf("the server draws %d bars on %d lanes, want at least %d on 40", len(want.Bars), len(want.Lanes), tasks)
	}
	if !slices.Equal(live.Lanes, want.Lanes) {
		t.Errorf("lanes drawn live %v, want %v", live.Lanes, want.Lanes)
	}
	for _, id := range slices.Sorted(maps.Keys(want.Bars)) {
		if got := live.Bars[id]; got != want.Bars[id] {
			t.Errorf("bar %s drawn live:\n%s\nwant\n%s", id, got, want.Bars[id])
		}
	}
	for id := range live.Bars {
		if _, ok := want.Bars[id]; !ok {
			t.Errorf("bar %s drawn live is not the server's", id)
		}
	}
	retried := 0
	for _, bar := range want.Bars {
		if strings.Contains(bar, " data-retry= ") {
			retried++
		}
	}
	if retried == 0 {
		t.Error("no retried attempt in the run: the test shows less than it should")
	}
	b.noConsoleErrors()

	// A finished 5,000-task run, to look at.
	big := h.launch(map[string]any{"mode": "concurrent", "tasks": 5000, "delay_ms": 0, "parallelism": 50})
	// Waited for on the feed, with a deadline for a loaded machine under the race detector.
	wctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := h.core.Feed.Watch(wctx, big.ID, "", func(*app.Event) error { return nil }); err != nil {
		t.Fatalf("the 5,000-task run did not end: %v", err)
	}
	// Its first read folds its 15,000 events, which may take longer than a page has on a
	// loaded machine under the race detector; a read cut short keeps what it folded, so the
	// next goes on from there.
	h.eventually(2*time.Minute, "the 5,000-task run to be read", func() bool { return h.get("/api/runs/"+big.ID).status == 200 })
	b.open(fresh, "/runs/"+big.ID)
	if n := eval[int](b, fresh, `document.querySelectorAll('rect[data-state=done]').length`); n != 5000 {
		t.Errorf("%d done bars on the 5,000-task run's page, want 5,000", n)
	}
	b.screenshot(fresh, "run-5000-tasks", false)
	b.noConsoleErrors()
}
