package web

import (
	"net/http"
	"testing"

	"github.com/taskrace/taskrace/app"
)

func TestSeedRoutesWaitForTheRun(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	for _, tc := range []struct {
		path    string
		mode    app.Mode
		minWall float64 // seconds the physical limit allows
	}{
		{"/sequential?tasks=3&delay=0.1", app.Sequential, 0.3},
		{"/sequential_celery?tasks=3&delay=0.1", app.Distributed, 0.1},
		{"/distributed?tasks=3&delay=0.1", app.Distributed, 0.1},
		{"/concurrent?tasks=4&delay=0.1&parallelism=2", app.Concurrent, 0.2},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			h := h.with(t)
			var out SeedRun
			h.getOK(tc.path, &out)
			if out.Mode != tc.mode || out.Status != app.StatusFinished || out.DelaySeconds != 0.1 ||
				out.ElapsedSeconds == nil || *out.ElapsedSeconds < tc.minWall || len(out.TaskIDs) != out.Tasks ||
				len(out.Results) != out.Tasks || out.StatusURL != "/api/runs/"+out.RunID || out.RunURL != "/runs/"+out.RunID {
				t.Fatalf("answer = %+v", out)
			}
			for i, res := range out.Results {
				if res.Index != i || res.TaskID != out.TaskIDs[i] || res.TaskID != app.TaskID(out.RunID, i) ||
					res.State != app.TaskStateDone || res.Status != 200 ||
					res.DurationSeconds == nil || *res.DurationSeconds < 0.1 {
					t.Errorf("result %d = %+v", i, res)
				}
			}

			var tr TaskResult
			h.getOK("/result/"+out.TaskIDs[0], &tr)
			if tr.TaskID != out.TaskIDs[0] || tr.State != app.TaskStateDone || tr.Result == nil ||
				tr.Result.Status != 200 || tr.Result.Worker == "" || tr.Result.DurationSeconds == nil {
				t.Errorf("/result = %+v (result %+v)", tr, tr.Result)
			}
		})
	}
}

func TestSeedRouteWithoutWaiting(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker(), withWebConfig(func(c *Config) { c.PublicURL = "https://demo.example/" }))
	res := h.get("/distributed?tasks=3&delay=0.1&wait=false")
	if res.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	var out SeedRun
	res.json(t, &out)
	if out.Mode != app.Distributed || out.Status != app.StatusRunning || len(out.TaskIDs) != 3 ||
		out.ElapsedSeconds != nil || out.Results != nil ||
		out.StatusURL != "https://demo.example/api/runs/"+out.RunID || out.RunURL != "https://demo.example/runs/"+out.RunID {
		t.Fatalf("answer = %+v", out)
	}
	checkRun(t, out.RunID, h.follow(out.RunID), 3, app.RunFinished)

	var tr TaskResult
	h.getOK("/result/"+out.TaskIDs[2], &tr)
	if tr.State != app.TaskStateDone || tr.Result == nil {
		t.Errorf("/result = %+v", tr)
	}
}

func TestSeedRoutesRejectBadQueries(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, tc := range []struct {
		path, location string
		mention        []string
	}{
		{"/sequential?tasks=0", "query.tasks", []string{"tasks", "1", "0"}},
		{"/sequential?tasks=20000", "query.tasks", []string{"tasks", "10000", "20000"}},
		{"/sequential?tasks=ten", "query.tasks", []string{"tasks", `"ten"`}},
		{"/sequential?delay=abc", "query.delay", []string{"delay", `"abc"`}},
		{"/sequential?delay=-1", "query.delay", []string{"delay", "0", "-1"}},
		{"/sequential_celery?delay=31", "query.delay", []string{"delay", "30", "31"}},
		{"/distributed?delay=NaN", "query.delay", []string{"delay", "30", "NaN"}},
		{"/distributed?delay=Inf", "query.delay", []string{"delay", "30", "Inf"}},
		{"/concurrent?delay=-Inf", "query.delay", []string{"delay", "0", "-Inf"}},
		{"/distributed?wait=maybe", "query.wait", []string{"wait", `"maybe"`}},
		{"/concurrent?tasks=1&delay=0&parallelism=0", "query.parallelism", []string{"parallelism", "1", "0"}},
		{"/concurrent?tasks=1&delay=0&parallelism=500", "query.parallelism", []string{"parallelism", "100", "500"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			h := h.with(t)
			p := h.get(tc.path).problem(t, http.StatusUnprocessableEntity)
			checkFieldProblem(t, p, tc.location, tc.mention...)
		})
	}
}

func TestResultOfUnknownTask(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, id := range []string{"nope", app.TaskID(app.NewRunID(), 0)} {
		h.get("/result/"+id).problem(t, http.StatusNotFound)
	}
}
