package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/live"
	"github.com/taskrace/taskrace/templates"
)

// The pages of the recorded tasks: /tasks, live, and a page per task. They are read
// (restricted) like the API they stand on.

// tasksPerView is how many rows the tasks page shows.
const tasksPerView = 50

// tasksEvery is how often, at most, a query's viewers get its rows again: under load, the
// changes of a tenth of a second come as one update.
const tasksEvery = 100 * time.Millisecond

func (s *Server) registerTaskPages() {
	s.route(fiber.MethodGet, "/tasks", restricted, s.tasksPage)
	s.route(fiber.MethodGet, "/tasks/stream", restricted, s.tasksStream)
	s.route(fiber.MethodGet, "/tasks/:queue/:id", restricted, s.taskPage)
	s.route(fiber.MethodGet, "/tasks/:queue/:id/stream", restricted, s.taskStream)
}

// tasksQuery reads the page's q, sort and cursor.
func tasksQuery(c *fiber.Ctx) (q *live.Query, text, sort, cursor string, err error) {
	text = strings.Clone(c.Query("q"))
	sort = strings.Clone(c.Query("sort", templates.SortStart))
	cursor = strings.Clone(c.Query("cursor"))
	if len(text) > 1000 {
		return nil, text, sort, cursor, newProblem(http.StatusBadRequest, "q: at most 1000 characters")
	}
	if q, err = parseTaskQuery(text); err != nil {
		return nil, text, sort, cursor, err
	}
	switch sort {
	case templates.SortStart:
		if cursor != "" && !live.ValidEventID(cursor) {
			err = badQuery("cursor", cursor, "must be the link of a previous page")
		}
	case templates.SortRuntime:
		if n, e := strconv.Atoi(cursor); cursor != "" && (e != nil || n < 0) {
			err = badQuery("cursor", cursor, "must be the link of a previous page")
		}
	default:
		err = badQuery("sort", sort, "must be start or runtime")
	}
	return q, text, sort, cursor, err
}

func badQuery(name, value, why string) error {
	msg := fmt.Sprintf("%s: %s; got %q", name, why, value)
	p := newProblem(http.StatusBadRequest, msg)
	p.Errors = []*FieldError{{Location: "query." + name, Message: msg, Value: value}}
	return p
}

// taskRows reads one page of the tasks q selects.
func (s *Server) taskRows(ctx context.Context, q *live.Query, text, sort, cursor string) (templates.TaskRows, error) {
	now := time.Now()
	var p *live.Page
	var err error
	if sort == templates.SortRuntime {
		off, _ := strconv.Atoi(cursor)
		p, err = s.recorded.Longest(ctx, q, tasksPerView, off, now)
	} else {
		p, err = s.recorded.Tasks(ctx, q, tasksPerView, cursor)
	}
	if err != nil {
		return templates.TaskRows{}, liveError(err, "tasks")
	}
	return templates.TaskRows{Tasks: p.Tasks, Total: p.Total, Counts: p.Counts, Next: p.Next, Q: text, Sort: sort, At: now.UTC()}, nil
}

func (s *Server) tasksPage(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	v := templates.TasksView{Page: s.page(c, "Tasks", "tasks")}
	v.Page.Scripts = []string{"js/tasks.js"}
	q, text, sort, cursor, err := tasksQuery(c)
	v.Q, v.Sort, v.Cursor = text, sort, cursor
	if err == nil {
		v.Rows, err = s.taskRows(ctx, q, text, sort, cursor)
	}
	if err != nil {
		status, msg := s.failure(c, err)
		v.Error = msg
		return s.render(c, status, templates.Tasks(v))
	}
	return s.render(c, http.StatusOK, templates.Tasks(v))
}

// taskParams reads a task page's queue, ID and execution.
func taskParams(c *fiber.Ctx) (queue, id string, n int, err error) {
	queue, qerr := url.PathUnescape(c.Params("queue"))
	id, ierr := url.PathUnescape(c.Params("id"))
	if qerr != nil || ierr != nil {
		return "", "", 0, newProblem(http.StatusNotFound, "no such task: the path is not validly escaped")
	}
	if e := c.Query("execution"); e != "" {
		if n, err = strconv.Atoi(e); err != nil || n < 0 {
			return "", "", 0, badQuery("execution", e, "must be 1 or more (or absent, for the latest)")
		}
	}
	return strings.Clone(queue), strings.Clone(id), n, nil
}

func (s *Server) taskView(ctx context.Context, queue, id string, n int) (templates.TaskView, error) {
	v := templates.TaskView{At: time.Now().UTC()}
	t, err := s.recorded.Task(ctx, queue, id, n)
	if err != nil {
		return v, liveError(err, fmt.Sprintf("task %s on queue %s", id, queue))
	}
	v.Task = t
	return v, nil
}

func (s *Server) taskPage(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	queue, id, n, err := taskParams(c)
	if err != nil {
		return s.pageError(c, err)
	}
	v, err := s.taskView(ctx, queue, id, n)
	if err != nil {
		return s.pageError(c, err)
	}
	v.Page = s.page(c, "Task "+id, "tasks")
	v.Page.Scripts = []string{"js/tasks.js"}
	return s.render(c, http.StatusOK, templates.TaskPage(v))
}

// taskStream sends a task's page's live part every second; the page stops following once
// the part it gets says the task has ended.
func (s *Server) taskStream(c *fiber.Ctx) error {
	queue, id, n, err := taskParams(c)
	if err != nil {
		return err
	}
	return s.stream(c, func() (sseSource, error) {
		return &periodicSource{every: time.Second, render: func(ctx context.Context) ([]byte, error) {
			v, err := s.taskView(ctx, queue, id, n)
			if err != nil {
				return nil, err
			}
			var b bytes.Buffer
			if err := templates.TaskDetail(v).Render(ctx, &b); err != nil {
				return nil, err
			}
			return sseHTML("", "task", oneLine(b.Bytes())), nil
		}}, nil
	})
}

// tasksStream sends the tasks page's live part whenever it changes, at most every
// tasksEvery: the rows of the query's first page, rendered once for all its viewers.
func (s *Server) tasksStream(c *fiber.Ctx) error {
	q, text, sort, _, err := tasksQuery(c)
	if err != nil {
		return err
	}
	return s.stream(c, func() (sseSource, error) {
		ctx, cancel := context.WithTimeout(c.UserContext(), s.apiTimeout)
		defer cancel()
		return s.taskViews.join(ctx, s, q, text, sort)
	})
}

// taskViews are the queries the tasks pages follow, one group per query and order, shared
// by all its viewers.
type taskViews struct {
	mu     sync.Mutex
	groups map[string]*taskGroup
	wg     sync.WaitGroup
}

// taskGroup follows one query: one subscription to the recorded facts, and one rendering
// of its rows per change (coalesced to tasksEvery) for every viewer.
type taskGroup struct {
	key     string
	viewers map[*taskViewer]struct{} // under taskViews.mu
	latest  []byte                   // under taskViews.mu: the last frame, for a viewer who joins
	stop    chan struct{}
}

// taskViewer is one open tasks stream: it holds the latest frame not yet sent.
type taskViewer struct {
	views   *taskViews
	g       *taskGroup
	mu      sync.Mutex
	pending []byte
	signal  chan struct{}
}

func (v *taskViewer) put(frame []byte) {
	v.mu.Lock()
	v.pending = frame // a newer frame replaces one not yet sent: a slow viewer skips, never queues
	v.mu.Unlock()
	select {
	case v.signal <- struct{}{}:
	default:
	}
}

func (v *taskViewer) next(context.Context) ([][]byte, bool, error) {
	v.mu.Lock()
	f := v.pending
	v.pending = nil
	v.mu.Unlock()
	if f == nil {
		return nil, false, nil
	}
	return [][]byte{f}, false, nil
}

func (v *taskViewer) ready() <-chan struct{}        { return v.signal }
func (v *taskViewer) due() <-chan time.Time         { return nil }
func (v *taskViewer) last(context.Context) [][]byte { return nil }
func (v *taskViewer) close()                        { v.views.leave(v) }

// join adds a viewer to the query's group, starting the group if it is the first.
func (tv *taskViews) join(ctx context.Context, s *Server, q *live.Query, text, sort string) (*taskViewer, error) {
	key := sort + "\x00" + text
	tv.mu.Lock()
	defer tv.mu.Unlock()
	if s.base.Err() != nil {
		return nil, newProblem(http.StatusServiceUnavailable, "the server is shutting down")
	}
	g := tv.groups[key]
	if g == nil {
		sub, err := s.recorded.Subscribe(ctx, q, "")
		if err != nil {
			return nil, liveError(err, "tasks")
		}
		if tv.groups == nil {
			tv.groups = map[string]*taskGroup{}
		}
		g = &taskGroup{key: key, viewers: map[*taskViewer]struct{}{}, stop: make(chan struct{})}
		tv.groups[key] = g
		tv.wg.Add(1)
		go func() {
			defer tv.wg.Done()
			tv.follow(s, g, sub, q, text, sort)
		}()
	}
	v := &taskViewer{views: tv, g: g, signal: make(chan struct{}, 1)}
	g.viewers[v] = struct{}{}
	if g.latest != nil {
		v.put(g.latest)
	}
	return v, nil
}

func (tv *taskViews) leave(v *taskViewer) {
	tv.mu.Lock()
	defer tv.mu.Unlock()
	g := v.g
	delete(g.viewers, v)
	if len(g.viewers) == 0 && tv.groups[g.key] == g {
		delete(tv.groups, g.key)
		close(g.stop)
	}
}

// follow renders the group's rows at once and then after every change, at most every
// tasksEvery, until its last viewer leaves or the server shuts down.
func (tv *taskViews) follow(s *Server, g *taskGroup, sub *live.Subscription, q *live.Query, text, sort string) {
	defer sub.Close()
	tick := time.NewTicker(tasksEvery)
	defer tick.Stop()
	dirty := true
	// A page ordered by runtime changes as running tasks run: redrawn every second anyway.
	redraw := time.NewTicker(time.Second)
	defer redraw.Stop()
	for {
		if dirty {
			if f := s.renderTaskRows(q, text, sort); f != nil {
				tv.mu.Lock()
				g.latest = f
				for v := range g.viewers {
					v.put(f)
				}
				tv.mu.Unlock()
			}
			dirty = false
		}
		select {
		case <-sub.Ready():
			ctx, cancel := context.WithTimeout(s.base, s.apiTimeout)
			evs, err := sub.Next(ctx)
			cancel()
			if errors.Is(err, live.ErrUnavailable) && s.base.Err() != nil {
				return
			}
			if len(evs) == 0 {
				continue
			}
		case <-redraw.C:
			if sort != templates.SortRuntime {
				continue
			}
		case <-g.stop:
			return
		case <-s.base.Done():
			return
		}
		// Changed: wait out the rest of the period, taking in what else comes meanwhile.
		select {
		case <-tick.C:
		case <-g.stop:
			return
		case <-s.base.Done():
			return
		}
		dirty = true
	}
}

// renderTaskRows is the frame of a query's rows now: one element a line, each replacing the
// element of its id.
func (s *Server) renderTaskRows(q *live.Query, text, sort string) []byte {
	ctx, cancel := context.WithTimeout(s.base, pageTimeout)
	defer cancel()
	rows, err := s.taskRows(ctx, q, text, sort, "")
	if err != nil {
		return nil
	}
	var buf bytes.Buffer
	for _, c := range []templ.Component{templates.TasksCounts(rows), templates.TaskRowsBody(rows), templates.TasksNext(rows)} {
		var b bytes.Buffer
		if err := c.Render(ctx, &b); err != nil {
			s.logger.Error("cannot render the tasks' rows", "err", err)
			return nil
		}
		buf.Write(oneLine(b.Bytes()))
		buf.WriteByte('\n')
	}
	return sseHTML("", "tasks", bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}
