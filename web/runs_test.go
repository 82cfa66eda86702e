package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/taskrace/taskrace/app"
)

func TestRunEachModeStreamsEveryEvent(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	for _, mode := range app.Modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			h := h.with(t)
			const tasks = 5
			r := h.launch(map[string]any{"mode": mode, "tasks": tasks, "delay_ms": 50})
			if r.Mode != mode || r.Tasks != tasks || r.DelayMS != 50 || r.Status != app.StatusRunning {
				t.Fatalf("created run = %+v", r)
			}
			evs := h.follow(r.ID)
			checkRun(t, r.ID, evs, tasks, app.RunFinished)
			if want := 3 + 2*tasks; len(evs) != want { // run.created, tasks.queued, two a task, run.finished
				t.Errorf("%d events, want %d", len(evs), want)
			}

			var tl app.Projection
			res := h.get("/api/runs/" + r.ID)
			if res.status != http.StatusOK {
				t.Fatalf("GET run: %d %s", res.status, res.body)
			}
			res.json(t, &tl)
			if tl.Run.Status != app.StatusFinished || tl.Run.WallMS == nil || tl.Run.Done != tasks || tl.Run.SpeedUp == nil {
				t.Errorf("finished run = %+v", tl.Run)
			}
			if len(tl.Tasks) != tasks {
				t.Fatalf("%d tasks, want %d", len(tl.Tasks), tasks)
			}
			for _, task := range tl.Tasks {
				if task.State != app.TaskStateDone || task.Attempts != 1 || task.HTTPStatus != 200 ||
					task.Worker == nil || task.DurationMS == nil || task.StartedAt.IsZero() || task.EndedAt.IsZero() {
					t.Errorf("task %d = %+v", task.Index, task)
				}
			}
		})
	}
}

func TestListRunsPagesAndFilters(t *testing.T) {
	t.Parallel()
	h := start(t)
	var ids []string
	for _, mode := range []app.Mode{app.Sequential, app.Concurrent, app.Sequential, app.Concurrent, app.Sequential} {
		r := h.launch(map[string]any{"mode": mode, "tasks": 1, "delay_ms": 0})
		h.follow(r.ID)
		ids = append(ids, r.ID)
	}
	slices.Reverse(ids) // newest first

	var got []string
	cursor := ""
	for page := 0; ; page++ {
		var list RunList
		h.getOK("/api/runs?limit=2&cursor="+cursor, &list)
		if len(list.Runs) > 2 {
			t.Fatalf("page %d has %d runs, limit 2", page, len(list.Runs))
		}
		for _, r := range list.Runs {
			got = append(got, r.ID)
		}
		if list.Next == nil {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		cursor = *list.Next
	}
	if !slices.Equal(got, ids) {
		t.Errorf("paged runs = %v, want %v", got, ids)
	}

	for _, tc := range []struct {
		query string
		want  int
	}{
		{"mode=concurrent", 2},
		{"mode=sequential", 3},
		{"status=finished", 5},
		{"status=running", 0},
		{"mode=distributed&status=finished", 0},
		{"", 5},
	} {
		var list RunList
		h.getOK("/api/runs?"+tc.query, &list)
		if len(list.Runs) != tc.want || list.Next != nil {
			t.Errorf("?%s: %d runs, next %v; want %d, none", tc.query, len(list.Runs), list.Next, tc.want)
		}
		for _, r := range list.Runs {
			q, _ := url.ParseQuery(tc.query)
			if m := q.Get("mode"); m != "" && string(r.Mode) != m {
				t.Errorf("?%s listed a %s run", tc.query, r.Mode)
			}
		}
	}
}

func TestListRunsRejectsBadQueries(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, tc := range []struct {
		query, location string
		mention         []string
	}{
		{"mode=warp", "query.mode", []string{"sequential", "concurrent", "distributed", `"warp"`}},
		{"status=lost", "query.status", []string{"running", "finished", "canceled", "interrupted", `"lost"`}},
		{"limit=0", "query.limit", []string{"limit", "1", "0"}},
		{"limit=101", "query.limit", []string{"limit", "100", "101"}},
		{"limit=ten", "query.limit", []string{"limit", `"ten"`}},
		{"cursor=nope", "query.cursor", []string{"cursor", `"nope"`}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			p := h.get("/api/runs?"+tc.query).problem(t, http.StatusUnprocessableEntity)
			checkFieldProblem(t, p, tc.location, tc.mention...)
		})
	}
}

func TestCancelRun(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	for _, mode := range []app.Mode{app.Sequential, app.Distributed} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			h := h.with(t)
			r := h.launch(map[string]any{"mode": mode, "tasks": 20, "delay_ms": 200})
			s := h.open(r.ID, "")
			// Cancel once a task is in flight.
			var seen []sseEvent
			for {
				e, ok := s.next(t)
				if !ok {
					t.Fatalf("the stream ended before a task started: %+v", seen)
				}
				seen = append(seen, e)
				if e.Type == app.TaskStarted {
					break
				}
			}

			res := h.do("POST", "/api/runs/"+r.ID+"/cancel", nil)
			if res.status != http.StatusOK {
				t.Fatalf("cancel: %d %s", res.status, res.body)
			}
			var canceled app.Run
			res.json(t, &canceled)
			if canceled.Status != app.StatusCanceled {
				t.Errorf("canceled run has status %q", canceled.Status)
			}
			evs := append(seen, s.all(t)...)
			checkRun(t, r.ID, evs, 20, app.RunCanceled)

			// Nothing reads running or queued once the run is canceled: what was in flight
			// stopped at the cancel, and what had not ended is canceled.
			var tl app.Projection
			h.getOK("/api/runs/"+r.ID, &tl)
			end := tl.Run.EndedAt
			if tl.Run.Status != app.StatusCanceled || tl.Summary.Status != app.StatusCanceled || end.IsZero() ||
				tl.Summary.Canceled == 0 || tl.Summary.Running+tl.Summary.Queued+tl.Summary.Retrying != 0 {
				t.Fatalf("canceled run %+v, summary %+v", tl.Run, tl.Summary)
			}
			stopped := 0
			for _, task := range tl.Tasks {
				for _, a := range task.History {
					if a.Outcome == app.AttemptCanceled && a.EndedAt.Equal(end.Time) {
						stopped++
					}
				}
				switch task.State {
				case app.TaskStateDone, app.TaskStateFailed:
				case app.TaskStateCanceled:
					if !task.EndedAt.Equal(end.Time) {
						t.Errorf("canceled task %d ended at %v, want the run's end %v", task.Index, task.EndedAt, end)
					}
				default:
					t.Errorf("task %d reads %s after the cancel", task.Index, task.State)
				}
				for _, a := range task.History {
					if a.Outcome == app.AttemptRunning || a.EndedAt.After(end.Time) || a.StartMS+a.DurMS > tl.Summary.ElapsedMS+1e-6 {
						t.Errorf("task %d attempt %+v runs past the cancel at %v", task.Index, a, end)
					}
				}
			}
			if stopped == 0 {
				t.Errorf("no attempt was stopped by the cancel, though a task had started (delay 200 ms)")
			}
			var canceledTask *app.Task
			for _, task := range tl.Tasks {
				if task.State == app.TaskStateCanceled {
					canceledTask = task
					break
				}
			}
			var d TaskDetail
			h.getOK("/api/tasks/"+canceledTask.ID, &d)
			var res2 TaskResult
			h.getOK("/result/"+canceledTask.ID, &res2)
			if d.State != app.TaskStateCanceled || d.RunStatus != app.StatusCanceled || res2.State != app.TaskStateCanceled || res2.Result != nil {
				t.Errorf("canceled task in the API: %+v; seed result %+v", d, res2)
			}

			p := h.do("POST", "/api/runs/"+r.ID+"/cancel", nil).problem(t, http.StatusConflict)
			if !contains(p.Detail, r.ID, "canceled") {
				t.Errorf("409 detail = %q", p.Detail)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		h.do("POST", "/api/runs/"+app.NewRunID()+"/cancel", nil).problem(t, http.StatusNotFound)
		h.do("POST", "/api/runs/nope/cancel", nil).problem(t, http.StatusNotFound)
	})
}

func TestPinRun(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0})
	h.follow(r.ID)

	var got app.Run
	res := h.do("POST", "/api/runs/"+r.ID+"/pin", nil)
	if res.status != http.StatusOK {
		t.Fatalf("pin: %d %s", res.status, res.body)
	}
	if res.json(t, &got); !got.Pinned {
		t.Error("pinned run says it is not pinned")
	}
	var tl app.Projection
	if h.getOK("/api/runs/"+r.ID, &tl); !tl.Run.Pinned {
		t.Error("GET after pin: not pinned")
	}
	res = h.do("DELETE", "/api/runs/"+r.ID+"/pin", nil)
	if res.status != http.StatusOK {
		t.Fatalf("unpin: %d %s", res.status, res.body)
	}
	if res.json(t, &got); got.Pinned {
		t.Error("unpinned run says it is pinned")
	}
	h.do("POST", "/api/runs/"+app.NewRunID()+"/pin", nil).problem(t, http.StatusNotFound)
	h.do("DELETE", "/api/runs/nope/pin", nil).problem(t, http.StatusNotFound)
}

func TestGetTask(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	for _, mode := range app.Modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			h := h.with(t)
			r := h.launch(map[string]any{"mode": mode, "tasks": 2, "delay_ms": 20})
			h.follow(r.ID)
			var d TaskDetail
			h.getOK("/api/tasks/"+app.TaskID(r.ID, 1), &d)
			if d.ID != app.TaskID(r.ID, 1) || d.Index != 1 || d.RunID != r.ID || d.Mode != mode ||
				d.RunStatus != app.StatusFinished || d.State != app.TaskStateDone || d.Attempts != 1 ||
				d.Worker == nil || d.HTTPStatus != 200 || d.DurationMS == nil || d.QueuedAt.IsZero() ||
				d.StartedAt.IsZero() || d.EndedAt.IsZero() {
				t.Errorf("task = %+v", d)
			}
			if mode == app.Distributed {
				if d.Queue == nil || d.Queue.State != "completed" || d.Queue.CompletedAt == nil {
					t.Errorf("asynq's record = %+v", d.Queue)
				}
			} else if d.Queue != nil {
				t.Errorf("a %s task has an asynq record: %+v", mode, d.Queue)
			}
			h.get("/api/tasks/"+app.TaskID(r.ID, 2)).problem(t, http.StatusNotFound)
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		for _, id := range []string{"nope", app.TaskID(app.NewRunID(), 0), app.NewRunID() + "-x", app.NewRunID() + "-01"} {
			h.get("/api/tasks/"+id).problem(t, http.StatusNotFound)
		}
	})
}

func (h *harness) getOK(path string, v any) {
	h.t.Helper()
	res := h.get(path)
	if res.status != http.StatusOK {
		h.t.Fatalf("GET %s: %d %s", path, res.status, res.body)
	}
	res.json(h.t, v)
}

func TestGetRunPagesItsTasks(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "concurrent", "tasks": 450, "delay_ms": 0, "parallelism": 50})
	h.follow(r.ID)
	var seen []int
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("more pages than 450 tasks make")
		}
		var d RunDetail
		res := h.get("/api/runs/" + r.ID + "?limit=200&cursor=" + cursor)
		if res.status != http.StatusOK {
			t.Fatalf("page %d: %d %s", pages, res.status, res.body)
		}
		res.json(t, &d)
		if d.Summary.Done != 450 || d.Run.ID != r.ID {
			t.Fatalf("page %d: summary %+v", pages, d.Summary)
		}
		for _, task := range d.Tasks {
			seen = append(seen, task.Index)
		}
		if d.Next == nil {
			break
		}
		cursor = *d.Next
	}
	if len(seen) != 450 {
		t.Fatalf("%d tasks over the pages, want 450", len(seen))
	}
	for i, idx := range seen {
		if idx != i {
			t.Fatalf("task %d of the pages has index %d", i, idx)
		}
	}
	// The default page is 200 tasks; past the end is an empty page.
	var d RunDetail
	h.get("/api/runs/"+r.ID).json(t, &d)
	if len(d.Tasks) != 200 || d.Next == nil || *d.Next != "200" {
		t.Errorf("default page: %d tasks, next %v", len(d.Tasks), d.Next)
	}
	h.get("/api/runs/"+r.ID+"?cursor=9999").json(t, &d)
	if len(d.Tasks) != 0 || d.Next != nil {
		t.Errorf("past the end: %d tasks, next %v", len(d.Tasks), d.Next)
	}
	for _, q := range []string{"cursor=-1", "cursor=x", "limit=0", "limit=10001", "limit=abc"} {
		h.get("/api/runs/"+r.ID+"?"+q).problem(t, http.StatusUnprocessableEntity)
	}
}

// TestTaskIDsOldAndNew: task IDs carry no '-' (asynqmon shows an ID up to its first '-'),
// and links with the older "<run>-<index>" form keep answering.
func TestTaskIDsOldAndNew(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 3, "delay_ms": 0})
	h.follow(r.ID)
	var d RunDetail
	h.get("/api/runs/"+r.ID).json(t, &d)
	for i, task := range d.Tasks {
		if task.ID != r.ID+"."+strconv.Itoa(i) {
			t.Errorf("task %d has ID %q", i, task.ID)
		}
	}
	for _, id := range []string{r.ID + ".2", r.ID + "-2"} {
		for _, path := range []string{"/api/tasks/" + id, "/result/" + id} {
			res := h.get(path)
			if res.status != http.StatusOK || !strings.Contains(string(res.body), r.ID+".2") {
				t.Errorf("GET %s: %d %s", path, res.status, res.body)
			}
		}
	}
}
