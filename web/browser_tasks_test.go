package web

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The recorded tasks pages, watched while the example application's task types run in
// this process (the home page's Mixed workload launch).
func TestBrowserTasksPageIsLive(t *testing.T) {
	t.Parallel()
	h := start(t)
	b := newBrowser(t, h.base)
	ctx := b.ctx

	b.open(ctx, "/tasks")
	b.until(ctx, 10*time.Second, "the empty page to say so", `document.querySelector('[data-tasks-empty]')`)
	b.until(ctx, 10*time.Second, "the stream to connect", `document.querySelector('[data-tasks]').dataset.connected === '1'`)

	// Launched from the home page, after /tasks loaded: only the stream can bring its tasks.
	b2 := b.fresh()
	b.open(b2, "/")
	b.do(b2, chromedp.SetValue(chromedp.CSS(`#workload-rate`), "40"), chromedp.Click(chromedp.CSS(`[data-launch=workload]`)))
	b.until(b2, 10*time.Second, "the launch to open /tasks on its queue", `location.pathname === '/tasks' && document.querySelector('#q').value === 'queue:workload'`)

	b.until(ctx, 20*time.Second, "rows to come in from the stream",
		`document.querySelector('[data-tasks]').dataset.updates > 0 && document.querySelectorAll('#tasks-rows tr[data-rt]').length > 0`)
	// Live, not only once: a task seen running is later seen ended, on the same page.
	b.until(ctx, 20*time.Second, "a running task", `document.querySelector('#tasks-rows tr[data-state=running]')`)
	running := eval[string](b, ctx, `document.querySelector('#tasks-rows tr[data-state=running]').dataset.rt`)
	b.until(ctx, 30*time.Second, "task "+running+" to end on the page",
		fmt.Sprintf(`[...document.querySelectorAll('#tasks-rows tr[data-rt]')].some(r => r.dataset.rt === %q && ['done','failed','retrying'].includes(r.dataset.state))`, running))
	b.until(ctx, 30*time.Second, "every type of the mix",
		`['email:send','video:transcode','hash:compute','webhook:deliver'].every(t => [...document.querySelectorAll('[data-type]')].some(e => e.textContent === t))`)
	// A running task's page follows it to its end. On a loaded machine a task may end
	// before its page has loaded: then another is tried.
	runningVideo := `[...document.querySelectorAll('#tasks-rows tr[data-state=running]')].find(r => r.querySelector('[data-type]').textContent === 'video:transcode')`
	followed := false
	for try := 0; try < 5 && !followed; try++ {
		b.until(ctx, 30*time.Second, "a running video:transcode", runningVideo)
		href := eval[string](b, ctx, `(() => { const r = `+runningVideo+`; return r ? r.querySelector('a[data-task-link]').getAttribute('href') : ''; })()`)
		if href == "" {
			continue
		}
		b.open(b2, href)
		if eval[bool](b, b2, `!!document.querySelector('[data-ended]')`) {
			continue // ended already
		}
		if !eval[bool](b, b2, `!!document.querySelector('[data-task-live][data-stream-url]')`) {
			t.Errorf("the page of running task %s does not follow it", href)
		}
		b.until(b2, 30*time.Second, "the task's page to show its end without a reload",
			`document.querySelector('#task-detail[data-ended] [data-state=done]') && document.querySelector('[data-task-live]').dataset.updates > 0`)
		followed = true
	}
	if !followed {
		t.Error("no running task's page could be opened before its task ended, in five tries")
	}
	n1 := eval[int](b, ctx, `Number(document.getElementById('tasks-counts').dataset.total)`)
	b.until(ctx, 20*time.Second, "the count to grow", fmt.Sprintf(`Number(document.getElementById('tasks-counts').dataset.total) > %d`, n1))
	b.screenshot(ctx, "tasks", true)
	axeFindings(t, b, ctx, "/tasks")
	mctx := b.fresh()
	b.do(mctx, chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile))
	b.open(mctx, "/tasks")
	b.until(mctx, 10*time.Second, "rows at 375 px", `document.querySelectorAll('#tasks-rows tr[data-rt]').length > 0`)
	if w := eval[int](b, mctx, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("/tasks is %d px wide at 375 px", w)
	}
	if w := eval[float64](b, mctx, `document.querySelector('#q').getBoundingClientRect().width`); w < 200 {
		t.Errorf("the query field is %.0f px wide at 375 px", w)
	}
	b.screenshot(mctx, "tasks-375", false)

	// A filter in the URL survives a reload, and the stream follows the filter.
	q := "type:webhook:deliver retried:yes"
	b.open(ctx, "/tasks?q="+url.QueryEscape(q))
	b.until(ctx, 40*time.Second, "retried webhooks",
		`document.querySelectorAll('#tasks-rows tr[data-rt]').length > 0`)
	b.do(ctx, chromedp.Reload())
	b.until(ctx, 10*time.Second, "the page to load again", `document.readyState === 'complete'`)
	if got := eval[string](b, ctx, `document.querySelector('#q').value`); got != q {
		t.Errorf("after a reload the query reads %q, want %q", got, q)
	}
	b.until(ctx, 10*time.Second, "the stream to send the filtered rows again", `document.querySelector('[data-tasks]').dataset.updates > 0`)
	types := eval[[]string](b, ctx, `[...document.querySelectorAll('#tasks-rows [data-type]')].map(e => e.textContent)`)
	attempts := eval[[]int](b, ctx, `[...document.querySelectorAll('#tasks-rows tr[data-rt]')].map(r => Number(r.querySelector('[data-attempts]')?.dataset.attempts || 1))`)
	for i, ty := range types {
		if ty != "webhook:deliver" || attempts[i] < 2 {
			t.Errorf("row %d under %q: type %s, %d attempts", i, q, ty, attempts[i])
		}
	}

	// Longest first, by the order of the runtimes the rows show.
	b.open(ctx, "/tasks?sort=runtime&q="+url.QueryEscape("state:done"))
	b.until(ctx, 10*time.Second, "rows by runtime", `document.querySelectorAll('#tasks-rows tr[data-rt]').length > 3`)
	ms := eval[[]float64](b, ctx, `[...document.querySelectorAll('#tasks-rows [data-runtime-ms]')].map(e => Number(e.dataset.runtimeMs))`)
	for i := 1; i < len(ms); i++ {
		if ms[i] > ms[i-1] {
			t.Errorf("by runtime, row %d ran %.1f ms after a row of %.1f ms: %v", i, ms[i], ms[i-1], ms)
			break
		}
	}
	if ms[0] < 500 {
		t.Errorf("the longest done task ran %.1f ms: no slow or CPU-bound task first", ms[0])
	}

	// A task page, and its link into the monitor, where the whole ID shows.
	b.open(ctx, "/tasks?q="+url.QueryEscape("type:webhook:deliver retried:yes"))
	b.until(ctx, 10*time.Second, "a retried webhook", `document.querySelector('#tasks-rows a[data-task-link]')`)
	// The rows are replaced live: the link is read and clicked in one go, by the page's script.
	id := eval[string](b, ctx, `(() => { const a = document.querySelector('#tasks-rows a[data-task-link]'); a.click(); return a.textContent; })()`)
	b.until(ctx, 10*time.Second, "the task's page", `document.querySelector('[data-task-id]')`)
	if got := eval[string](b, ctx, `document.querySelector('[data-task-id]').textContent`); got != id {
		t.Errorf("task page of %q shows %q", id, got)
	}
	if n := eval[int](b, ctx, `document.querySelectorAll('tr[data-attempt]').length`); n < 2 {
		t.Errorf("a retried task's page lists %d attempts", n)
	}
	if got := eval[string](b, ctx, `document.querySelector('[data-error-text]')?.textContent || ''`); !strings.Contains(got, "503") {
		t.Errorf("the task's error reads %q", got)
	}
	b.screenshot(ctx, "task", false)
	axeFindings(t, b, ctx, "a task's page")
	b.do(ctx, chromedp.Click(chromedp.CSS(`a[data-monitor-link]`)))
	b.until(ctx, 20*time.Second, "the monitor's page of task "+id,
		fmt.Sprintf(`location.pathname === '/monitor/queues/workload/tasks/%s' && document.body.innerText.includes(%q)`, id, id))
	b.noConsoleErrors()
}
