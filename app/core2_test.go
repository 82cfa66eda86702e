package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/internal/redistest"
)

// waitFor polls cond until it holds, failing the test after 10 s. It is for conditions
// that no event announces (asynq's queue counts, a reconnecting pool).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestResumeMissesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, err := e.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Distributed, Tasks: 10, DelayMS: 30})
	if err != nil {
		t.Fatal(err)
	}
	// Read part of the stream, drop the connection, resume from the last ID seen.
	var first []*app.Event
	stop := errors.New("dropped")
	err = e.core.Feed.Watch(t.Context(), r.ID, "", func(ev *app.Event) error {
		first = append(first, ev)
		if ev.Type == app.TaskStarted {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Watch = %v, want the drop", err)
	}
	rest := e.watch(t, r.ID, first[len(first)-1].ID)
	all := e.watch(t, r.ID, "")
	joined := append(first, rest...)
	if len(joined) != len(all) {
		t.Fatalf("resumed stream has %d events, the log %d", len(joined), len(all))
	}
	for i := range all {
		if joined[i].ID != all[i].ID {
			t.Fatalf("event %d: resumed %s, log %s", i, joined[i].ID, all[i].ID)
		}
	}
	checkComplete(t, joined, 10)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	for _, mode := range []app.Mode{app.Sequential, app.Distributed} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r, err := e.core.Launcher.Launch(t.Context(), app.Plan{Mode: mode, Tasks: 30, DelayMS: 200})
			if err != nil {
				t.Fatal(err)
			}
			// Cancel once the first task is running.
			ctx, cancel := context.WithCancel(t.Context())
			running := errors.New("running")
			e.core.Feed.Watch(ctx, r.ID, "", func(ev *app.Event) error {
				if ev.Type == app.TaskStarted {
					return running
				}
				return nil
			})
			cancel()
			got, err := e.core.Launcher.Cancel(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != app.StatusCanceled {
				t.Errorf("status after cancel = %s", got.Status)
			}
			evs := e.watch(t, r.ID, "")
			if last := evs[len(evs)-1]; last.Type != app.RunCanceled {
				t.Errorf("last event %s, want run.canceled", last.Type)
			}
			if _, err := e.core.Launcher.Cancel(t.Context(), r.ID); app.ErrorCode(err) != app.EConflict {
				t.Errorf("second cancel = %v, want conflict", err)
			}
			if mode == app.Distributed {
				// Pending tasks are deleted at once; canceled active ones are retried by asynq
				// and dropped by the worker: the queue drains without running the rest.
				waitFor(t, "the queue to drain", func() bool {
					info, err := e.core.Launcher.Inspector().GetQueueInfo(e.core.Config.Queue)
					return err == nil && info.Pending+info.Retry+info.Scheduled+info.Active == 0
				})
				if got := e.get(t, r.ID); got.Done > 10 {
					t.Errorf("%d tasks ended after cancel, want the few that had started", got.Done)
				}
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withoutWorker())
		if _, err := e.core.Launcher.Cancel(t.Context(), app.NewRunID()); app.ErrorCode(err) != app.ENotFound {
			t.Errorf("cancel of an unknown run = %v, want not found", err)
		}
	})
}

func TestOwnerGoneInterruptsRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutWorker())
	// A local run whose owner never heartbeats: the process died before any live one looked.
	r := &app.Run{ID: app.NewRunID(), Plan: app.Plan{Mode: app.Sequential, Tasks: 3, DelayMS: 1000, Parallelism: 1, Target: app.BuiltinTarget},
		Status: app.StatusRunning, CreatedAt: app.Now(), Owner: "gone-process"}
	if err := e.core.Runs.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	ids, err := e.core.Runs.SweepOrphans(t.Context())
	if err != nil || len(ids) != 1 || ids[0] != r.ID {
		t.Fatalf("SweepOrphans = %v, %v; want [%s]", ids, err, r.ID)
	}
	evs := e.watch(t, r.ID, "")
	if last := evs[len(evs)-1]; last.Type != app.RunInterrupted || last.Reason == "" {
		t.Errorf("last event %s, want run.interrupted with a reason", last.JSON())
	}
	if got := e.get(t, r.ID); got.Status != app.StatusInterrupted {
		t.Errorf("status %s, want interrupted", got.Status)
	}
	// A run of a live process is left alone.
	live, err := e.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Sequential, Tasks: 1, DelayMS: 300})
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.core.Runs.SweepOrphans(t.Context()); len(ids) != 0 {
		t.Errorf("SweepOrphans interrupted %v, a live process's run", ids)
	}
	e.watch(t, live.ID, "")
}

func TestShutdownInterruptsLocalRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutWorker())
	r, err := e.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Concurrent, Tasks: 50, DelayMS: 500, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	other := newEnvOn(t, e.url, withoutWorker())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	e.core.Shutdown(ctx)
	evs := other.watch(t, r.ID, "")
	if last := evs[len(evs)-1]; last.Type != app.RunInterrupted {
		t.Errorf("last event %s, want run.interrupted", last.Type)
	}
}

func TestFinalFailureEndsTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *app.Config) { c.MaxRetry = 0 }))
	for _, mode := range []app.Mode{app.Concurrent, app.Distributed} {
		r, evs := e.launchAndWatch(t, app.Plan{Mode: mode, Tasks: 10, DelayMS: 0, Parallelism: 5, FailureRate: 0.5})
		checkComplete(t, evs, 10)
		want := 0
		for i := range 10 {
			if app.FailsFirstAttempt(r.ID, i, 0.5) {
				want++
			}
		}
		if got := e.get(t, r.ID); got.Failed != want || got.Done != 10 || got.Status != app.StatusFinished {
			t.Errorf("%s: run = %+v, want 10 ended, %d failed, finished", mode, got, want)
		}
	}
}

func TestLimitsAndErrors(t *testing.T) {
	t.Parallel()
	t.Run("too many active runs", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withoutWorker(), withConfig(func(c *app.Config) { c.MaxActiveRuns = 2 }))
		p := app.Plan{Mode: app.Sequential, Tasks: 2, DelayMS: 500}
		for range 2 {
			if _, err := e.core.Launcher.Launch(t.Context(), p); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.core.Launcher.Launch(t.Context(), p); app.ErrorCode(err) != app.ETooMany {
			t.Errorf("third launch = %v, want too many", err)
		}
	})
	t.Run("no worker", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withoutWorker())
		_, err := e.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Distributed, Tasks: 2, DelayMS: 10})
		if app.ErrorCode(err) != app.EUnavailable {
			t.Errorf("launch without worker = %v, want unavailable", err)
		}
		runs, _, _ := e.core.Runs.List(t.Context(), app.ListQuery{})
		if len(runs) != 0 {
			t.Errorf("a refused launch saved %d runs", len(runs))
		}
	})
	t.Run("invalid plan never reaches redis", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withoutWorker())
		_, err := e.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Concurrent, Tasks: 5, Parallelism: 1000})
		if app.ErrorCode(err) != app.EInvalid {
			t.Errorf("launch = %v, want invalid", err)
		}
		if runs, _, _ := e.core.Runs.List(t.Context(), app.ListQuery{}); len(runs) != 0 {
			t.Errorf("an invalid launch saved %d runs", len(runs))
		}
	})
}

func TestListPagesAndFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for i := range 5 {
		mode := app.Sequential
		if i%2 == 1 {
			mode = app.Distributed
		}
		r, _ := e.launchAndWatch(t, app.Plan{Mode: mode, Tasks: 1, DelayMS: 0})
		ids = append(ids, r.ID)
	}
	var seen []string
	cursor := ""
	for {
		runs, next, err := e.core.Runs.List(t.Context(), app.ListQuery{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			seen = append(seen, r.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 5 {
		t.Fatalf("paged through %d runs, want 5", len(seen))
	}
	for i := range seen {
		if seen[i] != ids[4-i] {
			t.Fatalf("page order %v, want newest first %v", seen, ids)
		}
	}
	dist, _, _ := e.core.Runs.List(t.Context(), app.ListQuery{Mode: app.Distributed})
	if len(dist) != 2 {
		t.Errorf("%d distributed runs listed, want 2", len(dist))
	}
	// A run is compared with the latest sequential run of its plan before it: never a later
	// one, never itself.
	for _, tt := range []struct {
		run  int
		want string
	}{{3, ids[2]}, {4, ids[2]}, {0, ""}, {1, ids[0]}} {
		b, err := e.core.Runs.Baseline(t.Context(), e.get(t, ids[tt.run]))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if b != nil {
			got = b.ID
		}
		if got != tt.want {
			t.Errorf("run %d compared with %q, want %q", tt.run, got, tt.want)
		}
	}
	p, _, err := e.core.ReadRun(t.Context(), ids[3], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p.Summary.Baseline != ids[2] || p.Run.Baseline != ids[2] || p.Summary.SpeedUp == nil || p.Run.SpeedUp != p.Summary.SpeedUp {
		t.Errorf("summary %+v, run %+v; want both against %s", p.Summary, p.Run, ids[2])
	}
}

func TestRedisDown(t *testing.T) {
	// Its own server, since it is killed.
	srv := redistest.Start(t, redistest.WithAOF())
	e := newEnvOn(t, srv.URL(0))
	srv.Kill()
	start := time.Now()
	_, err := e.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Sequential, Tasks: 1})
	if app.ErrorCode(err) != app.EUnavailable {
		t.Errorf("launch with Redis down = %v, want unavailable", err)
	}
	if _, err := e.core.Runs.Get(t.Context(), app.NewRunID()); app.ErrorCode(err) != app.EUnavailable {
		t.Errorf("get with Redis down = %v, want unavailable", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("answers took %s with Redis down", d)
	}
	srv.Restart(t)
	waitFor(t, "Redis to answer again", func() bool { return e.core.Redis.Ping(t.Context()) == nil })
	r, evs := e.launchAndWatch(t, app.Plan{Mode: app.Distributed, Tasks: 3, DelayMS: 0})
	checkComplete(t, evs, 3)
	if e.get(t, r.ID).Status != app.StatusFinished {
		t.Error("run after restart did not finish")
	}
}
