package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

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
	Role        string       `json:"role" enum:"serve,worker,app" doc:"serve: the worker inside a taskrace serve; worker: a taskrace worker; app: another asynq application's server"`
	Concurrency int          `json:"concurrency"`
	Queues      []string     `json:"queues"`
	Started     time.Time    `json:"started"`
	HeartbeatAt time.Time    `json:"heartbeat_at,omitzero" doc:"Its latest heartbeat, to the second (asynq writes one every 5 s)"`
	Status      string       `json:"status"`
	Active      []ActiveTask `json:"active"`
}

// ActiveTask is a task a worker is executing, as of its last heartbeat (every 5 s).
type ActiveTask struct {
	TaskID   string    `json:"task_id"`
	Type     string    `json:"type,omitempty"`
	Queue    string    `json:"queue,omitempty"`
	RunID    string    `json:"run_id,omitempty"`
	Index    int       `json:"index"`
	Started  time.Time `json:"started"`
	Deadline time.Time `json:"deadline"`
}

// Roles of a worker process.
const (
	roleServe  = "serve"  // a taskrace serve, with or without its worker
	roleWorker = "worker" // a taskrace worker
	roleApp    = "app"    // another asynq application
)

// WorkerList is the answer of GET /api/workers.
type WorkerList struct {
	Servers  []WorkerServer `json:"servers"`
	Capacity int            `json:"capacity"` // total slots, what a distributed run's parallelism is
	At       time.Time      `json:"at"`

	others []WorkerServer // the live asynq servers of other queues: other applications'
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
	all, err := s.allServers(ctx)
	if err != nil {
		return nil, err
	}
	list := &WorkerList{Servers: []WorkerServer{}, At: time.Now().UTC()}
	ours := map[string]bool{}
	for _, srv := range servers {
		ours[srv.ID] = true
		list.Servers = append(list.Servers, serverOf(srv))
		list.Capacity += srv.Concurrency
	}
	for _, srv := range all {
		if !ours[srv.ID] && srv.Status != "closed" && srv.Status != "stopped" {
			list.others = append(list.others, serverOf(srv))
		}
	}
	if err := s.heartbeats(ctx, list); err != nil {
		return nil, err
	}
	s.workerSnap.at, s.workerSnap.list = time.Now(), list
	return list, nil
}

func serverOf(srv *asynq.ServerInfo) WorkerServer {
	ws := WorkerServer{ID: srv.ID, Host: srv.Host, PID: srv.PID, Concurrency: srv.Concurrency,
		Started: srv.Started.UTC(), Status: srv.Status, Active: []ActiveTask{}}
	for q := range srv.Queues {
		ws.Queues = append(ws.Queues, q)
	}
	slices.Sort(ws.Queues)
	for _, w := range srv.ActiveWorkers {
		t := ActiveTask{TaskID: w.TaskID, Type: w.TaskType, Queue: w.Queue, Started: w.Started.UTC(), Deadline: w.Deadline.UTC()}
		if run, idx, ok := app.ParseTaskID(w.TaskID); ok {
			t.RunID, t.Index = run, idx
		}
		ws.Active = append(ws.Active, t)
	}
	slices.SortFunc(ws.Active, func(a, b ActiveTask) int { return a.Started.Compare(b.Started) })
	return ws
}

// allServers lists every asynq server Redis holds, of any queue.
func (s *Server) allServers(ctx context.Context) ([]*asynq.ServerInfo, error) {
	type result struct {
		s   []*asynq.ServerInfo
		err error
	}
	ch := make(chan result, 1)
	go func() { // the Inspector takes no context: bound the wait here
		all, err := s.core.Launcher.Inspector().Servers()
		ch <- result{all, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, app.Unavailable("cannot list workers", r.err)
		}
		return r.s, nil
	case <-ctx.Done():
		return nil, app.Unavailable("cannot list workers", ctx.Err())
	}
}

// heartbeats sets each server's latest heartbeat and role: asynq's server set scores each
// server with the expiry of its latest heartbeat, written every asynqHeartbeat for twice
// that; a taskrace serve marks its process (markServe).
func (s *Server) heartbeats(ctx context.Context, list *WorkerList) error {
	p := s.core.Redis.Client.Pipeline()
	type ask struct {
		ws    *WorkerServer
		score *redis.FloatCmd
		serve *redis.IntCmd
	}
	var asks []ask
	for _, group := range [][]WorkerServer{list.Servers, list.others} {
		for i := range group {
			ws := &group[i]
			asks = append(asks, ask{ws,
				p.ZScore(ctx, "asynq:servers", "asynq:servers:{"+ws.Host+":"+strconv.Itoa(ws.PID)+":"+ws.ID+"}"),
				p.Exists(ctx, serveKey(ws.Host, ws.PID))})
		}
	}
	if len(asks) == 0 {
		return nil
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return app.Unavailable("cannot read the workers' heartbeats", err)
	}
	ourQueue := s.core.Config.Queue
	for _, a := range asks {
		if exp, err := a.score.Result(); err == nil {
			a.ws.HeartbeatAt = time.Unix(int64(exp), 0).Add(-2 * asynqHeartbeat).UTC()
		}
		switch {
		case a.serve.Val() > 0 || (a.ws.Host == s.core.Host && a.ws.PID == s.core.PID):
			a.ws.Role = roleServe
		case slices.Contains(a.ws.Queues, ourQueue):
			a.ws.Role = roleWorker
		default:
			a.ws.Role = roleApp
		}
	}
	return nil
}

// asynqHeartbeat is how often an asynq server writes its state (a constant of asynq's).
const asynqHeartbeat = 5 * time.Second

// serveKey marks a process that serves taskrace's pages, so the workers page can tell the
// worker inside a serve from a `taskrace worker`.
func serveKey(host string, pid int) string { return "taskrace:serve:" + host + ":" + strconv.Itoa(pid) }

// markServe marks this process as a serve every few seconds, until Shutdown.
func (s *Server) markServe() {
	defer s.bg.Done()
	key := serveKey(s.core.Host, s.core.PID)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(s.base, 2*time.Second)
		s.core.Redis.Client.Set(ctx, key, "1", 15*time.Second)
		cancel()
		select {
		case <-tick.C:
		case <-s.base.Done():
			return
		}
	}
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
	// The list now, then every workersEvery.
	return s.stream(c, func() (sseSource, error) {
		return &periodicSource{every: workersEvery, render: func(ctx context.Context) ([]byte, error) {
			list, err := s.workers(ctx)
			if err != nil {
				return nil, err
			}
			b, _ := json.Marshal(list)
			return slices.Concat([]byte("event: workers\ndata: "), b, []byte("\n\n")), nil
		}}, nil
	})
}
