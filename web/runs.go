package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/app"
)

// RunRequest is the body of POST /api/runs: the plan of a run.
type RunRequest struct {
	Mode        app.Mode `json:"mode" enum:"sequential,concurrent,distributed" doc:"How the tasks execute: one after another, on goroutines of this process, or as asynq tasks on the workers"`
	Tasks       *int     `json:"tasks,omitempty" default:"10" doc:"How many tasks"`
	DelayMS     *int64   `json:"delay_ms,omitempty" default:"3000" doc:"How long each task's HTTP call takes, in milliseconds"`
	Parallelism *int     `json:"parallelism,omitempty" doc:"Concurrent mode: tasks at once (0 or absent: 5). Sequential runs have 1; distributed runs take the live workers' total concurrency"`
	Target      string   `json:"target,omitempty" default:"builtin" doc:"builtin (this server's /httpbin) or an allowlisted base URL scheme://host[:port]"`
	FailureRate *float64 `json:"failure_rate,omitempty" minimum:"0" maximum:"1" doc:"Share of tasks whose first attempt fails, to show retries (0 to 1; the same run fails the same tasks)"`
}

// plan is the request as a domain plan.
func (b RunRequest) plan() app.Plan {
	return app.Plan{Mode: b.Mode, Tasks: deref(b.Tasks), DelayMS: deref(b.DelayMS),
		Parallelism: deref(b.Parallelism), Target: b.Target, FailureRate: deref(b.FailureRate)}
}

// planValues are a plan's inputs by field name, echoed in validation problems.
func planValues(p app.Plan) map[string]any {
	return map[string]any{"mode": p.Mode, "tasks": p.Tasks, "delay_ms": p.DelayMS,
		"parallelism": p.Parallelism, "target": p.Target, "failure_rate": p.FailureRate}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

type createRunInput struct {
	Body RunRequest
}

type runOutput struct {
	Location string `header:"Location" doc:"The run's URL"`
	Body     *app.Run
}

type runIDInput struct {
	ID string `path:"id" doc:"Run ID"`
}

type runOnly struct {
	Body *app.Run
}

type getRunInput struct {
	ID     string `path:"id" doc:"Run ID"`
	Limit  int    `query:"limit" minimum:"1" default:"200" doc:"Tasks in this page"`
	Cursor string `query:"cursor" doc:"The next value of the previous page: the index of the first task of this page"`
}

// RunDetail is a run as its events tell it now, with one page of its tasks.
type RunDetail struct {
	Run     *app.Run    `json:"run"`
	Summary app.Summary `json:"summary"`
	At      app.Time    `json:"at" doc:"The instant projected: the run's end once it has ended"`
	Tasks   []*app.Task `json:"tasks" doc:"The tasks of this page, in index order"`
	Next    *string     `json:"next" nullable:"true" doc:"The cursor of the next page of tasks; null on the last page"`
}

type runDetailOutput struct {
	Body *RunDetail
}

type listRunsInput struct {
	Mode   string `query:"mode" enum:"sequential,concurrent,distributed" doc:"Only runs of this mode"`
	Status string `query:"status" enum:"running,finished,canceled,interrupted" doc:"Only runs with this status"`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"Runs per page"`
	Cursor string `query:"cursor" doc:"The next value of the previous page"`
}

// RunList is one page of runs, newest first.
type RunList struct {
	Runs []*app.Run `json:"runs"`
	Next *string    `json:"next" nullable:"true" doc:"The cursor of the next page; null on the last page"`
}

type runListOutput struct {
	Body *RunList
}

type taskInput struct {
	TaskID string `path:"task_id" doc:"Task ID: <run ID>.<index> (the older <run ID>-<index> is read too)"`
}

// TaskDetail is one task as our events tell it, with asynq's view for distributed runs.
type TaskDetail struct {
	RunID     string   `json:"run_id" doc:"The task's run"`
	Mode      app.Mode `json:"mode" doc:"The run's mode"`
	RunStatus string   `json:"run_status" doc:"The run's status"`
	app.Task
	Queue *QueueInfo `json:"queue,omitempty" doc:"asynq's record of a distributed task, while it keeps one"`
}

// QueueInfo is asynq's record of a distributed task.
type QueueInfo struct {
	Queue         string     `json:"queue"`
	State         string     `json:"state" doc:"pending, active, scheduled, retry, archived, completed or aggregating"`
	Retried       int        `json:"retried"`
	MaxRetry      int        `json:"max_retry"`
	LastError     string     `json:"last_error,omitempty"`
	LastFailedAt  *time.Time `json:"last_failed_at,omitempty"`
	NextProcessAt *time.Time `json:"next_process_at,omitempty"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	Result        string     `json:"result,omitempty"`
}

type taskOutput struct {
	Body *TaskDetail
}

func (s *Server) registerRuns() {
	limits := s.core.Config.Limits
	register(s, launch, huma.Operation{
		OperationID:   "create-run",
		Method:        http.MethodPost,
		Path:          "/api/runs",
		Tags:          []string{"runs"},
		Summary:       "Launch a run",
		Description:   "Validates the plan, saves the run and starts it. Follow it at /api/runs/{id}/events.",
		DefaultStatus: http.StatusCreated,
		MaxBodyBytes:  int64(s.cfg.MaxBody) + 1, // limitBody enforces the limit; huma counts one byte more as too many
		Middlewares:   huma.Middlewares{s.jsonOnly},
		Errors: []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType,
			http.StatusTooManyRequests, http.StatusServiceUnavailable},
	}, s.createRun)
	s.limitSchema("RunRequest", "tasks", 1, float64(limits.MaxTasks))
	s.limitSchema("RunRequest", "delay_ms", 0, float64(limits.MaxDelay.Milliseconds()))
	s.limitSchema("RunRequest", "parallelism", 0, float64(limits.MaxParallelism))

	register(s, open, huma.Operation{
		OperationID: "list-runs",
		Method:      http.MethodGet,
		Path:        "/api/runs",
		Tags:        []string{"runs"},
		Summary:     "List runs, newest first",
		Errors:      []int{http.StatusServiceUnavailable},
	}, s.listRuns)

	register(s, open, huma.Operation{
		OperationID: "get-run",
		Method:      http.MethodGet,
		Path:        "/api/runs/{id}",
		Tags:        []string{"runs"},
		Summary:     "Get a run with a page of its tasks",
		Description: "The run, the summary and a page of its tasks, each with its attempts, as the run's events tell them now: a running attempt lasts until now; once the run is canceled or interrupted, the tasks it stopped read canceled. A finished run's speed-up and reduction are against the latest sequential run of the same plan launched before it, else against tasks × delay. Tasks come `limit` at a time in index order; `next` is the cursor of the following page.",
		Errors:      []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, s.getRun)
	s.limitParam("/api/runs/{id}", "limit", 1, float64(limits.MaxTasks))

	register(s, admin, huma.Operation{
		OperationID: "cancel-run",
		Method:      http.MethodPost,
		Path:        "/api/runs/{id}/cancel",
		Tags:        []string{"runs"},
		Summary:     "Cancel a running run",
		Description: "Appends run.canceled, deletes pending tasks and cancels active ones.",
		Errors:      []int{http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable},
	}, s.cancelRun)

	register(s, admin, huma.Operation{
		OperationID: "pin-run",
		Method:      http.MethodPost,
		Path:        "/api/runs/{id}/pin",
		Tags:        []string{"runs"},
		Summary:     "Keep a run forever",
		Errors:      []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, s.pinRun(true))

	register(s, admin, huma.Operation{
		OperationID: "unpin-run",
		Method:      http.MethodDelete,
		Path:        "/api/runs/{id}/pin",
		Tags:        []string{"runs"},
		Summary:     "Let a run expire again after the retention period",
		Errors:      []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, s.pinRun(false))

	register(s, open, huma.Operation{
		OperationID: "get-task",
		Method:      http.MethodGet,
		Path:        "/api/tasks/{task_id}",
		Tags:        []string{"tasks"},
		Summary:     "Get a task",
		Description: "State, worker, attempts, timestamps, duration, HTTP status and error, from the run's events; for a distributed task also asynq's record while it keeps one.",
		Errors:      []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, s.getTask)
}

func (s *Server) createRun(ctx context.Context, in *createRunInput) (*runOutput, error) {
	p := in.Body.plan()
	r, err := s.core.Launcher.Launch(ctx, p)
	if err != nil {
		return nil, s.fail(ctx, about(err, "body", planValues(p.Normalize())))
	}
	return &runOutput{Location: s.link("/api/runs/" + r.ID), Body: r}, nil
}

func (s *Server) listRuns(ctx context.Context, in *listRunsInput) (*runListOutput, error) {
	if in.Cursor != "" && !app.ValidRunID(in.Cursor) {
		err := app.Invalid("cursor", "must be the next value of a previous page; got %q", in.Cursor)
		return nil, s.fail(ctx, about(err, "query", map[string]any{"cursor": in.Cursor}))
	}
	runs, next, err := s.core.Runs.List(ctx, app.ListQuery{Mode: app.Mode(in.Mode), Status: in.Status, Limit: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	list := &RunList{Runs: runs}
	if list.Runs == nil {
		list.Runs = []*app.Run{}
	}
	if next != "" {
		list.Next = &next
	}
	return &runListOutput{Body: list}, nil
}

func (s *Server) getRun(ctx context.Context, in *getRunInput) (*runDetailOutput, error) {
	first := 0
	if in.Cursor != "" {
		n, err := strconv.Atoi(in.Cursor)
		if err != nil || n < 0 {
			err := app.Invalid("cursor", "must be the next value of a previous page; got %q", in.Cursor)
			return nil, s.fail(ctx, about(err, "query", map[string]any{"cursor": in.Cursor}))
		}
		first = n
	}
	p, err := s.timeline(ctx, in.ID)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	d := &RunDetail{Run: p.Run, Summary: p.Summary, At: p.At, Tasks: []*app.Task{}}
	if first < len(p.Tasks) {
		last := min(first+in.Limit, len(p.Tasks))
		d.Tasks = p.Tasks[first:last]
		if last < len(p.Tasks) {
			next := strconv.Itoa(last)
			d.Next = &next
		}
	}
	return &runDetailOutput{Body: d}, nil
}

// timeline reads a run and projects its events as of now (see app.Core.ReadRun).
func (s *Server) timeline(ctx context.Context, id string) (*app.Projection, error) {
	p, _, err := s.core.ReadRun(ctx, id, time.Now())
	return p, err
}

func (s *Server) cancelRun(ctx context.Context, in *runIDInput) (*runOnly, error) {
	r, err := s.core.Launcher.Cancel(ctx, in.ID)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &runOnly{Body: r}, nil
}

func (s *Server) pinRun(pinned bool) func(context.Context, *runIDInput) (*runOnly, error) {
	return func(ctx context.Context, in *runIDInput) (*runOnly, error) {
		if !app.ValidRunID(in.ID) {
			return nil, s.fail(ctx, app.Errorf(app.ENotFound, "run %q not found: not a run ID", in.ID))
		}
		if err := s.core.Runs.Pin(ctx, in.ID, pinned); err != nil {
			return nil, s.fail(ctx, err)
		}
		r, err := s.core.Runs.Get(ctx, in.ID)
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		return &runOnly{Body: r}, nil
	}
}

func (s *Server) getTask(ctx context.Context, in *taskInput) (*taskOutput, error) {
	r, t, err := s.task(ctx, in.TaskID)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	d := &TaskDetail{RunID: r.ID, Mode: r.Mode, RunStatus: r.Status, Task: *t}
	if r.Mode == app.Distributed {
		d.Queue = s.queueInfo(t.ID)
	}
	return &taskOutput{Body: d}, nil
}

// task finds task id in our records: its run, and the task folded from the run's events.
func (s *Server) task(ctx context.Context, id string) (*app.Run, *app.Task, error) {
	runID, index, ok := app.ParseTaskID(id)
	if !ok {
		return nil, nil, app.Errorf(app.ENotFound, "task %q not found: task IDs look like <run ID>.<index>", id)
	}
	tl, err := s.timeline(ctx, runID)
	if err != nil {
		return nil, nil, err
	}
	if index >= len(tl.Tasks) {
		return nil, nil, app.Errorf(app.ENotFound, "task %s not found: run %s has %d tasks", id, runID, len(tl.Tasks))
	}
	return tl.Run, tl.Tasks[index], nil
}

// queueInfo asks asynq about a task. The Inspector takes no context, so the wait is bounded
// here; a task asynq no longer keeps (or a Redis that does not answer) gives nil.
func (s *Server) queueInfo(taskID string) *QueueInfo {
	queue := s.core.Config.Queue
	found := make(chan *asynq.TaskInfo, 1)
	go func() {
		info, err := s.core.Launcher.Inspector().GetTaskInfo(queue, taskID)
		if err != nil {
			info = nil
		}
		found <- info
	}()
	var info *asynq.TaskInfo
	select {
	case info = <-found:
	case <-time.After(queueInfoTimeout):
		s.logger.Warn("asynq did not answer about a task in time", "task", taskID)
	}
	if info == nil {
		return nil
	}
	q := &QueueInfo{Queue: info.Queue, State: info.State.String(), Retried: info.Retried, MaxRetry: info.MaxRetry,
		LastError: info.LastErr, LastFailedAt: timePtr(info.LastFailedAt), NextProcessAt: timePtr(info.NextProcessAt),
		CompletedAt: timePtr(info.CompletedAt), Result: string(info.Result)}
	return q
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
