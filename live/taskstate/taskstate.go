// Package taskstate is the one vocabulary of task states and attempt outcomes, and the one
// rule that decides a task's state from its attempts. taskrace's run projection and the live
// views of any asynq application both use it, so that a task reads the same in every view.
package taskstate

// Task states.
const (
	Queued   = "queued"   // waiting for a worker; no attempt has started
	Running  = "running"  // an attempt is in progress
	Retrying = "retrying" // an attempt failed (or was lost with its worker) and the task will be tried again
	Done     = "done"     // an attempt succeeded
	Failed   = "failed"   // an attempt failed and the task will not be tried again
	Canceled = "canceled" // stopped before it ended: its run ended first, or its handler revoked it
)

// All lists the task states, in the order a task can pass through them.
var All = []string{Queued, Running, Retrying, Done, Failed, Canceled}

// Valid reports whether s is a task state.
func Valid(s string) bool {
	for _, v := range All {
		if v == s {
			return true
		}
	}
	return false
}

// Attempt outcomes: how one execution of a task ended, or that it has not.
const (
	AttemptRunning  = "running"
	AttemptDone     = "done"
	AttemptFailed   = "failed"
	AttemptCanceled = "canceled" // stopped from outside: its run ended, or its handler revoked the task
	AttemptLost     = "lost"     // its worker never reported an end, and the task was delivered again (or will be)
)

// Outcomes lists the attempt outcomes.
var Outcomes = []string{AttemptRunning, AttemptDone, AttemptFailed, AttemptCanceled, AttemptLost}

// Of is the state of a task whose deciding attempt (its latest, or the one whose end was
// recorded as the task's) has outcome; retry says that a failed attempt is tried again.
// attempted is false for a task no attempt of which has started; stopped says that what the
// task belongs to was stopped before the task ended (a run canceled or interrupted).
func Of(attempted bool, outcome string, retry, stopped bool) string {
	switch {
	case !attempted && stopped:
		return Canceled
	case !attempted:
		return Queued
	case outcome == AttemptDone:
		return Done
	case outcome == AttemptFailed && !retry:
		return Failed
	case stopped, outcome == AttemptCanceled:
		return Canceled
	case outcome == AttemptFailed, outcome == AttemptLost:
		return Retrying
	default:
		return Running
	}
}

// Ended reports whether a task in state s will not run again.
func Ended(s string) bool { return s == Done || s == Failed || s == Canceled }
