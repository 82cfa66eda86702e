package app

import (
	"math"
	"time"

	"github.com/taskrace/taskrace/live/taskstate"
)

// Run statuses.
const (
	StatusRunning     = "running"
	StatusFinished    = "finished"
	StatusCanceled    = "canceled"
	StatusInterrupted = "interrupted"
)

// RunStatuses lists the valid run statuses.
var RunStatuses = []string{StatusRunning, StatusFinished, StatusCanceled, StatusInterrupted}

// Task states: the one vocabulary of taskstate, which decides them for runs and for the
// live views of any asynq application alike.
const (
	TaskStateQueued   = taskstate.Queued
	TaskStateRunning  = taskstate.Running
	TaskStateRetrying = taskstate.Retrying
	TaskStateDone     = taskstate.Done
	TaskStateFailed   = taskstate.Failed
	TaskStateCanceled = taskstate.Canceled // the run ended before the task did
)

// TaskStates lists the task states, in the order a task can pass through them.
var TaskStates = taskstate.All

// Run is the stored record of one run: its plan, status and, once ended, its timing.
type Run struct {
	ID string `json:"id"`
	Plan
	Status    string   `json:"status"`
	CreatedAt Time     `json:"created_at"`
	EndedAt   Time     `json:"ended_at"`
	WallMS    *float64 `json:"wall_ms"`
	IdealMS   float64  `json:"ideal_ms"`
	Owner     string   `json:"owner,omitempty"` // process ID, for local modes
	Pinned    bool     `json:"pinned"`
	Reason    string   `json:"reason,omitempty"`
	Done      int      `json:"done"`   // tasks that ended, done or failed
	Failed    int      `json:"failed"` // tasks that ended failed

	Efficiency *float64 `json:"efficiency"`
	SpeedUp    *float64 `json:"speed_up,omitempty"`
	Baseline   string   `json:"baseline,omitempty"` // the sequential run the speed-up is against
}

// Ended reports whether the run reached a terminal status.
func (r *Run) Ended() bool { return r.Status != StatusRunning }

// Wall returns the run's wall time, if it has ended.
func (r *Run) Wall() (time.Duration, bool) {
	if r.WallMS == nil {
		return 0, false
	}
	return time.Duration(*r.WallMS * float64(time.Millisecond)), true
}

// Task is one task of a run, as its events tell it.
type Task struct {
	ID         string     `json:"id"`
	Index      int        `json:"index"`
	State      string     `json:"state" enum:"queued,running,retrying,done,failed,canceled"`
	Worker     *Worker    `json:"worker,omitempty"`
	Attempts   int        `json:"attempts"`
	QueuedAt   Time       `json:"queued_at"`
	StartedAt  Time       `json:"started_at"`
	EndedAt    Time       `json:"ended_at"`
	DurationMS *float64   `json:"duration_ms,omitempty"`
	HTTPStatus int        `json:"http_status,omitempty"`
	Error      string     `json:"error,omitempty"`
	Orphaned   *Orphan    `json:"orphaned,omitempty"` // its worker process is gone; see Projection.MarkLost
	History    []*Attempt `json:"history" doc:"Every attempt, in order"`
}

// Efficiency is ideal ÷ wall, clamped to [0, 1].
func Efficiency(idealMS, wallMS float64) float64 {
	if wallMS <= 0 {
		return 1
	}
	return math.Min(1, math.Max(0, idealMS/wallMS))
}

// Reduction is the percentage of time saved against a baseline: 1 − wall/baseline, × 100.
func Reduction(wallMS, baselineMS float64) float64 {
	if baselineMS <= 0 {
		return 0
	}
	return (1 - wallMS/baselineMS) * 100
}
