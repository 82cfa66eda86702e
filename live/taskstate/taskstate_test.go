package taskstate_test

import (
	"testing"

	"github.com/taskrace/taskrace/live/taskstate"
)

func TestOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name           string
		attempted      bool
		outcome        string
		retry, stopped bool
		want           string
	}{
		{"never started", false, "", false, false, taskstate.Queued},
		{"never started, run stopped", false, "", false, true, taskstate.Canceled},
		{"in progress", true, taskstate.AttemptRunning, false, false, taskstate.Running},
		{"succeeded", true, taskstate.AttemptDone, false, false, taskstate.Done},
		{"succeeded, run stopped after", true, taskstate.AttemptDone, false, true, taskstate.Done},
		{"failed, retried", true, taskstate.AttemptFailed, true, false, taskstate.Retrying},
		{"failed for good", true, taskstate.AttemptFailed, false, false, taskstate.Failed},
		{"failed for good, run stopped after", true, taskstate.AttemptFailed, false, true, taskstate.Failed},
		{"failed, to be retried, run stopped", true, taskstate.AttemptFailed, true, true, taskstate.Canceled},
		{"in progress, run stopped", true, taskstate.AttemptCanceled, false, true, taskstate.Canceled},
		{"revoked by its handler", true, taskstate.AttemptCanceled, false, false, taskstate.Canceled},
		{"lost with its worker", true, taskstate.AttemptLost, false, false, taskstate.Retrying},
	}
	for _, c := range cases {
		if got := taskstate.Of(c.attempted, c.outcome, c.retry, c.stopped); got != c.want {
			t.Errorf("%s: Of = %q, want %q", c.name, got, c.want)
		}
		if !taskstate.Valid(c.want) {
			t.Errorf("%s: %q is not in All", c.name, c.want)
		}
	}
	if taskstate.Valid("succeeded") {
		t.Error(`"succeeded" is not a state of the vocabulary`)
	}
}
