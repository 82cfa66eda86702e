package web

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The statistics page while the mixed workload runs: every type with its counts and
// percentiles, a chart each, and the figures moving without a reload.
func TestBrowserStatsPageIsLive(t *testing.T) {
	t.Parallel()
	h := start(t)
	if r := h.do("POST", "/workload", "tasks=3000&rate=40", "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
		t.Fatalf("launching the mixed workload: %d %s", r.status, r.body)
	}
	b := newBrowser(t, h.base)
	ctx := b.ctx
	b.open(ctx, "/stats?window=15m")
	processed := func(typ string) string {
		return fmt.Sprintf(`Number(document.querySelector('tr[data-stat-type=%q] [data-processed]')?.dataset.processed || 0)`, typ)
	}
	for _, typ := range []string{"email:send", "video:transcode", "hash:compute", "webhook:deliver"} {
		b.until(ctx, 30*time.Second, typ+" counted", processed(typ)+` > 0`)
	}
	n := eval[int](b, ctx, processed("email:send"))
	b.until(ctx, 20*time.Second, "the counts to move without a reload", fmt.Sprintf(`%s > %d && document.querySelector('[data-stats]').dataset.updates > 0`, processed("email:send"), n))
	b.until(ctx, 30*time.Second, "a retried webhook", `Number(document.querySelector('tr[data-stat-type="webhook:deliver"] [data-retried]').dataset.retried) > 0`)
	if got := eval[string](b, ctx, `document.querySelector('tr[data-stat-type="video:transcode"] [data-runtime]').textContent`); strings.Count(got, "≤") != 3 {
		t.Errorf("video:transcode's runtime percentiles read %q", got)
	}
	if !eval[bool](b, ctx, `document.querySelectorAll('figure[data-chart-type] svg[data-minute-chart] rect.fill-emerald-500').length >= 4`) {
		t.Error("the charts draw no succeeded minute")
	}
	if got := eval[int](b, ctx, `document.querySelector('figure[data-chart-type="email:send"] svg').querySelectorAll('g[data-minute]').length`); got != statsMinutes {
		t.Errorf("a chart draws %d minutes, want %d", got, statsMinutes)
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
