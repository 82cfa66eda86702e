package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/live"
)

// The tasks of any asynq application that records them with package live: listed, queried,
// followed live, and aggregated. They are read (restricted): with ADMIN_TOKEN set they are
// the admin's unless PUBLIC_TASKS.

type listTasksInput struct {
	Q      string `query:"q" maxLength:"1000" doc:"Query: state:failed type:email:* queue:critical worker:host retried:yes, and free text over ID and error; values may list alternatives with commas"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Tasks per page"`
	Cursor string `query:"cursor" doc:"The next value of the previous page"`
}

// TaskList is one page of recorded tasks, newest first.
type TaskList struct {
	Tasks  []live.Task    `json:"tasks"`
	Next   *string        `json:"next" nullable:"true" doc:"The cursor of the next page; null on the last page"`
	Total  int            `json:"total" doc:"Tasks the query selects"`
	Counts map[string]int `json:"counts" doc:"Tasks the query selects, by state"`
}

type taskListOutput struct {
	Body *TaskList
}

type foreignTaskInput struct {
	Queue     string `path:"queue" doc:"The task's asynq queue"`
	ID        string `path:"id" doc:"The task's asynq ID"`
	Execution int    `query:"execution" minimum:"0" doc:"Which task under this queue and ID (asynq IDs can be reused): 1 for the first; 0 or absent for the latest"`
}

type foreignTaskOutput struct {
	Body *live.Task
}

type statsInput struct {
	Window  string `query:"window" default:"1h" doc:"How far back, as a duration from 1m to 24h (e.g. 15m, 1h, 24h)"`
	Minutes bool   `query:"minutes" doc:"Include each entry's per-minute series"`
	Queue   string `query:"queue" maxLength:"1000" doc:"Only the entries of this queue (exact name, as asynq spells it); absent or empty: every queue"`
}

type statsOutput struct {
	Body *live.Stats
}

// registerTasks serves the recorded tasks. Its stream is a plain route, registered before
// the API's /api/tasks/{task_id}, which would otherwise take /api/tasks/events.
func (s *Server) registerTasks() {
	r, err := live.NewReader(s.core.Redis.Opt, live.ReaderOptions{Logger: s.logger})
	if err != nil {
		panic("web: " + err.Error()) // the connection option is taskrace's own: it makes a go-redis client
	}
	s.recorded = r
	s.route(fiber.MethodGet, "/api/tasks/events", restricted, s.taskEvents)

	register(s, restricted, huma.Operation{
		OperationID: "list-tasks",
		Method:      http.MethodGet,
		Path:        "/api/tasks",
		Tags:        []string{"tasks"},
		Summary:     "List recorded tasks, newest first",
		Description: "Every task that asynq servers recording with package live ran, of every type and queue, as their facts tell it now. " +
			"The query has Flower's kind of syntax: `state:failed type:email:* queue:critical worker:host retried:yes` and free text over ID and errors.",
		Errors: []int{http.StatusBadRequest, http.StatusServiceUnavailable},
	}, s.listTasks)

	register(s, restricted, huma.Operation{
		OperationID: "get-recorded-task",
		Method:      http.MethodGet,
		Path:        "/api/tasks/{queue}/{id}",
		Tags:        []string{"tasks"},
		Summary:     "Get a recorded task with its attempts",
		Description: "Tasks are keyed by queue and ID, and execution: asynq IDs are unique per queue only, and an ID can be enqueued again once its task is gone. Escape a / in either as %2F. " +
			"taskrace's own tasks are here too, with the state their run shows: a distributed one under its asynq queue (taskrace by default), a sequential or concurrent one under taskrace:sequential or taskrace:concurrent, with the ID <run ID>.<index>; GET /api/tasks/{task_id} answers for the same task from its run's record.",
		Errors: []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, s.getRecordedTask)

	register(s, restricted, huma.Operation{
		OperationID: "get-stats",
		Method:      http.MethodGet,
		Path:        "/api/stats",
		Tags:        []string{"tasks"},
		Summary:     "Aggregates of the recorded tasks by type and queue",
		Description: "Attempts started and ended (by how they ended), retries, failures, and the distributions of durations and waits, over the last window (kept 24 h, by minute). " +
			"Each entry is one task type on one queue and names both: the same type on two queues is two entries, each with its own counts. " +
			"taskrace's own tasks are type taskrace:fetch, on the queues taskrace (distributed, by default), taskrace:sequential and taskrace:concurrent. " +
			"/metrics exports the same counters since recording began, labeled by type and queue.",
		Errors: []int{http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}, s.getStats)

	s.describe(&huma.Operation{
		OperationID: "stream-task-events",
		Method:      http.MethodGet,
		Path:        "/api/tasks/events",
		Tags:        []string{"tasks"},
		Summary:     "Stream the facts of recorded tasks",
		Description: "Server-sent events: each fact the query selects (an attempt started, an attempt ended, a task canceled), with the state it leaves its task in, as it is recorded. " +
			"Each frame is `id: <stream entry ID>`, `event: task.started`, `task.ended` or `task.canceled` (stopped from outside: a taskrace run canceled or interrupted), and `data: <the fact as JSON>`; a `: ping` comment comes every 15 s. " +
			"Without a resume position the stream starts with the facts that follow the request; a reconnecting EventSource sends Last-Event-ID and misses nothing the stream still holds.",
		Parameters: []*huma.Param{
			{Name: "q", In: "query", Description: "The query of GET /api/tasks", Schema: &huma.Schema{Type: "string", MaxLength: ptr(1000)}},
			{Name: "Last-Event-ID", In: "header", Description: "Resume after this event ID (sent by EventSource on reconnect)",
				Schema: &huma.Schema{Type: "string", Pattern: `^\d+-\d+$`}},
			{Name: "after", In: "query", Description: "Resume after this event ID, when no Last-Event-ID header is sent (0-0: from the oldest fact held)",
				Schema: &huma.Schema{Type: "string", Pattern: `^\d+-\d+$`}},
		},
		Responses: s.streamResponses("An Event: a fact and the state it leaves its task in", "TaskEvent",
			"The query or the resume position does not parse"),
	})
}

func ptr[T any](v T) *T { return &v }

// streamResponses are the answers of an event stream whose frames carry eventType.
func (s *Server) streamResponses(what, name, bad string) map[string]*huma.Response {
	reg := s.api.OpenAPI().Components.Schemas
	problem := reg.Schema(reflect.TypeFor[Problem](), true, "Problem")
	data := reg.Schema(reflect.TypeFor[live.Event](), true, name)
	content := func(desc string) *huma.Response {
		return &huma.Response{Description: desc, Content: map[string]*huma.MediaType{"application/problem+json": {Schema: problem}}}
	}
	return map[string]*huma.Response{
		"200": {Description: "The event stream. The data of each frame is " + what + " (see x-event-data).", Content: map[string]*huma.MediaType{
			"text/event-stream": {
				Schema:     &huma.Schema{Type: "string", Description: "text/event-stream frames"},
				Extensions: map[string]any{"x-event-data": data},
			},
		}},
		"400": content(bad),
		"401": content("With ADMIN_TOKEN set and PUBLIC_TASKS not: only the admin may read recorded tasks"),
		"503": content("Redis is unreachable"),
	}
}

// liveError speaks the reader's errors in the domain's vocabulary.
func liveError(err error, what string) error {
	switch {
	case errors.Is(err, live.ErrNotFound):
		return app.Errorf(app.ENotFound, "%s not found: no recorder has recorded it, or the record has been trimmed", what)
	case errors.Is(err, live.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return app.Unavailable("cannot read the recorded tasks: Redis is unreachable", err)
	}
	return err
}

// parseTaskQuery parses q, or says in the query's terms why it cannot.
func parseTaskQuery(q string) (*live.Query, error) {
	parsed, err := live.ParseQuery(q)
	if err != nil {
		e := &app.Error{Code: app.EMalformed, Field: "q", Message: "q: " + err.Error()}
		return nil, about(e, "query", map[string]any{"q": q})
	}
	return parsed, nil
}

func (s *Server) listTasks(ctx context.Context, in *listTasksInput) (*taskListOutput, error) {
	q, err := parseTaskQuery(in.Q)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if in.Cursor != "" && !live.ValidEventID(in.Cursor) {
		err := app.Invalid("cursor", "must be the next value of a previous page; got %q", in.Cursor)
		return nil, s.fail(ctx, about(err, "query", map[string]any{"cursor": in.Cursor}))
	}
	p, err := s.recorded.Tasks(ctx, q, in.Limit, in.Cursor)
	if err != nil {
		return nil, s.fail(ctx, liveError(err, "tasks"))
	}
	list := &TaskList{Tasks: p.Tasks, Total: p.Total, Counts: p.Counts}
	if p.Next != "" {
		list.Next = &p.Next
	}
	return &taskListOutput{Body: list}, nil
}

func (s *Server) getRecordedTask(ctx context.Context, in *foreignTaskInput) (*foreignTaskOutput, error) {
	queue, qerr := url.PathUnescape(in.Queue)
	id, ierr := url.PathUnescape(in.ID)
	if qerr != nil || ierr != nil {
		return nil, s.fail(ctx, app.Errorf(app.ENotFound, "task %s/%s not found: not a valid escaped path", in.Queue, in.ID))
	}
	t, err := s.recorded.Task(ctx, queue, id, in.Execution)
	if err != nil {
		what := fmt.Sprintf("task %s on queue %s", id, queue)
		if in.Execution > 0 {
			what += fmt.Sprintf(" (execution %d)", in.Execution)
		}
		return nil, s.fail(ctx, liveError(err, what))
	}
	return &foreignTaskOutput{Body: t}, nil
}

func (s *Server) getStats(ctx context.Context, in *statsInput) (*statsOutput, error) {
	window, err := time.ParseDuration(in.Window)
	if err != nil || window < time.Minute || window > live.StatsRetention {
		err := app.Invalid("window", "must be a duration from 1m to 24h, like 15m or 1h; got %q", in.Window)
		return nil, s.fail(ctx, about(err, "query", map[string]any{"window": in.Window}))
	}
	now := time.Now()
	st, err := s.recorded.Stats(ctx, now.Add(-window+time.Minute), now, in.Minutes)
	if err != nil {
		return nil, s.fail(ctx, liveError(err, "stats"))
	}
	if in.Queue != "" {
		st.Types = slices.DeleteFunc(st.Types, func(t live.TypeStats) bool { return t.Queue != in.Queue })
	}
	return &statsOutput{Body: st}, nil
}

// taskEvents streams the recorded facts the query selects as server-sent events, through
// the one SSE writer.
func (s *Server) taskEvents(c *fiber.Ctx) error {
	q, err := parseTaskQuery(strings.Clone(c.Query("q")))
	if err != nil {
		return err
	}
	after, where := strings.Clone(c.Get("Last-Event-ID")), "header.Last-Event-ID"
	if after == "" {
		after, where = strings.Clone(c.Query("after")), "query.after"
	}
	if after != "" && !live.ValidEventID(after) {
		name := where[strings.IndexByte(where, '.')+1:]
		msg := fmt.Sprintf("%s: must be an event ID like 1700000000000-0 (a stream entry ID); got %q", name, after)
		p := newProblem(http.StatusBadRequest, msg)
		p.Errors = []*FieldError{{Location: where, Message: msg, Value: after}}
		return p
	}
	return s.stream(c, func() (sseSource, error) {
		ctx, cancel := context.WithTimeout(c.UserContext(), s.apiTimeout)
		defer cancel()
		sub, err := s.recorded.Subscribe(ctx, q, after)
		if err != nil {
			return nil, liveError(err, "tasks")
		}
		return &taskSource{s: s, sub: sub}, nil
	})
}

// taskSource sends the recorded facts a subscription hands out.
type taskSource struct {
	s   *Server
	sub *live.Subscription
}

func (t *taskSource) next(ctx context.Context) ([][]byte, bool, error) {
	rctx, cancel := context.WithTimeout(ctx, t.s.apiTimeout)
	evs, err := t.sub.Next(rctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			t.s.logger.Warn("task event stream ended", "err", err)
		}
		return nil, false, err
	}
	frames := make([][]byte, len(evs))
	for i, e := range evs {
		frames[i] = renderTaskEvent(e)
	}
	return frames, false, nil
}

func (t *taskSource) ready() <-chan struct{}        { return t.sub.Ready() }
func (t *taskSource) due() <-chan time.Time         { return nil }
func (t *taskSource) last(context.Context) [][]byte { return nil }
func (t *taskSource) close()                        { t.sub.Close() }

func renderTaskEvent(e *live.Event) []byte {
	data, _ := json.Marshal(e) // plain fields: cannot fail
	b := make([]byte, 0, len(data)+len(e.ID)+40)
	b = append(b, "id: "...)
	b = append(b, e.ID...)
	b = append(b, "\nevent: task."...)
	b = append(b, e.Kind...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}
