package app

import (
	"cmp"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
)

// Event types, as they appear in the log, the API and the SSE `event:` field.
const (
	RunCreated     = "run.created"
	TasksQueued    = "tasks.queued" // every task of the run, 0…tasks−1, queued at once
	TaskQueued     = "task.queued"  // one task queued: what runs recorded before tasks.queued
	TaskStarted    = "task.started"
	TaskFinished   = "task.finished"
	TaskFailed     = "task.failed"
	RunFinished    = "run.finished"
	RunCanceled    = "run.canceled"
	RunInterrupted = "run.interrupted"
)

// Worker names who executed a task: a process on a host, and a slot within it.
type Worker struct {
	Host string `json:"host"`
	PID  int    `json:"pid"`
	Slot int    `json:"slot"`
	Proc string `json:"proc,omitempty"` // the process's ID, whose heartbeat says it is alive
}

// String is the worker's short name, host:pid/slot.
func (w Worker) String() string {
	return w.Host + ":" + strconv.Itoa(w.PID) + "/" + strconv.Itoa(w.Slot)
}

// Process is the worker's process part, host:pid.
func (w Worker) Process() string { return w.Host + ":" + strconv.Itoa(w.PID) }

// Event is one fact about a run. Only the fields of its type are set.
type Event struct {
	ID    string `json:"-"` // the stream entry ID, set when read from the log
	Type  string `json:"type" enum:"run.created,tasks.queued,task.queued,task.started,task.finished,task.failed,run.finished,run.canceled,run.interrupted"`
	RunID string `json:"run_id"`
	At    Time   `json:"at"`

	// run.created, tasks.queued (its tasks)
	Mode        Mode    `json:"mode,omitempty"`
	Tasks       int     `json:"tasks,omitempty" doc:"run.created: the plan's tasks; tasks.queued: tasks 0…tasks−1 were queued"`
	DelayMS     int64   `json:"delay_ms,omitempty"`
	Parallelism int     `json:"parallelism,omitempty"`
	Target      string  `json:"target,omitempty"`
	FailureRate float64 `json:"failure_rate,omitempty"`

	// task.*
	Index      *int     `json:"index,omitempty"`
	TaskID     string   `json:"task_id,omitempty"`
	Worker     *Worker  `json:"worker,omitempty"`
	Attempt    int      `json:"attempt,omitempty"`
	DurationMS *float64 `json:"duration_ms,omitempty"`
	Status     int      `json:"status,omitempty"` // HTTP status of the call
	Error      string   `json:"error,omitempty"`
	Retry      *bool    `json:"retry,omitempty"`

	// run.finished, run.interrupted
	WallMS     *float64 `json:"wall_ms,omitempty"`
	IdealMS    *float64 `json:"ideal_ms,omitempty"`
	Efficiency *float64 `json:"efficiency,omitempty"`
	Reason     string   `json:"reason,omitempty"`

	mu     sync.Mutex
	frames map[string][]byte
}

// Terminal reports whether e ends its run.
func (e *Event) Terminal() bool {
	return e.Type == RunFinished || e.Type == RunCanceled || e.Type == RunInterrupted
}

// Frame returns the bytes of e rendered by render under name, rendering at most once:
// every subscriber of a run shares the same *Event, so a stream of N viewers renders each
// event once.
func (e *Event) Frame(name string, render func(*Event) []byte) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b, ok := e.frames[name]; ok {
		return b
	}
	if e.frames == nil {
		e.frames = make(map[string][]byte, 2)
	}
	b := render(e)
	e.frames[name] = b
	return b
}

// JSON returns the event's JSON encoding.
func (e *Event) JSON() []byte {
	b, _ := json.Marshal(e) // only plain fields: cannot fail
	return b
}

// decodeEvent parses an event stored under stream entry id.
func decodeEvent(id, data string) (*Event, error) {
	e := new(Event)
	if err := json.Unmarshal([]byte(data), e); err != nil {
		return nil, err
	}
	e.ID = id
	return e, nil
}

// CompareIDs orders two stream entry IDs ("ms-seq"): -1, 0 or +1. It compares the
// decimal parts as numbers without parsing them: a view orders thousands of events.
func CompareIDs(a, b string) int {
	am, as := cutID(a)
	bm, bs := cutID(b)
	if c := compareDecimal(am, bm); c != 0 {
		return c
	}
	return compareDecimal(as, bs)
}

func cutID(id string) (ms, seq string) {
	if i := strings.IndexByte(id, '-'); i >= 0 {
		return id[:i], id[i+1:]
	}
	return id, ""
}

// compareDecimal orders two strings of decimal digits by the numbers they write.
func compareDecimal(a, b string) int {
	for len(a) > 0 && a[0] == '0' {
		a = a[1:]
	}
	for len(b) > 0 && b[0] == '0' {
		b = b[1:]
	}
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}

// ValidEventID reports whether s looks like a stream entry ID.
func ValidEventID(s string) bool {
	m, q, ok := strings.Cut(s, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(m, 10, 64)
	_, err2 := strconv.ParseUint(q, 10, 64)
	return err1 == nil && err2 == nil
}

func ptr[T any](v T) *T { return &v }
