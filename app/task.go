package app

import (
	"encoding/json"
	"time"

	"github.com/hibiken/asynq"
)

// TypeFetch is the asynq task type of one distributed task.
const TypeFetch = "taskrace:fetch"

// TaskQueue is the queue under which the live record (package live, GET /api/tasks) keys
// the tasks of mode: a distributed task under the asynq queue it runs on, a local one, which
// never passes through asynq, under "taskrace:" + its mode. Its ID is TaskID's in all modes.
func (c Config) TaskQueue(m Mode) string {
	if m.Local() {
		return "taskrace:" + string(m)
	}
	return c.Queue
}

// RunRef is what a task needs to know of its run to execute and to record its end.
type RunRef struct {
	ID          string  `json:"run_id"`
	CreatedAt   Time    `json:"created_at"`
	Tasks       int     `json:"tasks"`
	DelayMS     int64   `json:"delay_ms"`
	Target      string  `json:"target"`
	FailureRate float64 `json:"failure_rate,omitempty"`
	IdealMS     float64 `json:"ideal_ms"`
	Mode        Mode    `json:"mode,omitempty"`
	Queue       string  `json:"queue,omitempty"` // the asynq queue of a distributed run
}

func refOf(r *Run) RunRef {
	return RunRef{ID: r.ID, CreatedAt: r.CreatedAt, Tasks: r.Tasks, DelayMS: r.DelayMS,
		Target: r.Target, FailureRate: r.FailureRate, IdealMS: r.IdealMS, Mode: r.Mode}
}

// Delay is the task's delay.
func (r RunRef) Delay() time.Duration { return time.Duration(r.DelayMS) * time.Millisecond }

// TaskPayload is the payload of a TypeFetch task.
type TaskPayload struct {
	RunRef
	Index int `json:"index"`
}

// TaskTimeout bounds one attempt of a task: its delay plus 10 s.
func TaskTimeout(delay time.Duration) time.Duration { return delay + 10*time.Second }

// NewFetchTask returns the asynq task of task index of run r.
func NewFetchTask(r RunRef, index int, queue string, maxRetry int, retention time.Duration) *asynq.Task {
	payload, _ := json.Marshal(TaskPayload{RunRef: r, Index: index}) // plain fields: cannot fail
	return asynq.NewTask(TypeFetch, payload,
		asynq.TaskID(TaskID(r.ID, index)), asynq.Queue(queue), asynq.MaxRetry(maxRetry),
		asynq.Timeout(TaskTimeout(r.Delay())), asynq.Retention(retention))
}

// ParseTaskPayload decodes the payload of a TypeFetch task.
func ParseTaskPayload(b []byte) (TaskPayload, error) {
	var p TaskPayload
	if err := json.Unmarshal(b, &p); err != nil || !ValidRunID(p.ID) || p.Index < 0 || p.Index >= p.Tasks {
		return p, Errorf(EMalformed, "not a taskrace task payload")
	}
	return p, nil
}
