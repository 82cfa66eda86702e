package web

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/live"
	"github.com/taskrace/taskrace/live/taskstate"
	"github.com/taskrace/taskrace/templates"
)

// The workers pages: every live asynq server by process, with what the recorded facts tell
// of its work for a viewer who may read them (the level of the recorded tasks' routes).

// busyMinutes is how many minutes of busy slots the workers pages chart.
const (
	busyMinutesList   = 10
	busyMinutesWorker = 30
	workerRecent      = 20
	workersPageEvery  = time.Second
)

func (s *Server) registerWorkerPages() {
	s.route(fiber.MethodGet, "/workers", open, s.workersPage)
	s.route(fiber.MethodGet, "/workers/stream", open, s.workersPageStream)
	s.route(fiber.MethodGet, "/workers/:proc", open, s.workerPage)
}

// workerProcesses groups the live asynq servers by process, with the recorded counts when
// the viewer may read them (readable), over the last minutes.
func (s *Server) workerProcesses(ctx context.Context, readable bool, minutes int) ([]templates.WorkerProcess, time.Time, error) {
	list, err := s.workers(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	now := time.Now().UTC()
	servers := list.Servers
	if readable {
		servers = append(slices.Clone(servers), list.others...)
	}
	byName := map[string]*templates.WorkerProcess{}
	var order []string
	rank := map[string]int{roleApp: 0, roleWorker: 1, roleServe: 2}
	for _, ws := range servers {
		name := ws.Host + ":" + strconv.Itoa(ws.PID)
		p := byName[name]
		if p == nil {
			p = &templates.WorkerProcess{Host: ws.Host, PID: ws.PID, Role: ws.Role, Started: ws.Started, Status: ws.Status, Readable: readable}
			byName[name] = p
			order = append(order, name)
		}
		p.Servers++
		p.Concurrency += ws.Concurrency
		if rank[ws.Role] > rank[p.Role] {
			p.Role = ws.Role
		}
		if ws.Started.Before(p.Started) {
			p.Started = ws.Started
		}
		if ws.HeartbeatAt.After(p.HeartbeatAt) {
			p.HeartbeatAt = ws.HeartbeatAt
		}
		if ws.Status != p.Status && !strings.Contains(p.Status, ws.Status) {
			p.Status += ", " + ws.Status
		}
		for _, q := range ws.Queues {
			if !slices.Contains(p.Queues, q) {
				p.Queues = append(p.Queues, q)
			}
		}
		for _, t := range ws.Active {
			p.Active = append(p.Active, templates.ActiveTask{TaskID: t.TaskID, Type: t.Type, Queue: t.Queue, RunID: t.RunID,
				Index: t.Index, Started: t.Started, Link: readable && t.RunID == ""})
		}
	}
	if readable && len(order) > 0 {
		recorded, err := s.recorded.Processes(ctx, minutes, now)
		if err != nil {
			return nil, now, liveError(err, "recorded tasks")
		}
		for _, rp := range recorded {
			p := byName[rp.Name()]
			if p == nil {
				continue // no live server: gone
			}
			p.Counts = rp
			// asynq's list is as of the server's last heartbeat: a recorded task that has
			// ended since is no longer active, and one that started since is.
			p.Active = slices.DeleteFunc(p.Active, func(a templates.ActiveTask) bool {
				t, err := s.recorded.Task(ctx, a.Queue, a.TaskID, 0)
				return err == nil && t.State != taskstate.Running
			})
			for _, t := range rp.Running {
				if !slices.ContainsFunc(p.Active, func(a templates.ActiveTask) bool { return a.TaskID == t.ID && a.Queue == t.Queue }) {
					a := templates.ActiveTask{TaskID: t.ID, Type: t.Type, Queue: t.Queue, Started: t.LatestAt, Link: true}
					if run, idx, ok := app.ParseTaskID(t.ID); ok {
						a.RunID, a.Index, a.Link = run, idx, false
					}
					p.Active = append(p.Active, a)
				}
			}
		}
	}
	out := make([]templates.WorkerProcess, 0, len(order))
	for _, name := range order {
		p := byName[name]
		slices.Sort(p.Queues)
		slices.SortFunc(p.Active, func(a, b templates.ActiveTask) int { return a.Started.Compare(b.Started) })
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b templates.WorkerProcess) int {
		if a.Role != b.Role {
			return rank[b.Role] - rank[a.Role] // serve, then workers, then other applications
		}
		return strings.Compare(a.Name(), b.Name())
	})
	return out, now, nil
}

func (s *Server) workersView(ctx context.Context, readable bool) (templates.WorkersView, error) {
	var v templates.WorkersView
	procs, at, err := s.workerProcesses(ctx, readable, busyMinutesList)
	if err != nil {
		return v, err
	}
	v.Procs, v.At = procs, at
	for _, p := range procs {
		v.Capacity += p.Concurrency
	}
	return v, nil
}

// workersPage lists the live worker processes; js/workers.js keeps the list live from
// /workers/stream.
func (s *Server) workersPage(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	v, err := s.workersView(ctx, s.permits(c, restricted))
	v.Page = s.page(c, "Workers", "workers")
	v.Page.Scripts = []string{"js/workers.js"}
	if err != nil {
		status, msg := s.failure(c, err)
		v.Error = msg
		return s.render(c, status, templates.Workers(v))
	}
	return s.render(c, http.StatusOK, templates.Workers(v))
}

// parseProc reads host:pid.
func parseProc(name string) (string, int, bool) {
	i := strings.LastIndexByte(name, ':')
	if i <= 0 {
		return "", 0, false
	}
	pid, err := strconv.Atoi(name[i+1:])
	return name[:i], pid, err == nil && pid > 0
}

func (s *Server) workerView(ctx context.Context, name string, readable bool) (templates.WorkerView, error) {
	v := templates.WorkerView{Name: name}
	host, pid, ok := parseProc(name)
	if !ok {
		return v, app.Errorf(app.ENotFound, "worker %q not found: a worker is named host:pid", name)
	}
	procs, at, err := s.workerProcesses(ctx, readable, busyMinutesWorker)
	if err != nil {
		return v, err
	}
	v.At = at
	for i := range procs {
		if procs[i].Host == host && procs[i].PID == pid {
			v.Proc = &procs[i]
		}
	}
	if v.Proc != nil && readable {
		q := &live.Query{Workers: []string{name}}
		if p, err := s.recorded.Tasks(ctx, q, workerRecent, ""); err == nil {
			v.Recent = p.Tasks
		}
	}
	return v, nil
}

// workerPage is one worker process, live from /workers/stream?proc=.
func (s *Server) workerPage(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	name := strings.Clone(c.Params("proc"))
	v, err := s.workerView(ctx, name, s.permits(c, restricted))
	if err != nil {
		return s.pageError(c, err)
	}
	v.Page = s.page(c, "Worker "+name, "workers")
	v.Page.Scripts = []string{"js/workers.js"}
	return s.render(c, http.StatusOK, templates.WorkerPage(v))
}

// workersPageStream sends the live parts of the workers page (or, with ?proc=, of one
// worker's page) every second, as HTML that replaces them.
func (s *Server) workersPageStream(c *fiber.Ctx) error {
	proc := strings.Clone(c.Query("proc"))
	if proc != "" {
		if _, _, ok := parseProc(proc); !ok {
			return badQuery("proc", proc, "must name a worker as host:pid")
		}
	}
	readable := s.permits(c, restricted)
	return s.stream(c, func() (sseSource, error) {
		return &periodicSource{every: workersPageEvery, render: func(ctx context.Context) ([]byte, error) {
			return s.workersPageParts(ctx, proc, readable)
		}}, nil
	})
}

// workersPageParts renders the live parts of the workers page, or of worker proc's page.
func (s *Server) workersPageParts(ctx context.Context, proc string, readable bool) ([]byte, error) {
	var parts []templ.Component
	if proc == "" {
		v, err := s.workersView(ctx, readable)
		if err != nil {
			return nil, err
		}
		parts = []templ.Component{templates.WorkersSummaryLine(v), templates.WorkerRows(v)}
	} else {
		v, err := s.workerView(ctx, proc, readable)
		if err != nil {
			return nil, err
		}
		v.Page.Access.Path = "/workers/" + proc
		parts = []templ.Component{templates.WorkerDetail(v)}
	}
	var buf bytes.Buffer
	for _, p := range parts {
		var b bytes.Buffer
		if err := p.Render(ctx, &b); err != nil {
			return nil, err
		}
		buf.Write(oneLine(b.Bytes()))
		buf.WriteByte('\n')
	}
	return sseHTML("", "workers", bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}
