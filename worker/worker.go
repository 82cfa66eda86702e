// Package worker runs the asynq server that executes distributed tasks.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/live"
	"github.com/taskrace/taskrace/live/wake"
)

// Config is how the worker serves its queue.
type Config struct {
	Concurrency       int
	TaskCheckInterval time.Duration // how long an idle worker sleeps between waits for a wake signal
	ShutdownTimeout   time.Duration // how long in-flight tasks get to finish on shutdown
}

// DefaultTaskCheckInterval is how long an idle worker sleeps each time a wait for a wake
// signal ends with the queue still empty (every 10 s): a task enqueued in that gap waits up
// to this long. An idle worker does not poll; see live/wake and docs/benchmarks.md.
const DefaultTaskCheckInterval = wake.DefaultTaskCheckInterval

// delayedTaskCheckInterval is how often the worker moves retries that are due back to the
// queue: a retry runs at most this long after its time. Each look is two scripts in Redis,
// the largest share of an idle worker's commands (docs/benchmarks.md).
const delayedTaskCheckInterval = 250 * time.Millisecond

// toWholeSecond returns the wait from now, at least d, that ends on a whole second. asynq
// keeps a retry's time in whole Unix seconds, truncated, so a wait of d from now would end
// anywhere from d−1 s to d s later; this one ends from d to d+1 s later.
func toWholeSecond(now time.Time, d time.Duration) time.Duration {
	at := now.Add(d)
	if s := at.Truncate(time.Second); s.Before(at) {
		at = s.Add(time.Second)
	}
	return at.Sub(now)
}

// Worker is an asynq server on the run queue whose handler is the core's Executor, recorded
// in the live record by the core's Recorder.
type Worker struct {
	core    *app.Core
	rdb     redis.UniversalClient // the server's own client, which carries the wake-up hook
	srv     *wake.Server
	stopped func() // ends the launcher's count of this server
}

// New returns a worker for core's queue. It runs nothing until Start.
func New(core *app.Core, cfg Config) *Worker {
	if cfg.TaskCheckInterval <= 0 {
		cfg.TaskCheckInterval = DefaultTaskCheckInterval
	}
	appCfg := core.Config
	// A client of its own: the wake-up hook acts on this server's dequeues only.
	rdb := core.Redis.Opt.MakeRedisClient().(redis.UniversalClient)
	srv := wake.NewServer(rdb, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{core.Config.Queue: 1},
		TaskCheckInterval:        cfg.TaskCheckInterval,
		DelayedTaskCheckInterval: delayedTaskCheckInterval,
		RetryDelayFunc: func(retried int, _ error, _ *asynq.Task) time.Duration {
			return toWholeSecond(time.Now(), appCfg.RetryWait(retried))
		},
		ShutdownTimeout: cfg.ShutdownTimeout,
		Logger:          asynqLogger{core.Logger},
		LogLevel:        asynq.WarnLevel,
	})
	return &Worker{core: core, rdb: rdb, srv: srv}
}

// Start starts processing tasks.
func (w *Worker) Start() error {
	mux := asynq.NewServeMux()
	// The recorder hands each attempt its worker slot too (0…concurrency−1, lowest free
	// first), which the run's events carry: one slot for both records.
	mux.Use(w.core.Recorder.Middleware)
	mux.HandleFunc(app.TypeFetch, w.handleFetch)
	if err := w.srv.Start(mux); err != nil {
		return err
	}
	info, err := w.awaitListed()
	if err != nil {
		return err
	}
	w.stopped = w.core.Launcher.Serving(info)
	return nil
}

// awaitListed waits until this server's first heartbeat is in Redis, so that the capacity a
// launch sees includes it from the moment Start returns, and returns how asynq lists it.
func (w *Worker) awaitListed() (*asynq.ServerInfo, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		servers, err := w.core.Launcher.Inspector().Servers()
		if err == nil {
			for _, s := range servers {
				if s.Host == w.core.Host && s.PID == w.core.PID {
					if _, ok := s.Queues[w.core.Config.Queue]; ok {
						return s, nil
					}
				}
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the worker did not appear in Redis within 5s: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling Redis: asynq offers nothing to wait on
	}
}

// Shutdown stops taking tasks and waits for the in-flight ones, up to the shutdown timeout.
func (w *Worker) Shutdown() {
	if w.stopped != nil {
		w.stopped() // no launch counts it from here on
	}
	w.srv.Shutdown()
	w.rdb.Close()
}

func (w *Worker) handleFetch(ctx context.Context, t *asynq.Task) error {
	p, err := app.ParseTaskPayload(t.Payload())
	if err != nil {
		return errors.Join(err, asynq.SkipRetry)
	}
	if w.core.Launcher.Canceled(p.ID) {
		return app.ErrRunEnded // a retry of a canceled run's task: nothing left to do
	}
	attempt, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	slot := 0
	a, ok := live.AttemptFrom(ctx)
	if ok {
		slot = a.Worker().Slot
	}
	err = w.core.Executor.Execute(ctx, p, a, w.core.Worker(slot), attempt, attempt >= maxRetry)
	if err != nil && ctx.Err() != nil {
		// Canceled: if the run was canceled there is nothing left to do.
		if r, gerr := w.core.Runs.Get(context.WithoutCancel(ctx), p.ID); gerr == nil && r.Ended() {
			return app.ErrRunEnded
		}
	}
	return err
}

// asynqLogger sends asynq's log lines to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug("asynq", "msg", args) }
func (a asynqLogger) Info(args ...any)  { a.l.Info("asynq", "msg", args) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn("asynq", "msg", args) }
func (a asynqLogger) Error(args ...any) { a.l.Error("asynq", "msg", args) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error("asynq", "msg", args) }
