package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/internal/redistest"
	"github.com/taskrace/taskrace/live"
	"github.com/taskrace/taskrace/worker"
)

var (
	redisSrv *redistest.Server
	discard  = slog.New(slog.NewTextHandler(io.Discard, nil))
)

func TestMain(m *testing.M) {
	s, err := redistest.StartProcess(redistest.WithDatabases(64))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	redisSrv = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// env is one process's domain over its own Redis database, with a delay target on loopback
// and, optionally, an in-process worker.
type env struct {
	core   *app.Core
	worker *worker.Worker
	url    string
}

type envOption func(*app.Config, *bool)

func withoutWorker() envOption { return func(_ *app.Config, w *bool) { *w = false } }
func withConfig(f func(*app.Config)) envOption {
	return func(c *app.Config, _ *bool) { f(c) }
}

var target = httptest.NewServer(httpbin.New(httpbin.WithMaxDuration(30 * time.Second)))

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, redisSrv.URL(redisSrv.NextDB()), opts...)
}

// newEnvOn starts another process-like domain on the Redis at url.
func newEnvOn(t *testing.T, url string, opts ...envOption) *env {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.BuiltinURL = target.URL
	cfg.RetryDelay = 20 * time.Millisecond
	withWorker := true
	for _, o := range opts {
		o(&cfg, &withWorker)
	}
	r, err := app.OpenRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	core := app.NewCore(cfg, r, discard)
	if err := core.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e := &env{core: core, url: url}
	if withWorker {
		e.worker = worker.New(core, worker.Config{Concurrency: 5, ShutdownTimeout: 2 * time.Second})
		if err := e.worker.Start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if e.worker != nil {
			e.worker.Shutdown()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		core.Shutdown(ctx)
		r.Close()
	})
	return e
}

// launchAndWatch launches p and collects its events up to the terminal one.
func (e *env) launchAndWatch(t *testing.T, p app.Plan) (*app.Run, []*app.Event) {
	t.Helper()
	r, err := e.core.Launcher.Launch(t.Context(), p)
	if err != nil {
		t.Fatalf("Launch(%+v): %v", p, err)
	}
	return r, e.watch(t, r.ID, "")
}

func (e *env) watch(t *testing.T, runID, after string) []*app.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var evs []*app.Event
	err := e.core.Feed.Watch(ctx, runID, after, func(ev *app.Event) error {
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		t.Fatalf("Watch(%s): %v after %d events", runID, err, len(evs))
	}
	return evs
}

func (e *env) get(t *testing.T, id string) *app.Run {
	t.Helper()
	r, err := e.core.Runs.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkComplete asserts that evs tell a whole, ordered story of a finished run of n tasks.
func checkComplete(t *testing.T, evs []*app.Event, n int) {
	t.Helper()
	if len(evs) == 0 || evs[0].Type != app.RunCreated {
		t.Fatalf("first event is not run.created: %v", types(evs))
	}
	last := evs[len(evs)-1]
	if last.Type != app.RunFinished {
		t.Fatalf("last event is %s, want run.finished", last.Type)
	}
	if last.WallMS == nil || last.IdealMS == nil || last.Efficiency == nil {
		t.Fatalf("run.finished lacks wall, ideal or efficiency: %s", last.JSON())
	}
	queued := make([]int, n)
	started := make([]int, n)
	finished := make([]int, n)
	for i, ev := range evs {
		if i > 0 && app.CompareIDs(evs[i-1].ID, ev.ID) >= 0 {
			t.Fatalf("event %d's ID %s does not follow %s", i, ev.ID, evs[i-1].ID)
		}
		if ev.Type == app.TasksQueued {
			for x := range min(ev.Tasks, n) {
				queued[x]++
			}
		}
		if ev.Index == nil {
			continue
		}
		x := *ev.Index
		switch ev.Type {
		case app.TaskQueued:
			queued[x]++
		case app.TaskStarted:
			if queued[x] == 0 {
				t.Errorf("task %d started before it was queued", x)
			}
			if ev.Worker == nil || ev.Worker.Host == "" || ev.Worker.PID == 0 {
				t.Errorf("task %d started without a worker: %s", x, ev.JSON())
			}
			started[x]++
		case app.TaskFinished, app.TaskFailed:
			if ev.Type == app.TaskFailed && ev.Retry != nil && *ev.Retry {
				continue
			}
			if started[x] == 0 {
				t.Errorf("task %d ended before it started", x)
			}
			finished[x]++
		}
	}
	for i := range n {
		if queued[i] != 1 || finished[i] != 1 {
			t.Errorf("task %d: queued %d times, ended %d times; want once each", i, queued[i], finished[i])
		}
	}
}

func types(evs []*app.Event) []string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = e.Type
	}
	return s
}

func count(evs []*app.Event, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func TestModesEndToEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode      app.Mode
		par       int
		wantPar   int
		maxRounds int
	}{
		{app.Sequential, 0, 1, 6},
		{app.Concurrent, 3, 3, 2},
		{app.Distributed, 0, 5, 2},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r, evs := e.launchAndWatch(t, app.Plan{Mode: tt.mode, Tasks: 6, DelayMS: 50, Parallelism: tt.par})
			checkComplete(t, evs, 6)
			got := e.get(t, r.ID)
			if got.Status != app.StatusFinished || got.Done != 6 || got.Failed != 0 || got.Parallelism != tt.wantPar {
				t.Errorf("run = %+v, want finished, 6 done, parallelism %d", got, tt.wantPar)
			}
			if got.WallMS == nil || *got.WallMS < got.IdealMS {
				t.Errorf("wall %v below the physical limit %v", got.WallMS, got.IdealMS)
			}
			tl := app.Project(got, evs, time.Now(), nil)
			slots := map[string]bool{}
			for _, task := range tl.Tasks {
				if task.State != app.TaskStateDone || task.HTTPStatus != 200 || task.DurationMS == nil || *task.DurationMS < 50 {
					t.Errorf("task %d = %+v, want done in ≥ 50 ms with status 200", task.Index, task)
				}
				slots[task.Worker.String()] = true
			}
			if len(slots) > tt.wantPar {
				t.Errorf("tasks ran on %d slots, more than parallelism %d", len(slots), tt.wantPar)
			}
		})
	}
}

func TestRetriesAreVisibleAndCountedOnce(t *testing.T) {
	t.Parallel()
	for _, mode := range []app.Mode{app.Concurrent, app.Distributed} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r, evs := e.launchAndWatch(t, app.Plan{Mode: mode, Tasks: 20, DelayMS: 10, Parallelism: 5, FailureRate: 0.3})
			checkComplete(t, evs, 20)
			want := 0
			for i := range 20 {
				if app.FailsFirstAttempt(r.ID, i, 0.3) {
					want++
				}
			}
			if want == 0 {
				t.Skip("no task picked to fail in this run") // the hash picks none: nothing to see
			}
			if got := count(evs, app.TaskFailed); got != want {
				t.Errorf("%d task.failed events, want %d (one per picked task)", got, want)
			}
			for _, ev := range evs {
				if ev.Type == app.TaskFailed && (ev.Retry == nil || !*ev.Retry || ev.Error == "") {
					t.Errorf("failed first attempt not marked for retry: %s", ev.JSON())
				}
			}
			got := e.get(t, r.ID)
			if got.Done != 20 || got.Failed != 0 || got.Status != app.StatusFinished {
				t.Errorf("run = %+v, want 20 done, 0 failed", got)
			}
			// The projection shows each failed attempt, then the retry that succeeded.
			p := app.Project(got, evs, time.Now(), nil)
			if s := p.Summary; s.Retries != want || s.FailedAttempts != want || s.Done != 20 || s.Status != app.StatusFinished {
				t.Errorf("summary %+v, want %d retries and failed attempts, 20 done", s, want)
			}
			for i, task := range p.Tasks {
				var outcomes []string
				for _, a := range task.History {
					outcomes = append(outcomes, a.Outcome)
				}
				wantOutcomes := []string{app.AttemptDone}
				if app.FailsFirstAttempt(r.ID, i, 0.3) {
					wantOutcomes = []string{app.AttemptFailed, app.AttemptDone}
					if !task.History[0].Retry || task.History[0].EndedAt.Before(task.History[0].StartedAt.Time) {
						t.Errorf("task %d failed attempt %+v", i, task.History[0])
					}
				}
				if task.State != app.TaskStateDone || !slices.Equal(outcomes, wantOutcomes) {
					t.Errorf("task %d: %s with attempts %v, want done after %v", i, task.State, outcomes, wantOutcomes)
				}
			}
		})
	}
}

func TestFinishingTwiceCountsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutWorker())
	// A run whose tasks are executed here by hand, as asynq does when it delivers a task
	// again (a lease that expired mid-task, a worker that died after finishing).
	r := &app.Run{ID: app.NewRunID(), Plan: app.Plan{Mode: app.Distributed, Tasks: 2, Parallelism: 1, Target: app.BuiltinTarget},
		Status: app.StatusRunning, CreatedAt: app.Now()}
	if err := e.core.Runs.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	p := app.TaskPayload{RunRef: app.RunRef{ID: r.ID, CreatedAt: r.CreatedAt, Tasks: 2, Target: app.BuiltinTarget}}
	for range 3 {
		if err := e.core.Executor.Execute(t.Context(), p, nil, e.core.Worker(0), 0, false); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.get(t, r.ID); got.Done != 1 || got.Status != app.StatusRunning {
		t.Fatalf("after task 0 ran 3 times: done %d, status %s; want 1, running", got.Done, got.Status)
	}
	p.Index = 1
	for range 2 {
		if err := e.core.Executor.Execute(t.Context(), p, nil, e.core.Worker(0), 0, false); err != nil {
			t.Fatal(err)
		}
	}
	evs := e.watch(t, r.ID, "")
	if n := count(evs, app.RunFinished); n != 1 {
		t.Errorf("%d run.finished events, want exactly 1", n)
	}
	if n := count(evs, app.TaskFinished); n != 2 {
		t.Errorf("%d task.finished events, want 2", n)
	}
	got := e.get(t, r.ID)
	if got.Done != 2 || got.Status != app.StatusFinished {
		t.Errorf("run = %+v, want 2 done, finished", got)
	}
	// run.finished, which the finish script writes itself, says what the record says.
	fin := evs[len(evs)-1]
	if fin.Type != app.RunFinished || fin.RunID != r.ID || fin.WallMS == nil || got.WallMS == nil || *fin.WallMS != *got.WallMS ||
		fin.Efficiency == nil || got.Efficiency == nil || *fin.Efficiency != *got.Efficiency ||
		fin.IdealMS == nil || *fin.IdealMS != got.IdealMS || !fin.At.Equal(got.EndedAt.Time) {
		t.Errorf("run.finished %s, the record: wall %v, efficiency %v, ideal %v, ended %v", fin.JSON(), got.WallMS, got.Efficiency, got.IdealMS, got.EndedAt)
	}
}

// An attempt that ends after its run was canceled is not counted, and its live record, written
// by the same script, says it was revoked: the task reads canceled in both records. One that
// ends while the run runs is recorded as it ended, once.
func TestAnEndAfterTheRunEndedIsRevoked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutWorker())
	reader, err := live.NewReader(e.core.Redis.Opt, live.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	r := &app.Run{ID: app.NewRunID(), Plan: app.Plan{Mode: app.Distributed, Tasks: 2, Parallelism: 1, Target: app.BuiltinTarget},
		Status: app.StatusRunning, CreatedAt: app.Now()}
	if err := e.core.Runs.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	ref := app.RunRef{ID: r.ID, CreatedAt: r.CreatedAt, Tasks: 2, Target: app.BuiltinTarget, Mode: app.Distributed}
	execute := func(i int) error {
		info := live.Info{Queue: e.core.Config.Queue, ID: app.TaskID(r.ID, i), Type: app.TypeFetch, Attempt: 1, MaxRetry: 1}
		a := e.core.Recorder.Start(info)
		err := e.core.Executor.Execute(t.Context(), app.TaskPayload{RunRef: ref, Index: i}, a, e.core.Worker(0), 0, false)
		if serr := a.End(t.Context(), err); serr != nil {
			t.Fatal(serr) // nothing left to record: the script stored it
		}
		return err
	}
	if err := execute(0); err != nil {
		t.Fatalf("task 0 while the run runs: %v", err)
	}
	if _, err := e.core.Launcher.Cancel(t.Context(), r.ID); err != nil {
		t.Fatal(err)
	}
	if err := execute(1); !errors.Is(err, app.ErrRunEnded) || !errors.Is(err, asynq.RevokeTask) {
		t.Fatalf("task 1 after the cancel: %v, want ErrRunEnded (asynq.RevokeTask)", err)
	}
	if err := reader.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs, err := e.core.Log.ReadAll(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := app.Project(e.get(t, r.ID), evs, time.Time{}, nil)
	for i, want := range []struct{ state, exit string }{{app.TaskStateDone, live.ExitSuccess}, {app.TaskStateCanceled, live.ExitRevoked}} {
		task, err := reader.Task(t.Context(), e.core.Config.Queue, app.TaskID(r.ID, i), 0)
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		if task.State != want.state || task.Exit != want.exit || task.Attempts != 1 || p.Tasks[i].State != want.state {
			t.Errorf("task %d: live %s (exit %s, %d attempts), run %s; want %s, exit %s, 1 attempt",
				i, task.State, task.Exit, task.Attempts, p.Tasks[i].State, want.state, want.exit)
		}
	}
	if n := count(evs, app.TaskFinished); n != 1 {
		t.Errorf("%d task.finished, want 1: the end after the cancel is not counted", n)
	}
}

// Task ends are stored concurrently, so the end stored last need not be the latest: the run
// still ends at its latest task's end, never before a task ended (a replay at any instant
// would otherwise see a finished run with a task not ended, which reads canceled).
func TestRunEndsAtItsLatestTaskEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutWorker())
	r := &app.Run{ID: app.NewRunID(), Plan: app.Plan{Mode: app.Concurrent, Tasks: 2, Parallelism: 2, Target: app.BuiltinTarget},
		Status: app.StatusRunning, CreatedAt: app.Now(), IdealMS: 40}
	if err := e.core.Runs.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	ref := app.RunRef{ID: r.ID, CreatedAt: r.CreatedAt, Tasks: 2, Target: app.BuiltinTarget, IdealMS: 40, Mode: app.Concurrent}
	end := func(index int, after time.Duration) {
		i := index
		ev := &app.Event{Type: app.TaskFinished, RunID: r.ID, At: app.Time{Time: r.CreatedAt.Add(after)}, Index: &i}
		if _, err := e.core.Runs.Finish(t.Context(), ref, index, ev, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	end(1, 50*time.Millisecond) // the later end is stored first
	end(0, 30*time.Millisecond)
	got := e.get(t, r.ID)
	want := r.CreatedAt.Add(50 * time.Millisecond)
	if got.Status != app.StatusFinished || !got.EndedAt.Equal(want) || got.WallMS == nil || *got.WallMS != 50 {
		t.Fatalf("run = status %s, ended %v, wall %v; want finished at %v after 50 ms", got.Status, got.EndedAt, got.WallMS, want)
	}
	evs := e.watch(t, r.ID, "")
	fin := evs[len(evs)-1]
	if fin.Type != app.RunFinished || !fin.At.Equal(want) || fin.WallMS == nil || *fin.WallMS != 50 || fin.Efficiency == nil || *fin.Efficiency != 0.8 {
		t.Errorf("last event %+v, want run.finished at %v, wall 50 ms, efficiency 0.8", fin, want)
	}
}
