package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/live"
)

// ErrInjected is the failure a task's first attempt gets when the plan's failure_rate picks it.
var ErrInjected = errors.New("injected failure (failure_rate)")

// ErrRunEnded is how an attempt ends whose run was canceled or interrupted first: asynq
// revokes the task (neither retried nor archived), and the live record reads it canceled,
// as the run's projection does.
var ErrRunEnded = fmt.Errorf("its run ended first: %w", asynq.RevokeTask)

// Executor executes one attempt of a task and records it in the event log. Every mode uses
// it: the local modes from their goroutines, the distributed one from the asynq handler.
type Executor struct {
	log     *EventLog
	store   *RunStore
	fetch   *Fetcher
	metrics *Metrics
}

// Execute runs attempt (0-based) of task t on worker w. On success it records
// task.finished; on failure task.failed, with retry unless final. It returns only once its
// events are stored, and returns the task's error (or the error storing its events, or
// ErrRunEnded when the run ended before the task could). The live record of the attempt a
// (nil: none) gets its end in the same round trip as the events; an attempt stopped by its
// context is left for the caller to end.
func (x *Executor) Execute(ctx context.Context, t TaskPayload, a *live.Attempt, w Worker, attempt int, final bool) error {
	idx := t.Index
	id := TaskID(t.ID, idx)
	var start *live.Ending
	if a != nil {
		start = a.StageStart()
	}
	sent := x.log.SendStarting(&Event{Type: TaskStarted, RunID: t.ID, Index: &idx, TaskID: id, Worker: &w, At: Now(), Attempt: attempt + 1}, start)
	defer started(sent, start)

	if attempt == 0 {
		x.metrics.QueueWait.Observe(Now().Sub(t.CreatedAt.Time).Seconds())
	}
	var res Result
	var err error
	if attempt == 0 && FailsFirstAttempt(t.ID, idx, t.FailureRate) {
		err = ErrInjected
	} else {
		res, err = x.fetch.Fetch(ctx, t.Target, t.Delay())
	}
	if ctx.Err() != nil {
		// Canceled or shutting down: whoever canceled records the outcome.
		return ctx.Err()
	}
	// Record the outcome even if the caller gives up waiting: a stored event is the
	// contract that a returned handler keeps.
	bctx := context.WithoutCancel(ctx)
	e := &Event{RunID: t.ID, Index: &idx, TaskID: id, Worker: &w, At: Now(), Attempt: attempt + 1}
	var end, revoked *live.Ending
	if a != nil {
		end = a.Stage(bctx, err)
		if err == nil || final {
			revoked = a.Stage(bctx, ErrRunEnded)
		}
	}
	if err == nil {
		e.Type = TaskFinished
		e.DurationMS = ptr(ms(res.Duration))
		x.metrics.TaskDuration.Observe(res.Duration.Seconds())
		e.Status = res.Status
		_, ferr := x.store.Finish(bctx, t.RunRef, idx, e, sent, end, revoked)
		return ferr
	}
	e.Type = TaskFailed
	e.Error = err.Error()
	e.Status = res.Status
	e.Retry = ptr(!final)
	if !final {
		if aerr := x.log.AppendEnding(bctx, e, end, sent); aerr != nil {
			return aerr
		}
		return err
	}
	if _, ferr := x.store.Finish(bctx, t.RunRef, idx, e, sent, end, revoked); ferr != nil {
		return ferr
	}
	return err
}
