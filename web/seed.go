package web

import (
	"context"
	"math"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/taskrace/taskrace/app"
)

// The routes of the original FastAPI + Celery demo, answering as it did: launch a run of
// `tasks` calls to /delay/{delay}, wait for it, and report the timings.

type seedInput struct {
	Tasks int     `query:"tasks" default:"10" doc:"How many tasks"`
	Delay float64 `query:"delay" default:"3" doc:"Seconds each task's call takes; decimals allowed, as in httpbin's /delay/{n}"`
	Wait  bool    `query:"wait" default:"true" doc:"Wait for the run to end, up to tasks × delay + 30 s (10 minutes at most); false answers 202 at once"`
}

// concurrentSeedInput is seedInput with parallelism (huma reads no embedded inputs).
type concurrentSeedInput struct {
	Tasks       int     `query:"tasks" default:"10" doc:"How many tasks"`
	Delay       float64 `query:"delay" default:"3" doc:"Seconds each task's call takes; decimals allowed, as in httpbin's /delay/{n}"`
	Parallelism int     `query:"parallelism" default:"5" doc:"Tasks at once"`
	Wait        bool    `query:"wait" default:"true" doc:"Wait for the run to end, up to tasks × delay + 30 s (10 minutes at most); false answers 202 at once"`
}

// SeedRun is what a seed-compatible route answers: the run's timings once it has ended
// (200), or where to follow it (202).
type SeedRun struct {
	Mode           app.Mode     `json:"mode"`
	RunID          string       `json:"run_id"`
	Status         string       `json:"status" doc:"The run's status; running when the answer did not wait for the end"`
	Tasks          int          `json:"tasks"`
	DelaySeconds   float64      `json:"delay_seconds"`
	ElapsedSeconds *float64     `json:"elapsed_seconds,omitempty" doc:"Wall time from run.created to the run's end"`
	TaskIDs        []string     `json:"task_ids"`
	Results        []SeedResult `json:"results,omitempty"`
	RunURL         string       `json:"run_url" doc:"The run's page"`
	StatusURL      string       `json:"status_url" doc:"The run in the JSON API"`
}

// SeedResult is one task of a SeedRun.
type SeedResult struct {
	Index           int      `json:"index"`
	TaskID          string   `json:"task_id"`
	State           string   `json:"state" enum:"queued,running,retrying,done,failed,canceled" doc:"done or failed; canceled when the run ended before it"`
	Status          int      `json:"status" doc:"HTTP status of the task's call; 0 when it got none"`
	DurationSeconds *float64 `json:"duration_seconds"`
	Error           string   `json:"error,omitempty"`
}

type seedOutput struct {
	Status int
	Body   *SeedRun
}

type resultInput struct {
	TaskID string `path:"task_id" doc:"Task ID: <run ID>.<index> (the older <run ID>-<index> is read too)"`
}

// TaskResult is a task's state and, once it has ended, its result, like Celery's AsyncResult.
type TaskResult struct {
	TaskID string       `json:"task_id"`
	State  string       `json:"state" enum:"queued,running,retrying,done,failed,canceled"`
	Result *TaskOutcome `json:"result" doc:"null until the task has ended"`
}

// TaskOutcome is the result of an ended task.
type TaskOutcome struct {
	Status          int      `json:"status,omitempty" doc:"HTTP status of the call"`
	DurationSeconds *float64 `json:"duration_seconds,omitempty"`
	Worker          string   `json:"worker,omitempty" doc:"host:pid/slot that executed it"`
	Error           string   `json:"error,omitempty"`
}

type resultOutput struct {
	Body *TaskResult
}

func (s *Server) registerSeed() {
	seedRun := s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[SeedRun](), true, "SeedRun")
	accepted := func() map[string]*huma.Response {
		return map[string]*huma.Response{"202": {
			Description: "The run was launched and is still running: not waited for (wait=false), or the wait ran out",
			Content:     map[string]*huma.MediaType{"application/json": {Schema: seedRun}},
		}}
	}
	errs := []int{http.StatusTooManyRequests, http.StatusServiceUnavailable}
	register(s, launch, huma.Operation{
		OperationID: "seed-sequential",
		Method:      http.MethodGet,
		Path:        "/sequential",
		Tags:        []string{"seed"},
		Summary:     "Run tasks one after another in this process, and wait",
		Responses:   accepted(),
		Errors:      errs,
	}, s.seedHandler(app.Sequential))
	for _, path := range []string{"/sequential_celery", "/distributed"} {
		register(s, launch, huma.Operation{
			OperationID: "seed-" + strings.TrimPrefix(path, "/"),
			Method:      http.MethodGet,
			Path:        path,
			Tags:        []string{"seed"},
			Summary:     "Run tasks on the asynq workers, and wait",
			Description: "/sequential_celery is the original demo's name; /distributed is the same route.",
			Responses:   accepted(),
			Errors:      errs,
		}, s.seedHandler(app.Distributed))
	}
	register(s, launch, huma.Operation{
		OperationID: "seed-concurrent",
		Method:      http.MethodGet,
		Path:        "/concurrent",
		Tags:        []string{"seed"},
		Summary:     "Run tasks on goroutines of this process, and wait",
		Responses:   accepted(),
		Errors:      errs,
	}, func(ctx context.Context, in *concurrentSeedInput) (*seedOutput, error) {
		return s.seed(ctx, app.Concurrent, seedInput{Tasks: in.Tasks, Delay: in.Delay, Wait: in.Wait}, in.Parallelism)
	})
	limits := s.core.Config.Limits
	for _, path := range []string{"/sequential", "/sequential_celery", "/distributed", "/concurrent"} {
		s.limitParam(path, "tasks", 1, float64(limits.MaxTasks))
		s.limitParam(path, "delay", 0, limits.MaxDelay.Seconds())
	}
	s.limitParam("/concurrent", "parallelism", 1, float64(limits.MaxParallelism))

	register(s, open, huma.Operation{
		OperationID: "seed-result",
		Method:      http.MethodGet,
		Path:        "/result/{task_id}",
		Tags:        []string{"seed"},
		Summary:     "Get a task's state and result",
		Errors:      []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, s.result)
}

func (s *Server) seedHandler(mode app.Mode) func(context.Context, *seedInput) (*seedOutput, error) {
	return func(ctx context.Context, in *seedInput) (*seedOutput, error) {
		return s.seed(ctx, mode, *in, 0)
	}
}

func (s *Server) seed(ctx context.Context, mode app.Mode, in seedInput, parallelism int) (*seedOutput, error) {
	values := map[string]any{"tasks": in.Tasks, "delay": in.Delay, "parallelism": parallelism}
	maxDelay := s.core.Config.Limits.MaxDelay.Seconds()
	if !(in.Delay >= 0 && in.Delay <= maxDelay) { // also catches NaN
		err := app.Invalid("delay", "must be between 0 and %g seconds; got %v", maxDelay, in.Delay)
		return nil, s.fail(ctx, about(err, "query", values))
	}
	if mode == app.Concurrent && parallelism < 1 {
		// The plan would take 0 for "the default"; here the default is the query's own.
		err := app.Invalid("parallelism", "must be between 1 and %d; got %d", s.core.Config.Limits.MaxParallelism, parallelism)
		return nil, s.fail(ctx, about(err, "query", values))
	}
	p := app.Plan{Mode: mode, Tasks: in.Tasks, DelayMS: int64(math.Round(in.Delay * 1000)), Parallelism: parallelism}
	r, err := s.core.Launcher.Launch(ctx, p)
	if err != nil {
		return nil, s.fail(ctx, about(err, "query", values))
	}
	out := &SeedRun{Mode: r.Mode, RunID: r.ID, Status: app.StatusRunning, Tasks: r.Tasks,
		DelaySeconds: float64(r.DelayMS) / 1000, TaskIDs: make([]string, r.Tasks),
		RunURL: s.link("/runs/" + r.ID), StatusURL: s.link("/api/runs/" + r.ID)}
	for i := range out.TaskIDs {
		out.TaskIDs[i] = app.TaskID(r.ID, i)
	}
	if !in.Wait {
		return &seedOutput{Status: http.StatusAccepted, Body: out}, nil
	}

	// Wait on the run's events, not on the request's deadline: only our own bound and a
	// shutdown end the wait.
	wait := min(time.Duration(r.Tasks)*r.Delay()+seedWaitSlack, maxSeedWait)
	wctx, cancel := context.WithTimeout(s.base, wait)
	defer cancel()
	var events []*app.Event
	ended := false
	err = s.core.Feed.Watch(wctx, r.ID, "", func(e *app.Event) error {
		events = append(events, e)
		ended = ended || e.Terminal()
		return nil
	})
	if !ended {
		if err != nil && wctx.Err() == nil {
			return nil, s.fail(ctx, err)
		}
		return &seedOutput{Status: http.StatusAccepted, Body: out}, nil
	}

	proj := app.Project(r, events, time.Now(), nil)
	out.Status = proj.Run.Status
	if proj.Run.WallMS != nil {
		out.ElapsedSeconds = new(*proj.Run.WallMS / 1000)
	}
	for _, t := range proj.Tasks {
		res := SeedResult{Index: t.Index, TaskID: t.ID, State: t.State, Status: t.HTTPStatus, Error: t.Error}
		if t.DurationMS != nil {
			res.DurationSeconds = new(*t.DurationMS / 1000)
		}
		out.Results = append(out.Results, res)
	}
	return &seedOutput{Status: http.StatusOK, Body: out}, nil
}

func (s *Server) result(ctx context.Context, in *resultInput) (*resultOutput, error) {
	_, t, err := s.task(ctx, in.TaskID)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	res := &TaskResult{TaskID: t.ID, State: t.State}
	switch t.State {
	case app.TaskStateDone, app.TaskStateFailed:
		o := &TaskOutcome{Status: t.HTTPStatus, Error: t.Error}
		if t.DurationMS != nil {
			o.DurationSeconds = new(*t.DurationMS / 1000)
		}
		if t.Worker != nil {
			o.Worker = t.Worker.String()
		}
		res.Result = o
	}
	return &resultOutput{Body: res}, nil
}
