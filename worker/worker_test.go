package worker_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/internal/redistest"
	"github.com/taskrace/taskrace/live/wake"
	"github.com/taskrace/taskrace/worker"
)

// Each task runs in one of the slots 0…concurrency−1, and no two tasks share a slot at once:
// the pages draw one lane per slot.
func TestSlotsAreExclusive(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	target := httptest.NewServer(httpbin.New())
	defer target.Close()
	r, err := app.OpenRedis(rs.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := app.DefaultConfig()
	cfg.BuiltinURL = target.URL
	core := app.NewCore(cfg, r, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := core.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		core.Shutdown(ctx)
	}()
	w := worker.New(core, worker.Config{Concurrency: 3, ShutdownTimeout: time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()

	run, err := core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Distributed, Tasks: 12, DelayMS: 30})
	if err != nil {
		t.Fatal(err)
	}
	if run.Parallelism != 3 {
		t.Errorf("parallelism %d, want the worker's 3 slots", run.Parallelism)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	busy := map[int]int{} // slot → the task in it
	used := map[int]bool{}
	err = core.Feed.Watch(ctx, run.ID, "", func(e *app.Event) error {
		if e.Worker == nil {
			return nil
		}
		slot := e.Worker.Slot
		switch e.Type {
		case app.TaskStarted:
			if slot < 0 || slot >= 3 {
				t.Errorf("task %d in slot %d, outside 0…2", *e.Index, slot)
			}
			if other, ok := busy[slot]; ok {
				t.Errorf("task %d started in slot %d, still held by task %d", *e.Index, slot, other)
			}
			busy[slot] = *e.Index
			used[slot] = true
		case app.TaskFinished, app.TaskFailed:
			delete(busy, slot)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(used) != 3 {
		t.Errorf("tasks ran in slots %v, want all of 0…2", used)
	}
}

// A task whose target refuses every connection is retried after waits of RETRY_DELAY doubled
// each time, never less: asynq keeps retry times in whole seconds, and a shorter wait
// would collapse to the next second boundary and give an outage no cover.
func TestRetriesWaitLongerEachTime(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := "http://" + l.Addr().String()
	l.Close() // nothing listens there: every call is refused at once
	r, err := app.OpenRedis(rs.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := app.DefaultConfig()
	cfg.MaxRetry = 2
	cfg.BuiltinURL = refusing
	core := app.NewCore(cfg, r, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := core.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		core.Shutdown(ctx)
	}()
	w := worker.New(core, worker.Config{Concurrency: 1, ShutdownTimeout: time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()

	run, err := core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Distributed, Tasks: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var failed, started []app.Time
	var final bool
	err = core.Feed.Watch(ctx, run.ID, "", func(e *app.Event) error {
		switch e.Type {
		case app.TaskStarted:
			started = append(started, e.At)
		case app.TaskFailed:
			failed = append(failed, e.At)
			final = e.Retry != nil && !*e.Retry
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(started) != 3 || len(failed) != 3 || !final {
		t.Fatalf("%d attempts, %d failures (last final: %v); want 3 and 3, the last final", len(started), len(failed), final)
	}
	for n := range 2 {
		gap := started[n+1].Sub(failed[n].Time)
		want := cfg.RetryWait(n)
		t.Logf("retry %d: %s after the failure (wait %s)", n+1, gap.Round(time.Millisecond), want)
		if gap < want {
			t.Errorf("retry %d began %s after the failure, before its wait of %s", n+1, gap, want)
		}
	}
}

// The worker listens for wake signals on its queue while it runs, and the launcher's
// enqueues send them.
func TestWorkerIsWokenByLaunches(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	target := httptest.NewServer(httpbin.New())
	defer target.Close()
	r, err := app.OpenRedis(rs.URL(3))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := app.DefaultConfig()
	cfg.BuiltinURL = target.URL
	core := app.NewCore(cfg, r, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := core.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		core.Shutdown(ctx)
	}()
	ch := wake.Channel(3, cfg.Queue)
	subscribers := func() int64 {
		n, err := r.Client.PubSubNumSub(t.Context(), ch).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[ch]
	}
	w := worker.New(core, worker.Config{Concurrency: 2, ShutdownTimeout: time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	if n := subscribers(); n != 1 {
		t.Errorf("%d subscribers on %s while the worker runs, want 1", n, ch)
	}

	sub := r.Client.Subscribe(t.Context(), ch)
	defer sub.Close()
	if _, err := sub.Receive(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Distributed, Tasks: 3, DelayMS: 0}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := sub.ReceiveMessage(ctx); err != nil {
		t.Fatalf("no wake signal after a launch: %v", err)
	}

	w.Shutdown()
	if n := subscribers(); n != 1 { // the test's own
		t.Errorf("%d subscribers on %s after the worker's shutdown, want only the test's", n, ch)
	}
}
