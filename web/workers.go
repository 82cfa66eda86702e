package web

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
)

// WorkerServer is one live asynq server on the run queue: a `taskrace worker` process, or
// the worker inside a `taskrace serve`.
type WorkerServer struct {
	ID          string       `json:"id"`
	Host        string       `json:"host"`
	PID         int          `json:"pid"`
	Concurrency int          `json:"concurrency"`
	Queues      []string     `json:"queues"`
	Started     time.Time    `json:"started"`
	Status      string       `json:"status"`
	Active      []ActiveTask `json:"active"`
}

// ActiveTask is a task a worker is executing, as of its last heartbeat (every 5 s).
type ActiveTask struct {
	TaskID   string    `json:"task_id"`
	RunID    string    `json:"run_id,omitempty"`
	Index    int       `json:"index"`
	Started  time.Time `json:"started"`
	Deadline time.Time `json:"deadline"`
}

// WorkerList is the answer of GET /api/workers.
type WorkerList struct {
	Servers  []WorkerServer `json:"servers"`
	Capacity int            `json:"capacity"` // total slots, what a distributed run's parallelism is
	At       time.Time      `json:"at"`
}

type workersOutput struct{ Body *WorkerList }

// workerSnapshot shares one read of asynq's server list among every viewer for a second.
type workerSnapshot struct {
	mu   sync.Mutex
	at   time.Time
	list *WorkerList
}

func (s *Server) workers(ctx context.Context) (*WorkerList, error) {
	s.workerSnap.mu.Lock()
	defer s.workerSnap.mu.Unlock()
	if s.workerSnap.list != nil && time.Since(s.workerSnap.at) < time.Second {
		return s.workerSnap.list, nil
	}
	servers, err := s.core.Launcher.Servers(ctx)
	if err != nil {
		return nil, err
	}
	list := &WorkerList{Servers: []WorkerServer{}, At: time.Now().UTC()}
	for _, srv := range servers {
		ws := WorkerServer{ID: srv.ID, Host: srv.Host, PID: srv.PID, Concurrency: srv.Concurrency,
			Started: srv.Started.UTC(), Status: srv.Status, Active: []ActiveTask{}}
		for q := range srv.Queues {
			ws.Queues = append(ws.Queues, q)
		}
		slices.Sort(ws.Queues)
		for _, w := range srv.ActiveWorkers {
			t := ActiveTask{TaskID: w.TaskID, Started: w.Started.UTC(), Deadline: w.Deadline.UTC()}
			if run, idx, ok := app.ParseTaskID(w.TaskID); ok {
				t.RunID, t.Index = run, idx
			}
			ws.Active = append(ws.Active, t)
		}
		slices.SortFunc(ws.Active, func(a, b ActiveTask) int { return a.Started.Compare(b.Started) })
		list.Servers = append(list.Servers, ws)
		list.Capacity += srv.Concurrency
	}
	s.workerSnap.at, s.workerSnap.list = time.Now(), list
	return list, nil
}

func (s *Server) registerWorkers() {
	register(s, open, huma.Operation{
		OperationID: "list-workers",
		Method:      http.MethodGet,
		Path:        "/api/workers",
		Tags:        []string{"workers"},
		Summary:     "List the live workers",
		Description: "The asynq servers serving the run queue, with the tasks each is executing as of its last heartbeat (asynq writes one every 5 s).",
		Errors:      []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *struct{}) (*workersOutput, error) {
		list, err := s.workers(ctx)
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		return &workersOutput{Body: list}, nil
	})
	s.route(fiber.MethodGet, "/api/workers/stream", open, s.workersStream)
	s.describe(&huma.Operation{
		OperationID: "stream-workers",
		Method:      http.MethodGet,
		Path:        "/api/workers/stream",
		Tags:        []string{"workers"},
		Summary:     "Stream the live workers",
		Description: "Server-sent events: a `workers` event every 2 s whose data is the WorkerList of GET /api/workers. " +
			"Like every stream, it drops a viewer that accepts nothing for STREAM_WRITE_TIMEOUT, and answers 503 past MAX_VIEWERS.",
		Responses: map[string]*huma.Response{"200": {Description: "The stream.",
			Content: map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{Type: "string"}}}},
			"503": {Description: "The server already serves MAX_VIEWERS streams"}},
	})
}

// workersEvery is how often the workers stream sends the list.
const workersEvery = 2 * time.Second

// workersStream sends the worker list as an SSE `workers` event every 2 s, until the
// client leaves or the server shuts down.
func (s *Server) workersStream(c *fiber.Ctx) error {
	return s.stream(c, func() (sseSource, error) { return &workersSource{s: s}, nil })
}

// workersSource is the workers stream: the list now, then every workersEvery.
type workersSource struct {
	s     *Server
	at    time.Time // when the next list is due
	timer *time.Timer
}

func (w *workersSource) next(ctx context.Context) ([][]byte, bool, error) {
	now := time.Now()
	if now.Before(w.at) {
		return nil, false, nil
	}
	w.at = now.Add(workersEvery)
	if w.timer == nil {
		w.timer = time.NewTimer(workersEvery)
	} else {
		w.timer.Reset(workersEvery)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	list, err := w.s.workers(ctx)
	cancel()
	if err != nil {
		return [][]byte{[]byte(": redis unreachable\n\n")}, false, nil
	}
	b, _ := json.Marshal(list)
	return [][]byte{[]byte("event: workers\ndata: "), b, []byte("\n\n")}, false, nil
}

func (w *workersSource) ready() <-chan struct{} { return nil }
func (w *workersSource) due() <-chan time.Time {
	if w.timer == nil {
		return nil
	}
	return w.timer.C
}

func (w *workersSource) last(context.Context) [][]byte { return nil }

func (w *workersSource) close() {
	if w.timer != nil {
		w.timer.Stop()
	}
}
