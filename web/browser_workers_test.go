package web

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// exampleApp builds examples/workload and runs it against the harness's Redis on queue, as
// a process of its own; it is stopped with the test.
func exampleApp(t *testing.T, h *harness, queue string, args ...string) *exec.Cmd {
	t.Helper()
	opt, ok := h.core.Redis.Opt.(asynq.RedisClientOpt)
	if !ok {
		t.Fatalf("the harness's Redis option is a %T", h.core.Redis.Opt)
	}
	bin := filepath.Join(t.TempDir(), "workload")
	build := exec.Command("go", "build", "-o", bin, "./examples/workload")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"-queue", queue}, args...)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("REDIS_URL=redis://%s/%d", opt.Addr, opt.DB))
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return cmd
}

// Two processes: this one (serve, with its worker and the Mixed workload's server) and the
// example application, each with its role and counts, moving.
func TestBrowserWorkersPageShowsBothProcesses(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	app := exampleApp(t, h, "example", "-rate", "30", "-slow", "1s")
	if r := h.do("POST", "/workload", "tasks=2000&rate=20", "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 { // followed to /tasks
		t.Fatalf("launching the mixed workload: %d %s", r.status, r.body)
	}
	host, _ := os.Hostname()
	serve := fmt.Sprintf("%s:%d", host, os.Getpid())
	other := fmt.Sprintf("%s:%d", host, app.Process.Pid)

	b := newBrowser(t, h.base)
	ctx := b.ctx
	b.open(ctx, "/workers")
	row := func(name string) string { return fmt.Sprintf(`document.querySelector('tr[data-worker=%q]')`, name) }
	processed := func(name string) string {
		return fmt.Sprintf(`Number(%s?.querySelector('[data-processed]')?.dataset.processed || -1)`, row(name))
	}
	b.until(ctx, 30*time.Second, "both processes, with their roles",
		row(serve)+`?.dataset.role === 'serve' && `+row(other)+`?.dataset.role === 'app'`)
	for _, name := range []string{serve, other} {
		b.until(ctx, 30*time.Second, "counts of "+name, processed(name)+` > 0`)
		n := eval[int](b, ctx, processed(name))
		b.until(ctx, 30*time.Second, "the counts of "+name+" to move on the page", fmt.Sprintf(`%s > %d`, processed(name), n))
	}
	b.until(ctx, 20*time.Second, "an active task with its running time", row(other)+`.querySelector('[data-running-since]')`)
	if got := eval[string](b, ctx, row(serve)+`.querySelector('[data-role-word]').textContent`); got != "serve (web + worker)" {
		t.Errorf("serve's role reads %q", got)
	}
	if got := eval[string](b, ctx, row(other)+`.querySelector('[data-heartbeat-age]').textContent`); got == "—" {
		t.Errorf("the example's heartbeat age reads %q", got)
	}
	if !eval[bool](b, ctx, row(other)+`.querySelector('svg[data-busy-chart] rect[fill]') !== null`) {
		t.Error("the example's row has no busy-slots chart")
	}
	b.screenshot(ctx, "workers", false)
	axeFindings(t, b, ctx, "/workers with two processes")

	// Its own page, live too.
	// The rows are replaced every second: clicked from the page's own script, not by a node
	// the browser may have dropped by the time the click lands.
	eval[bool](b, ctx, `(document.querySelector('tr[data-worker="`+other+`"] a[data-worker-link]').click(), true)`)
	b.until(ctx, 30*time.Second, "the worker's page", `location.pathname === '/workers/`+other+`' && document.querySelector('[data-count=processed]')`)
	n := eval[int](b, ctx, `Number(document.querySelector('[data-count=processed]').textContent.replace(/,/g, ''))`)
	b.until(ctx, 20*time.Second, "its processed count to move", fmt.Sprintf(`Number(document.querySelector('[data-count=processed]').textContent.replace(/,/g, '')) > %d`, n))
	if got := eval[string](b, ctx, `document.querySelector('#proc-title').textContent`); got != "asynq app" {
		t.Errorf("the example's page says it is %q", got)
	}
	b.until(ctx, 10*time.Second, "its latest tasks", `document.querySelectorAll('#worker-detail tr[data-rt]').length > 0`)
	b.screenshot(ctx, "worker", false)
	axeFindings(t, b, ctx, "a worker's page")
	b.noConsoleErrors()

	// A worker that is no process at all.
	for _, name := range []string{"nohost", host + ":0", host + ":x"} {
		if r := h.get("/workers/" + name); r.status != 404 {
			t.Errorf("/workers/%s: %d", name, r.status)
		}
	}
}
