package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/examples/workload/tasks"
	"github.com/taskrace/taskrace/live"
	"github.com/taskrace/taskrace/templates"
)

// The "Mixed workload" launch: the example application's task types (fast, slow, CPU-bound,
// flaky), run in this process by an asynq server of their own on queue workload, recorded
// with package live as any application's would be, and watched at /tasks. It needs no
// other process, so it works on embedded Redis too.

// Bounds of one launch.
const (
	workloadQueue       = templates.WorkloadQueue
	workloadConcurrency = 8
	workloadMaxTasks    = 5000
	workloadMaxRate     = 200
)

// workload is the in-process asynq server of the mixed workload, started by its first
// launch and stopped on Shutdown, and the enqueuer of the latest launch.
type workload struct {
	mu     sync.Mutex
	srv    *asynq.Server
	rec    *live.Recorder
	client *asynq.Client
	stop   context.CancelFunc // ends the enqueuer of the latest launch
	wg     sync.WaitGroup
	closed bool
}

func (s *Server) registerWorkload() {
	s.route(fiber.MethodPost, "/workload", launch, s.workloadForm)
}

// workloadForm starts a mixed workload from the home page and opens /tasks on it.
func (s *Server) workloadForm(c *fiber.Ctx) error {
	n, err1 := strconv.Atoi(strings.TrimSpace(c.FormValue("tasks", strconv.Itoa(templates.WorkloadTasks))))
	rate, err2 := strconv.ParseFloat(strings.TrimSpace(c.FormValue("rate", strconv.Itoa(templates.WorkloadRate))), 64)
	var err error
	switch {
	case err1 != nil || n < 1 || n > workloadMaxTasks:
		err = app.Invalid("tasks", "must be a whole number from 1 to %d; got %q", workloadMaxTasks, c.FormValue("tasks"))
	case err2 != nil || !(rate > 0 && rate <= workloadMaxRate):
		err = app.Invalid("rate", "must be a number of tasks a second above 0 and at most %d; got %q", workloadMaxRate, c.FormValue("rate"))
	default:
		err = s.startWorkload(n, rate)
	}
	if err != nil {
		return s.pageError(c, err)
	}
	return c.Redirect(templates.TasksURL("queue:"+workloadQueue, "", ""), http.StatusSeeOther)
}

// startWorkload enqueues n tasks of the mix at rate a second, replacing a launch still
// enqueueing, and starts the in-process server on the first launch.
func (s *Server) startWorkload(n int, rate float64) error {
	w := &s.workload
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || s.base.Err() != nil {
		return app.Unavailable("the server is shutting down", nil)
	}
	if w.srv == nil {
		opt := s.core.Redis.Opt
		rec, err := live.NewRecorder(opt, live.Options{Concurrency: workloadConcurrency, PayloadBytes: 256, ResultBytes: 256, Logger: s.logger})
		if err != nil {
			return fmt.Errorf("web: the workload's recorder: %w", err)
		}
		srv := asynq.NewServer(opt, asynq.Config{
			Concurrency:              workloadConcurrency,
			Queues:                   map[string]int{workloadQueue: 1},
			TaskCheckInterval:        20 * time.Millisecond,
			DelayedTaskCheckInterval: 500 * time.Millisecond,
			RetryDelayFunc:           tasks.RetryDelay,
			ShutdownTimeout:          2 * time.Second,
			LogLevel:                 asynq.ErrorLevel,
		})
		mux := asynq.NewServeMux()
		mux.Use(rec.Middleware)
		tasks.Register(mux, tasks.Config{})
		if err := srv.Start(mux); err != nil {
			rec.Close()
			return app.Unavailable("cannot start the workload's asynq server", err)
		}
		w.srv, w.rec, w.client = srv, rec, asynq.NewClient(opt)
	}
	if w.stop != nil {
		w.stop()
	}
	ctx, cancel := context.WithCancel(s.base)
	w.stop = cancel
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if _, err := tasks.Enqueue(ctx, w.client, workloadQueue, rate, n); err != nil {
			s.logger.Warn("the mixed workload stopped enqueueing", "err", err)
		}
	}()
	return nil
}

// shutdown stops the enqueuer, then the server, then writes what the recorder holds.
func (w *workload) shutdown() {
	w.mu.Lock()
	w.closed = true
	if w.stop != nil {
		w.stop()
	}
	w.mu.Unlock()
	w.wg.Wait()
	if w.srv != nil {
		w.srv.Shutdown()
		w.rec.Close()
		w.client.Close()
	}
}
