package web

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/templates"
)

// The statistics page while the mixed workload runs: every type on its queue with its
// counts and percentiles, a chart each, and the figures moving without a reload. Another
// application runs email:send on a queue of its own: that is a row and a chart of its own,
// with its own counts, beside the workload's.
func TestBrowserStatsPageIsLive(t *testing.T) {
	t.Parallel()
	h := start(t)
	if r := h.do("POST", "/workload", "tasks=3000&rate=40", "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
		t.Fatalf("launching the mixed workload: %d %s", r.status, r.body)
	}
	b := newBrowser(t, h.base)
	ctx := b.ctx
	b.open(ctx, "/stats?window=15m")
	row := func(typ, queue string) string {
		return fmt.Sprintf(`tr[data-stat-type=%q][data-stat-queue=%q]`, typ, queue)
	}
	count := func(typ, queue, counter string) string {
		return fmt.Sprintf(`Number(document.querySelector('%s [data-%s]')?.dataset.%s || 0)`, row(typ, queue), counter, counter)
	}
	processed := func(typ, queue string) string { return count(typ, queue, "processed") }
	const wq = templates.WorkloadQueue
	for _, typ := range []string{"email:send", "video:transcode", "hash:compute", "webhook:deliver"} {
		b.until(ctx, 30*time.Second, typ+" counted", processed(typ, wq)+` > 0`)
	}
	// email:send of the other application appears as it runs, as a row of its own.
	foreignApp(t, h, "other", 2)
	b.until(ctx, 30*time.Second, "email:send on the other queue counted", processed("email:send", "other")+` == 4 && `+count("email:send", "other", "failed")+` == 2`)
	if got := eval[int](b, ctx, `document.querySelectorAll('tr[data-stat-type="email:send"]').length`); got != 2 {
		t.Errorf("%d rows of email:send, want 2: one per queue", got)
	}
	if got := eval[string](b, ctx, `document.querySelector('`+row("email:send", "other")+` th').textContent`); !strings.Contains(got, "on other") {
		t.Errorf("the other queue's row of email:send reads %q", got)
	}
	n := eval[int](b, ctx, processed("email:send", wq))
	b.until(ctx, 20*time.Second, "the counts to move without a reload", fmt.Sprintf(`%s > %d && document.querySelector('[data-stats]').dataset.updates > 0`, processed("email:send", wq), n))
	if got := eval[int](b, ctx, processed("email:send", "other")); got != 4 {
		t.Errorf("email:send on the other queue went from 4 to %d processed while only the workload's ran", got)
	}
	b.until(ctx, 30*time.Second, "a retried webhook", count("webhook:deliver", wq, "retried")+` > 0`)
	if got := eval[string](b, ctx, `document.querySelector('`+row("video:transcode", wq)+` [data-runtime]').textContent`); strings.Count(got, "≤") != 3 {
		t.Errorf("video:transcode's runtime percentiles read %q", got)
	}
	if !eval[bool](b, ctx, `document.querySelectorAll('figure[data-chart-type] svg[data-minute-chart] rect.fill-emerald-500').length >= 4`) {
		t.Error("the charts draw no succeeded minute")
	}
	if got := eval[int](b, ctx, `document.querySelectorAll('figure[data-chart-type="email:send"]').length`); got != 2 {
		t.Errorf("%d charts of email:send, want 2: one per queue", got)
	}
	if got := eval[int](b, ctx, `document.querySelector('figure[data-chart-type="email:send"][data-chart-queue="other"] svg').querySelectorAll('g[data-minute]').length`); got != statsMinutes {
		t.Errorf("a chart draws %d minutes, want %d", got, statsMinutes)
	}
	// The other queue's chart draws its failures only: email:send always fails there.
	if got := eval[int](b, ctx, `document.querySelector('figure[data-chart-type="email:send"][data-chart-queue="other"] svg').querySelectorAll('rect.fill-emerald-500').length`); got != 0 {
		t.Errorf("the other queue's chart of email:send draws %d succeeded minutes, want none", got)
	}
	b.screenshot(ctx, "stats", true)
	axeFindings(t, b, ctx, "/stats")
	b.noConsoleErrors()

	// A window the page does not offer is said on the page, with 400.
	r := h.get("/stats?window=7d", "Accept", "text/html")
	if r.status != 400 || !strings.Contains(string(r.body), "window: must be one of 15m, 1h, 6h, 24h") {
		t.Errorf("/stats?window=7d: %d %s", r.status, text(string(r.body)))
	}
}
