package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/live"
)

// liveState is the state /api/tasks/{queue}/{id} gives task id of a run of mode, and its
// attempts; "" when the live record holds nothing of it (a task no attempt of which started).
func (h *harness) liveState(mode app.Mode, id string) (string, int) {
	h.t.Helper()
	queue := h.core.Config.TaskQueue(mode)
	res := h.get("/api/tasks/" + url.PathEscape(queue) + "/" + url.PathEscape(id))
	switch res.status {
	case http.StatusNotFound:
		return "", 0
	case http.StatusOK:
	default:
		h.t.Fatalf("GET /api/tasks/%s/%s: %d %s", queue, id, res.status, res.body)
	}
	var task live.Task
	res.json(h.t, &task)
	if task.Queue != queue || task.ID != id || task.Type != app.TypeFetch {
		h.t.Errorf("recorded task %s/%s of type %s, want %s/%s of %s", task.Queue, task.ID, task.Type, queue, id, app.TypeFetch)
	}
	return task.State, task.Attempts
}

// disagreements compares, for every task of run id, the state the run's projection gives
// (GET /api/runs/{id}) with the live record's (GET /api/tasks/{queue}/{id}); a queued task
// is one the live record does not hold yet. Ended tasks must agree on their attempts too.
func (h *harness) disagreements(id string) (states map[string]int, diffs []string) {
	h.t.Helper()
	p := h.apiRun(id)
	states = map[string]int{}
	for _, task := range p.Tasks {
		states[task.State]++
		got, attempts := h.liveState(p.Run.Mode, task.ID)
		want := task.State
		if want == app.TaskStateQueued {
			want = ""
		}
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s: run %s, live %q", task.ID, task.State, got))
		} else if (got == app.TaskStateDone || got == app.TaskStateFailed) && attempts != task.Attempts {
			diffs = append(diffs, fmt.Sprintf("%s: %s after %d attempts in the run, %d live", task.ID, got, task.Attempts, attempts))
		}
	}
	if len(p.Tasks) != p.Run.Tasks {
		h.t.Fatalf("run %s: %d tasks in its first page, want all %d", id, len(p.Tasks), p.Run.Tasks)
	}
	return states, diffs
}

// agree waits until both views agree on every task of run id, and returns its states.
func (h *harness) agree(id, what string) map[string]int {
	h.t.Helper()
	var states map[string]int
	var diffs []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		states, diffs = h.disagreements(id)
		if len(diffs) == 0 {
			return states
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s (run %s): the run and the live record still disagree after 20s: %s", what, id, strings.Join(diffs, "; "))
		}
		time.Sleep(20 * time.Millisecond) // the live reader follows the record: poll both views
	}
}

// awaitRun waits until run id satisfies cond, as GET /api/runs/{id} shows it.
func (h *harness) awaitRun(id, what string, cond func(*app.Projection) bool) {
	h.t.Helper()
	h.eventually(60*time.Second, what, func() bool { return cond(h.apiRun(id)) })
}

// taskrace's own tasks, of every mode, are in the live record (GET /api/tasks) with the
// state their run's projection gives them: retried, failed and canceled ones alike, while
// the runs go on and once they end.
func TestOwnTasksAgreeWithTheirRuns(t *testing.T) {
	t.Parallel()
	refused := httptest.NewServer(http.NotFoundHandler()) // on loopback: the outside client refuses it
	t.Cleanup(refused.Close)
	h := start(t, withWorker(), withAppConfig(func(c *app.Config) {
		c.MaxRetry, c.RetryDelay = 1, 10*time.Millisecond
		c.MaxActiveRuns = 100
		c.Limits.Allowlist = []string{refused.URL}
	}))
	ended := func(p *app.Projection) bool { return p.Run.Ended() }

	cases := []struct {
		name  string
		plan  map[string]any
		want  string // a state some task must end in
		stopp bool   // cancel the run once a task runs
	}{
		{"distributed retried", map[string]any{"mode": "distributed", "tasks": 3, "delay_ms": 0, "failure_rate": 1}, app.TaskStateDone, false},
		{"distributed failed", map[string]any{"mode": "distributed", "tasks": 2, "delay_ms": 0, "target": refused.URL}, app.TaskStateFailed, false},
		{"sequential retried", map[string]any{"mode": "sequential", "tasks": 2, "delay_ms": 0, "failure_rate": 1}, app.TaskStateDone, false},
		{"concurrent failed", map[string]any{"mode": "concurrent", "tasks": 2, "delay_ms": 0, "parallelism": 2, "target": refused.URL}, app.TaskStateFailed, false},
		{"distributed canceled", map[string]any{"mode": "distributed", "tasks": 8, "delay_ms": 5000}, app.TaskStateCanceled, true},
		{"sequential canceled", map[string]any{"mode": "sequential", "tasks": 3, "delay_ms": 5000}, app.TaskStateCanceled, true},
	}
	for _, c := range cases {
		r := h.launch(c.plan)
		if c.stopp {
			h.awaitRun(r.ID, c.name+": a task to run", func(p *app.Projection) bool { return p.Summary.Running > 0 })
			// While it runs: the running tasks are running live too, the queued ones not yet there.
			if states := h.agree(r.ID, c.name+" while running"); states[app.TaskStateRunning] == 0 {
				t.Errorf("%s: no task running when both views agreed: %v", c.name, states)
			}
			if res := h.do("POST", "/api/runs/"+r.ID+"/cancel", nil); res.status != http.StatusOK {
				t.Fatalf("%s: cancel: %d %s", c.name, res.status, res.body)
			}
		}
		h.awaitRun(r.ID, c.name+": the run to end", ended)
		states := h.agree(r.ID, c.name)
		if states[c.want] == 0 {
			t.Errorf("%s: no task %s: %v", c.name, c.want, states)
		}
		if c.plan["failure_rate"] == 1 {
			for _, task := range h.apiRun(r.ID).Tasks {
				if task.Attempts != 2 {
					t.Errorf("%s: task %s ran %d attempts, want 2 (one injected failure)", c.name, task.ID, task.Attempts)
				}
			}
		}
		// taskrace's own /api/tasks/{task_id} keeps answering for the same task.
		if res := h.get("/api/tasks/" + app.TaskID(r.ID, 0)); res.status != http.StatusOK {
			t.Errorf("%s: GET /api/tasks/%s: %d %s", c.name, app.TaskID(r.ID, 0), res.status, res.body)
		}
	}

	// The list selects them by queue, with the same states.
	res := h.get("/api/tasks?limit=1000&q=" + url.QueryEscape("queue:taskrace:sequential"))
	var list TaskList
	res.json(t, &list)
	if res.status != http.StatusOK || list.Total != 5 {
		t.Fatalf("GET /api/tasks?q=queue:taskrace:sequential: %d, %d tasks, want the 5 of both sequential runs: %s", res.status, list.Total, res.body)
	}
	for _, task := range list.Tasks {
		if want, _ := h.liveState(app.Sequential, task.ID); task.State != want {
			t.Errorf("list: %s %s, detail %s", task.ID, task.State, want)
		}
	}
}
