package app_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/worker"
)

// Benchmarks of the engine against a real redis-server (figures in docs/benchmarks.md):
//
//	go test ./app -run '^$' -bench . -benchtime 1x

// benchEnv is newEnv with a worker of the given concurrency.
func benchEnv(b *testing.B, concurrency int) *env {
	b.Helper()
	return benchEnvOn(b, redisSrv.URL(redisSrv.NextDB()), concurrency, worker.DefaultTaskCheckInterval)
}

// benchEnvOn is benchEnv on the Redis at url, with the worker polling every poll.
func benchEnvOn(b *testing.B, url string, concurrency int, poll time.Duration) *env {
	b.Helper()
	cfg := app.DefaultConfig()
	cfg.BuiltinURL = target.URL
	cfg.Limits.MaxTasks = 100_000
	r, err := app.OpenRedis(url)
	if err != nil {
		b.Fatal(err)
	}
	core := app.NewCore(cfg, r, discard)
	if err := core.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	e := &env{core: core}
	if concurrency > 0 {
		e.worker = worker.New(core, worker.Config{Concurrency: concurrency, TaskCheckInterval: poll, ShutdownTimeout: 5 * time.Second})
		if err := e.worker.Start(); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
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

// runOnce launches p and waits for its end; it returns the run's wall time (from event
// times) and the time the caller saw, on the monotonic clock.
func runOnce(b *testing.B, e *env, p app.Plan) (*app.Run, time.Duration) {
	b.Helper()
	start := time.Now()
	r, err := e.core.Launcher.Launch(b.Context(), p)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.core.Feed.Watch(b.Context(), r.ID, "", func(*app.Event) error { return nil }); err != nil {
		b.Fatal(err)
	}
	seen := time.Since(start)
	got, err := e.core.Runs.Get(b.Context(), r.ID)
	if err != nil {
		b.Fatal(err)
	}
	if got.Status != app.StatusFinished || got.Failed != 0 {
		b.Fatalf("run %s ended %s with %d failed", got.ID, got.Status, got.Failed)
	}
	return got, seen
}

// BenchmarkSeed reproduces the original demo: 10 tasks × 3 s.
func BenchmarkSeed(b *testing.B) {
	cases := []struct {
		name        string
		mode        app.Mode
		concurrency int
	}{
		{"sequential", app.Sequential, 0},
		{"distributed-c5", app.Distributed, 5},
		{"distributed-c10", app.Distributed, 10},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			e := benchEnv(b, c.concurrency)
			var wall float64
			for b.Loop() {
				r, _ := runOnce(b, e, app.Plan{Mode: c.mode, Tasks: 10, DelayMS: 3000})
				wall = *r.WallMS
			}
			b.ReportMetric(wall/1000, "wall-s")
		})
	}
}

// BenchmarkPickup measures enqueue → task.started on an idle queue: one task at a time,
// enqueued straight to asynq, with the worker idle in between.
func BenchmarkPickup(b *testing.B) {
	e := benchEnv(b, 5)
	client := asynq.NewClientFromRedisClient(e.core.Redis.Client)
	defer client.Close()
	r := &app.Run{ID: app.NewRunID(), Plan: app.Plan{Mode: app.Distributed, Tasks: 1_000_000, Parallelism: 5, Target: app.BuiltinTarget},
		Status: app.StatusRunning, CreatedAt: app.Now()}
	if err := e.core.Runs.Create(b.Context(), r); err != nil {
		b.Fatal(err)
	}
	ref := app.RunRef{ID: r.ID, CreatedAt: r.CreatedAt, Tasks: r.Tasks, Target: app.BuiltinTarget}
	started := make(chan app.Time, 16)
	go e.core.Feed.Watch(b.Context(), r.ID, "", func(ev *app.Event) error {
		if ev.Type == app.TaskStarted {
			started <- ev.At
		}
		return nil
	})
	var lat []time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		// Let the worker go idle, as a queue between demo runs is.
		idle := time.NewTimer(20 * time.Millisecond)
		<-idle.C
		b.StartTimer()
		t0 := time.Now()
		if _, err := client.Enqueue(app.NewFetchTask(ref, i, e.core.Config.Queue, 0, time.Hour)); err != nil {
			b.Fatal(err)
		}
		// The task's own task.started time, against the enqueue time, same host and clock.
		at := <-started
		lat = append(lat, at.Sub(t0))
		i++
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
}

// BenchmarkThroughput runs 10,000 zero-delay tasks, through taskrace and through a bare
// asynq handler that does nothing, on the same Redis with the same concurrency and options.
func BenchmarkThroughput(b *testing.B) {
	const n = 10_000
	b.Run("taskrace", func(b *testing.B) {
		e := benchEnv(b, 5)
		var rate float64
		for b.Loop() {
			start := time.Now()
			r, err := e.core.Launcher.Launch(b.Context(), app.Plan{Mode: app.Distributed, Tasks: n, DelayMS: 0})
			if err != nil {
				b.Fatal(err)
			}
			// Nobody watches this run, as with the bare handler: poll its record for the end
			// rather than follow its stream, which would add a viewer's cost.
			for {
				got, err := e.core.Runs.Get(b.Context(), r.ID)
				if err != nil {
					b.Fatal(err)
				}
				if got.Ended() {
					if got.Status != app.StatusFinished || got.Failed != 0 {
						b.Fatalf("run ended %s, %d failed", got.Status, got.Failed)
					}
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			rate = n / time.Since(start).Seconds()
		}
		b.ReportMetric(rate, "tasks/s")
	})
	b.Run("taskrace-watched", func(b *testing.B) {
		e := benchEnv(b, 5)
		var rate float64
		for b.Loop() {
			_, seen := runOnce(b, e, app.Plan{Mode: app.Distributed, Tasks: n, DelayMS: 0})
			rate = n / seen.Seconds()
		}
		b.ReportMetric(rate, "tasks/s")
	})
	b.Run("bare-asynq", func(b *testing.B) {
		e := benchEnv(b, 0)
		var done atomic.Int64
		all := make(chan struct{}, 1)
		srv := asynq.NewServerFromRedisClient(e.core.Redis.Client, asynq.Config{Concurrency: 5,
			Queues: map[string]int{"bare": 1}, TaskCheckInterval: worker.DefaultTaskCheckInterval, LogLevel: asynq.ErrorLevel})
		mux := asynq.NewServeMux()
		mux.HandleFunc(app.TypeFetch, func(context.Context, *asynq.Task) error {
			if done.Add(1) == n {
				all <- struct{}{}
			}
			return nil
		})
		if err := srv.Start(mux); err != nil {
			b.Fatal(err)
		}
		defer srv.Shutdown()
		client := asynq.NewClientFromRedisClient(e.core.Redis.Client)
		var rate float64
		for b.Loop() {
			done.Store(0)
			id := app.NewRunID()
			ref := app.RunRef{ID: id, CreatedAt: app.Now(), Tasks: n, Target: app.BuiltinTarget}
			start := time.Now()
			errs := make(chan error, 8)
			for w := range 8 { // enqueued as the launcher does
				go func() {
					for i := w; i < n; i += 8 {
						if _, err := client.Enqueue(app.NewFetchTask(ref, i, "bare", 3, time.Hour)); err != nil {
							errs <- err
							return
						}
					}
					errs <- nil
				}()
			}
			for range 8 {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			<-all
			rate = n / time.Since(start).Seconds()
		}
		b.ReportMetric(rate, "tasks/s")
	})
}

// BenchmarkLaunchMaxTasks times the launch of a MAX_TASKS (10,000-task) distributed run,
// from the call to the run being accepted with every task on the queue, as `serve` does it:
// with its in-process worker running, on embedded Redis and on a redis-server. Between
// launches the run is canceled and its tasks removed, untimed; the time that takes is
// reported too.
//
//	go test ./app -run '^$' -bench LaunchMaxTasks -benchtime 3x
func BenchmarkLaunchMaxTasks(b *testing.B) {
	n := app.DefaultLimits.MaxTasks
	cases := []struct {
		name string
		url  func(b *testing.B) string
		poll time.Duration
	}{
		{"embedded", func(b *testing.B) string {
			m, err := app.StartEmbeddedRedis()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(m.Close)
			return m.URL()
		}, worker.DefaultTaskCheckInterval},
		{"redis", func(*testing.B) string { return redisSrv.URL(redisSrv.NextDB()) }, worker.DefaultTaskCheckInterval},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			e := benchEnvOn(b, c.url(b), 5, c.poll)
			q := e.core.Config.Queue
			var launch, drain []time.Duration
			for b.Loop() {
				start := time.Now()
				r, err := e.core.Launcher.Launch(b.Context(), app.Plan{Mode: app.Distributed, Tasks: n, DelayMS: 10_000})
				if err != nil {
					b.Fatal(err)
				}
				launch = append(launch, time.Since(start))
				b.StopTimer()
				start = time.Now()
				if _, err := e.core.Launcher.Cancel(b.Context(), r.ID); err != nil {
					b.Fatal(err)
				}
				for { // the tasks are removed in the background: poll until they are
					info, err := e.core.Launcher.Inspector().GetQueueInfo(q)
					if err != nil {
						b.Fatal(err)
					}
					if info.Pending == 0 {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				drain = append(drain, time.Since(start))
				b.StartTimer()
			}
			slices.Sort(launch)
			slices.Sort(drain)
			b.ReportMetric(launch[len(launch)-1].Seconds(), "max-launch-s")
			b.ReportMetric(drain[len(drain)-1].Seconds(), "max-cancel-drain-s")
		})
	}
}

// BenchmarkMemory runs 1,000 tasks through the in-process worker and reports this
// process's peak resident memory, an upper bound of what `serve` needs for it.
func BenchmarkMemory(b *testing.B) {
	e := benchEnv(b, 5)
	for b.Loop() {
		runOnce(b, e, app.Plan{Mode: app.Distributed, Tasks: 1000, DelayMS: 100})
	}
	hwm, err := peakRSS()
	if err != nil {
		b.Skip(err)
	}
	b.ReportMetric(hwm, "peak-rss-MB")
}

func peakRSS() (float64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
