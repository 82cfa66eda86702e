package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/taskrace/taskrace/live"
)

// Errors that end a local run's context, telling the run how to record its end.
var (
	errCanceled = errors.New("run canceled")
	errShutdown = errors.New("server shut down")
)

// Launcher starts runs in all three modes and cancels them. Local runs execute in this
// process, which owns them: it heartbeats in Redis, and a run whose owner is gone is
// marked interrupted by any live process.
type Launcher struct {
	c         *Core
	client    *asynq.Client
	inspector *asynq.Inspector

	mu       sync.Mutex
	local    map[string]context.CancelCauseFunc
	serving  map[string]*asynq.ServerInfo // this process's asynq servers, by ID
	canceled sync.Map                     // run ID → when this process heard it was canceled

	ctx    context.Context // ends on shutdown; parent of every local run
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

func newLauncher(c *Core) *Launcher {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Launcher{c: c,
		client:    asynq.NewClientFromRedisClient(c.Redis.Client),
		inspector: asynq.NewInspectorFromRedisClient(c.Redis.Client),
		local:     make(map[string]context.CancelCauseFunc),
		serving:   make(map[string]*asynq.ServerInfo),
		ctx:       ctx, cancel: cancel}
}

// Inspector is asynq's view of the queues, on this process's Redis connection.
func (l *Launcher) Inspector() *asynq.Inspector { return l.inspector }

func (l *Launcher) start(ctx context.Context) error {
	if err := l.c.Runs.Heartbeat(ctx, l.c.ProcID); err != nil {
		return Unavailable("cannot record this process's heartbeat", err)
	}
	l.sweep(ctx)
	l.warm(ctx)
	sub := l.c.Redis.Client.Subscribe(ctx, keyCancel)
	l.wg.Add(2)
	go l.heartbeat()
	go l.listenCancels(sub)
	return nil
}

// warm opens the connections a distributed launch's fan-out enqueues on (taskFanOut at
// once), so that the first launch after start does not wait for them to be dialed; they
// stay in the pool, idle, until they are used. A connection that cannot be had is left
// for the launch to dial.
func (l *Launcher) warm(ctx context.Context) {
	c, ok := l.c.Redis.Client.(*redis.Client)
	if !ok {
		return
	}
	var conns []*redis.Conn
	for range taskFanOut {
		cn := c.Conn()
		conns = append(conns, cn)
		if cn.Ping(ctx).Err() != nil {
			break
		}
	}
	for _, cn := range conns {
		cn.Close() // back to the pool
	}
}

// heartbeat keeps this process's ownership alive and interrupts runs of dead processes.
func (l *Launcher) heartbeat() {
	defer l.wg.Done()
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
			if err := l.c.Runs.Heartbeat(ctx, l.c.ProcID); err != nil {
				l.c.Logger.Warn("heartbeat failed", "err", err)
			}
			l.sweep(ctx)
			cancel()
			l.canceled.Range(func(k, v any) bool {
				if time.Since(v.(time.Time)) > time.Hour {
					l.canceled.Delete(k)
				}
				return true
			})
		}
	}
}

func (l *Launcher) sweep(ctx context.Context) {
	ids, err := l.c.Runs.SweepOrphans(ctx)
	if err != nil {
		l.c.Logger.Warn("cannot sweep orphaned runs", "err", err)
	}
	for _, id := range ids {
		l.c.Logger.Info("run interrupted: its process is gone", "run", id)
	}
}

// listenCancels ends local runs canceled from any process.
func (l *Launcher) listenCancels(sub *redis.PubSub) {
	defer l.wg.Done()
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-l.ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			l.cancelLocal(m.Payload)
		}
	}
}

// Launch validates p, saves the run and starts it. Distributed plans take the live
// capacity of the workers as their parallelism.
func (l *Launcher) Launch(ctx context.Context, p Plan) (*Run, error) {
	if l.ctx.Err() != nil {
		return nil, Errorf(EUnavailable, "the server is shutting down; launch again in a moment")
	}
	p = p.Normalize()
	if err := p.Validate(l.c.Config.Limits); err != nil {
		return nil, err
	}
	if p.Mode == Distributed {
		capacity, err := l.Capacity(ctx)
		if err != nil {
			return nil, err
		}
		if capacity == 0 {
			return nil, Errorf(EUnavailable, "no live worker serves queue %q: start one with `taskrace worker`", l.c.Config.Queue)
		}
		p.Parallelism = capacity
	}
	r := &Run{ID: NewRunID(), Plan: p, Status: StatusRunning, CreatedAt: Now(), IdealMS: p.IdealMS()}
	if p.Mode.Local() {
		r.Owner = l.c.ProcID
	}
	if err := l.c.Runs.Create(ctx, r); err != nil { // and its tasks.queued
		return nil, err
	}
	l.c.Logger.InfoContext(ctx, "run launched", "run", r.ID, "mode", r.Mode, "tasks", r.Tasks, "delay_ms", r.DelayMS, "parallelism", r.Parallelism)
	if p.Mode.Local() {
		l.startLocal(r)
		return r, nil
	}
	if err := l.enqueue(ctx, r); err != nil {
		l.failToStart(ctx, r, err)
		return nil, err
	}
	return r, nil
}

// failToStart records that r could not start, so that its record says so. It logs with the
// launching request's context (and so its request ID), but outlives its cancelation.
func (l *Launcher) failToStart(ctx context.Context, r *Run, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	l.c.Logger.WarnContext(ctx, "run failed to start", "run", r.ID, "err", cause)
	if _, err := l.c.Runs.End(ctx, refOf(r), StatusInterrupted, "failed to start: "+ErrorMessage(cause)); err != nil {
		l.c.Logger.WarnContext(ctx, "cannot mark a run that failed to start", "run", r.ID, "err", err)
	}
}

// taskFanOut is how many goroutines enqueue or delete a distributed run's tasks: asynq
// takes one call per task, and the calls' round trips overlap.
const taskFanOut = 8

// eachTask calls f for the indexes 0…n−1 from taskFanOut goroutines, until ctx ends or f
// fails; it returns the first error.
func eachTask(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for w := range taskFanOut {
		g.Go(func() error {
			for i := w; i < n; i += taskFanOut {
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := f(gctx, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// enqueue puts the run's tasks on the queue. On failure it deletes what it enqueued, so no
// task of a failed launch ever runs.
func (l *Launcher) enqueue(ctx context.Context, r *Run) error {
	cfg := l.c.Config
	ref := refOf(r)
	ref.Queue = cfg.Queue
	enqueued := make([]bool, r.Tasks) // each index written by one goroutine only
	// The queue is listed again (a Redis restarted empty forgets it, and asynq's client
	// lists it once per process) beside the enqueues, not before them: nothing waits on it.
	listed := make(chan error, 1)
	go func() { listed <- l.c.Redis.Client.SAdd(ctx, asynqQueuesKey, cfg.Queue).Err() }()
	err := eachTask(ctx, r.Tasks, func(ctx context.Context, i int) error {
		t := NewFetchTask(ref, i, cfg.Queue, cfg.MaxRetry, cfg.RunRetention)
		if _, err := l.client.EnqueueContext(ctx, t); err != nil {
			return err
		}
		enqueued[i] = true
		return nil
	})
	if lerr := <-listed; err == nil {
		err = lerr
	}
	if err == nil {
		return nil
	}
	// Whatever ended the launch (its deadline, say), the undo gets a bound of its own.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if uerr := l.deleteTasks(uctx, r, enqueued); uerr != nil {
		l.c.Logger.WarnContext(ctx, "cannot delete the tasks of a launch that failed", "run", r.ID, "err", uerr)
	}
	return Unavailable("cannot enqueue the run's tasks", err)
}

// deleteTasks removes from the queue the tasks of r whose index is marked in which (every
// task when which is nil); active tasks, which cannot be deleted, are canceled. It stops
// at the first failure other than a task already gone.
func (l *Launcher) deleteTasks(ctx context.Context, r *Run, which []bool) error {
	q := l.c.Config.Queue
	return eachTask(ctx, r.Tasks, func(_ context.Context, i int) error {
		if which != nil && !which[i] {
			return nil
		}
		id := TaskID(r.ID, i)
		err := l.inspector.DeleteTask(q, id) // no context: bounded by the connection timeouts
		if err == nil || errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			return nil
		}
		// An active task cannot be deleted: cancel it instead. If Redis is the cause, this
		// fails too, and ends the deletion.
		return l.inspector.CancelProcessing(id)
	})
}

// Capacity is the total concurrency of the live asynq servers that serve the queue.
func (l *Launcher) Capacity(ctx context.Context) (int, error) {
	servers, err := l.Servers(ctx)
	if err != nil {
		return 0, err
	}
	return CapacityOf(servers).Total, nil
}

// Capacity is what the live workers of a queue can run at once.
type Capacity struct {
	Workers int   // live asynq servers
	Slots   []int // the concurrency of each, in the order given
	Total   int   // their sum: a distributed run's parallelism
}

// CapacityOf sums the concurrency of servers.
func CapacityOf(servers []*asynq.ServerInfo) Capacity {
	c := Capacity{Workers: len(servers), Slots: make([]int, len(servers))}
	for i, s := range servers {
		c.Slots[i] = s.Concurrency
		c.Total += s.Concurrency
	}
	return c
}

// Serving records that srv, an asynq server of this process as asynq listed it, takes the
// queue's tasks until the returned func is called; Servers counts it live meanwhile, listed
// in Redis or not. asynq lists a server only on its heartbeat, every 5 s: a Redis that comes
// back empty would show no worker for that long, while this one already takes tasks.
func (l *Launcher) Serving(srv *asynq.ServerInfo) (stopped func()) {
	l.mu.Lock()
	l.serving[srv.ID] = srv
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.serving, srv.ID)
		l.mu.Unlock()
	}
}

// Servers lists the live asynq servers that serve the queue: those Redis lists, and this
// process's own (see Serving).
func (l *Launcher) Servers(ctx context.Context) ([]*asynq.ServerInfo, error) {
	type result struct {
		s   []*asynq.ServerInfo
		err error
	}
	ch := make(chan result, 1)
	go func() { // the Inspector takes no context: bound the wait here
		s, err := l.inspector.Servers()
		ch <- result{s, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return nil, Unavailable("cannot list workers", ctx.Err())
	}
	if res.err != nil {
		return nil, Unavailable("cannot list workers", res.err)
	}
	var live []*asynq.ServerInfo
	listed := map[string]bool{}
	for _, s := range res.s {
		listed[s.ID] = true
		if _, ok := s.Queues[l.c.Config.Queue]; ok && s.Status != "closed" && s.Status != "stopped" {
			live = append(live, s)
		}
	}
	l.mu.Lock()
	for id, s := range l.serving {
		if !listed[id] {
			own := *s
			own.ActiveWorkers = nil // unknown until asynq lists it again
			live = append(live, &own)
		}
	}
	l.mu.Unlock()
	slices.SortFunc(live, func(a, b *asynq.ServerInfo) int { return a.Started.Compare(b.Started) })
	return live, nil
}

// startLocal runs r's tasks in this process on r.Parallelism goroutines.
func (l *Launcher) startLocal(r *Run) {
	ctx, cancel := context.WithCancelCause(l.ctx)
	l.mu.Lock()
	l.local[r.ID] = cancel
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() {
			l.mu.Lock()
			delete(l.local, r.ID)
			l.mu.Unlock()
			cancel(nil)
		}()
		l.runLocal(ctx, r)
	}()
}

func (l *Launcher) runLocal(ctx context.Context, r *Run) {
	ref := refOf(r)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for slot := range r.Parallelism {
		wg.Go(func() {
			w := l.c.Worker(slot)
			for i := range jobs {
				l.runTask(ctx, TaskPayload{RunRef: ref, Index: i}, w)
			}
		})
	}
feed:
	for i := range r.Tasks {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()

	bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errCanceled):
		return // Cancel recorded it
	case cause != nil:
		l.c.Runs.End(bctx, ref, StatusInterrupted, cause.Error())
		return
	}
	// Every task ran; if some end could not be stored, the run must still end.
	if got, err := l.c.Runs.Get(bctx, r.ID); err == nil && !got.Ended() {
		l.c.Runs.End(bctx, ref, StatusInterrupted, "some task events could not be stored")
	}
}

// runTask executes a task with retries, as asynq would for a distributed one, and records
// each attempt in the live record, as the worker's middleware does for a distributed task.
func (l *Launcher) runTask(ctx context.Context, t TaskPayload, w Worker) {
	max := l.c.Config.MaxRetry
	info := live.Info{Queue: l.c.Config.TaskQueue(t.Mode), ID: TaskID(t.ID, t.Index), Type: TypeFetch,
		MaxRetry: max, Worker: &live.Worker{Host: w.Host, PID: w.PID, Slot: w.Slot}}
	for attempt := 0; ; attempt++ {
		info.Attempt = attempt + 1
		a := l.c.Recorder.Start(info)
		err := l.c.Executor.Execute(ctx, t, a, w, attempt, attempt >= max)
		if err != nil && ctx.Err() != nil {
			err = ErrRunEnded // a local run's context ends only with the run
		}
		if rerr := a.End(ctx, err); rerr != nil {
			l.c.Logger.Warn("cannot record a task's attempt", "task", info.ID, "err", rerr)
		}
		if err == nil || ctx.Err() != nil || attempt >= max {
			return
		}
		select {
		case <-time.After(l.c.Config.RetryWait(attempt)):
		case <-ctx.Done():
			return
		}
	}
}

// Cancel ends a running run: the record first, so nothing counts after it, then its tasks:
// local ones through their owner, distributed ones deleted from the queue or canceled (in
// the background).
func (l *Launcher) Cancel(ctx context.Context, id string) (*Run, error) {
	r, err := l.c.Runs.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Ended() {
		return nil, Errorf(EConflict, "run %s has already ended (%s): only a running run can be canceled", id, r.Status)
	}
	ok, err := l.c.Runs.End(ctx, refOf(r), StatusCanceled, "canceled by request")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(EConflict, "run %s has already ended: only a running run can be canceled", id)
	}
	// Every process hears of it: owners stop local runs, workers drop the run's retries.
	if err := l.c.Redis.Client.Publish(ctx, keyCancel, id).Err(); err != nil {
		l.c.Logger.WarnContext(ctx, "cannot publish cancel", "run", id, "err", err)
	}
	if !r.Mode.Local() {
		// A big run's tasks take seconds to remove: the answer need not wait for it, since
		// nothing counts after the record says canceled.
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			dctx, cancel := context.WithTimeout(l.ctx, time.Minute)
			defer cancel()
			if err := l.deleteTasks(dctx, r, nil); err != nil {
				l.c.Logger.WarnContext(ctx, "cannot remove a canceled run's tasks from the queue", "run", r.ID, "err", err)
			}
		}()
	}
	return l.c.Runs.Get(ctx, id)
}

func (l *Launcher) cancelLocal(id string) {
	l.canceled.Store(id, time.Now())
	l.mu.Lock()
	cancel, ok := l.local[id]
	l.mu.Unlock()
	if ok {
		cancel(errCanceled)
	}
}

// Canceled reports whether this process has heard that run id was canceled. Workers use it
// to drop a canceled run's tasks that asynq still retries, without a round trip.
func (l *Launcher) Canceled(id string) bool {
	_, ok := l.canceled.Load(id)
	return ok
}

// StopRuns interrupts the local runs (they record run.interrupted) and stops the
// background work, waiting for it within ctx. Launches after it fail.
func (l *Launcher) StopRuns(ctx context.Context) {
	l.cancel(errShutdown)
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// shutdown stops the runs and releases the launcher's clients.
func (l *Launcher) shutdown(ctx context.Context) {
	l.StopRuns(ctx)
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.c.Runs.Forget(fctx, l.c.ProcID)
	l.client.Close()
	l.inspector.Close()
}

// Describe is a one-line description of a plan, for logs and page titles.
func Describe(r *Run) string {
	return fmt.Sprintf("%s · %d tasks × %s", r.Mode, r.Tasks, r.Delay())
}
