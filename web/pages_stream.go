package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/templates"
)

// Frame names of the HTML rendering of an event in app.Event.Frame.
const (
	htmlParts = "html-parts" // the fragments, one element a line, with the rows of every page
	htmlFrame = "html"       // a window's fragments as one SSE frame
)

// Above coalesceAbove tasks, a viewer's updates are batched every coalesceEvery: a page
// of ten thousand rows cannot take ten thousand DOM updates a second.
const (
	coalesceAbove = 200
	coalesceEvery = 100 * time.Millisecond
)

// bigRun reports whether r's HTML stream is a big run's: batched (see coalesceAbove), with
// its timeline's bars sent as data the page draws them from (templates.BarData), a quarter
// of their HTML, since they are most of what the stream sends.
func bigRun(r *app.Run) bool { return r.Tasks > coalesceAbove }

// liveRuns are the projections of the runs that HTML streams follow, one per run, shared by
// all its viewers: each event is folded in once, in stream order, and rendered once from
// the state it leaves, so that every viewer gets the same bytes.
type liveRuns struct {
	mu   sync.Mutex
	runs map[string]*liveRun
	keep int // how many events' fragments a run keeps; 0 for keptFragments
}

// liveRun is one run's live projection and the fragments of its latest events.
type liveRun struct {
	viewers int // under liveRuns.mu

	mu     sync.Mutex
	live   *app.Live
	frags  map[string][]byte // by event ID: the fragments of the latest events folded in
	order  []string          // their IDs, oldest first
	record *app.Run          // the run's record when its first viewer came: its plan
	keep   int               // how many events' fragments frags keeps
}

// keptFragments is how many events' fragments a run keeps for viewers that lag behind the
// others; one further behind follows a projection of its own until it is back among them.
const keptFragments = 2048

// join returns run r's live state, counting one more viewer.
func (l *liveRuns) join(r *app.Run) *liveRun {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runs == nil {
		l.runs = map[string]*liveRun{}
	}
	lr := l.runs[r.ID]
	if lr == nil {
		keep := l.keep
		if keep <= 0 {
			keep = keptFragments
		}
		lr = &liveRun{record: r, frags: map[string][]byte{}, keep: keep}
		l.runs[r.ID] = lr
	}
	lr.viewers++
	return lr
}

// leave counts one viewer less; the last one drops the run's state.
func (l *liveRuns) leave(r *app.Run) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lr := l.runs[r.ID]; lr != nil {
		if lr.viewers--; lr.viewers <= 0 {
			delete(l.runs, r.ID)
		}
	}
}

// fragmenter renders a run's events into the HTML its pages swap in, for one viewer's
// window of the task list: the fragments of an event come from the run's shared live
// projection (see liveRuns), and the first viewer to need a window's frame renders it for
// every viewer of that window.
type fragmenter struct {
	s    *Server
	run  *app.Run
	lr   *liveRun
	page int       // the page of the task list whose rows the viewer gets; 0 for none
	prev string    // the last event this viewer was given: the one before its next
	own  *app.Live // the viewer's own projection while it lags behind the fragments kept
}

// newFragmenter follows run r for a viewer of page page of its task list; close ends it.
func (s *Server) newFragmenter(r *app.Run, page int, after string) *fragmenter {
	return &fragmenter{s: s, run: r, lr: s.live.join(r), page: page, prev: after}
}

func (f *fragmenter) close() { f.s.live.leave(f.run) }

// names are the frame names of the viewer's window.
func (f *fragmenter) names() (parts, frame string) {
	p := strconv.Itoa(f.page)
	return htmlParts + "/" + p, htmlFrame + "/" + p
}

// window keeps of an event's fragments those of the viewer's window: every fragment but
// the rows of other pages.
func (f *fragmenter) window(all []byte) []byte {
	first, last := (f.page-1)*tasksPerPage, f.page*tasksPerPage
	row, steps := []byte(`<tr id="task-`+f.run.ID+`-`), []byte(`<i hidden data-row="task-`+f.run.ID+`-`)
	var out []byte
	for line := range bytes.SplitSeq(all, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, row)
		if !ok {
			rest, ok = bytes.CutPrefix(line, steps)
		}
		if ok {
			end := bytes.IndexByte(rest, '"')
			i, err := strconv.Atoi(string(rest[:max(0, end)]))
			if err != nil || i < first || i >= last {
				continue // a row of another page
			}
		}
		out = append(out, line...)
		out = append(out, '\n')
	}
	return bytes.TrimSuffix(out, []byte("\n"))
}

// fragments renders an event's fragments, for every viewer: those kept when the run's
// shared projection took it in, or the shared projection takes it in now (with what the log
// holds before it, if the viewer's resume point is past what the projection holds). An event
// from before what is kept is rendered from the viewer's own projection, which follows the
// viewer until it is back among the events kept.
func (f *fragmenter) fragments(e *app.Event) []byte {
	lr, s := f.lr, f.s
	ctx, cancel := context.WithTimeout(s.base, pageTimeout)
	defer cancel()
	lr.mu.Lock()
	if b, ok := lr.frags[e.ID]; ok && e.ID != "" {
		lr.mu.Unlock()
		f.own = nil
		return b
	}
	if lr.live != nil && e.ID != "" && lr.live.LastID() != "" && app.CompareIDs(e.ID, lr.live.LastID()) <= 0 {
		lr.mu.Unlock()
		return f.behind(ctx, e)
	}
	defer lr.mu.Unlock()
	if lr.live == nil {
		lr.live = app.NewLive(lr.record)
	}
	if lr.live.LastID() != f.prev || f.prev == "" {
		if err := catchUp(ctx, s, lr.live, e); err != nil {
			s.logger.Warn("HTML stream: cannot read the run's events", "run", lr.record.ID, "err", err)
		}
	}
	b := render(ctx, s, lr.live, lr.live.Add(e))
	if e.ID != "" {
		lr.frags[e.ID] = b
		lr.order = append(lr.order, e.ID)
		if len(lr.order) > lr.keep {
			delete(lr.frags, lr.order[0])
			lr.order = lr.order[1:]
		}
	}
	return b
}

// catchUp folds into live the events of the log between the latest it holds and e: those
// no viewer has rendered, which came before a viewer's resume point.
func catchUp(ctx context.Context, s *Server, live *app.Live, e *app.Event) error {
	if e.ID == "" {
		return nil
	}
	for {
		evs, err := s.core.Log.Read(ctx, e.RunID, live.LastID(), 1000)
		if err != nil {
			return err
		}
		for _, x := range evs {
			if app.CompareIDs(x.ID, e.ID) >= 0 {
				return nil
			}
			live.Add(x)
		}
		if len(evs) < 1000 {
			return nil
		}
	}
}

// behind renders e for a viewer behind the fragments kept, from its own projection: built
// from the log up to e the first time, then taking the viewer's events in as they come.
func (f *fragmenter) behind(ctx context.Context, e *app.Event) []byte {
	if f.own == nil || f.own.LastID() != f.prev {
		f.own = app.NewLive(f.lr.record)
		if err := catchUp(ctx, f.s, f.own, e); err != nil {
			f.s.logger.Warn("HTML stream: cannot read the run's events", "run", f.run.ID, "err", err)
		}
	}
	return render(ctx, f.s, f.own, f.own.Add(e))
}

// render is the HTML of what c changed in live, one element a line.
func render(ctx context.Context, s *Server, live *app.Live, c app.Change) []byte {
	if len(c.Tasks) == 0 && !c.Ended {
		return nil
	}
	p := live.Current()
	id := p.Run.ID
	var buf bytes.Buffer
	add := func(c templ.Component) {
		var b bytes.Buffer
		if err := c.Render(ctx, &b); err != nil {
			s.logger.Error("cannot render a fragment", "run", id, "err", err)
			return
		}
		// One element a line: the SSE frame sends each line as a data: line, and a batch
		// tells fragments apart by line.
		buf.Write(oneLine(b.Bytes()))
		buf.WriteByte('\n')
	}
	queue := ""
	if p.Run.Mode == app.Distributed {
		queue = s.core.Config.Queue
	}
	bar := func(a *app.Attempt, scale float64) templ.Component {
		if bigRun(p.Run) {
			return templates.BarData(id, a, scale)
		}
		return svgFragment(templates.BarEl(id, a, scale))
	}
	if c.Ended {
		rec, err := s.core.Runs.Get(ctx, id)
		pinned := err == nil && rec.Pinned
		if p.Run.Status == app.StatusFinished {
			b, err := s.core.Runs.Baseline(ctx, p.Run)
			if err != nil {
				s.logger.Warn("HTML stream: cannot look up the run's baseline", "run", id, "err", err)
			}
			live.CompareWith(b)
		}
		p.Run.Pinned = pinned
		add(templates.TimelineScale(p))
		add(templates.StatusBadge(p.Run))
		add(templates.ElapsedClock(p))
		add(templates.PageTitle(p.Run))
		add(templates.ShareLine(p.Run))
		add(templates.Progress(p.Run, p.Summary))
		add(templates.Actions(p.Run, pinned))
		add(templates.Summary(p))
		add(templates.ResultRow(templates.Result{Run: p.Run, Sum: p.Summary, Baseline: p.Compared}))
		// The attempts the end stopped, and those drawn wider than they lasted: the axis they
		// were drawn on has grown since.
		scale := templates.AxisExtent(p.Summary)
		for _, t := range p.Tasks {
			for _, a := range t.History {
				if a.Worker != nil && (a.Outcome == app.AttemptCanceled || templates.Widened(a, scale)) {
					add(bar(a, scale))
				}
			}
		}
		// The rows the end changed, and every other row's steps for the replay; each viewer
		// gets those of its page.
		changed := make(map[int]bool, len(c.Tasks))
		for _, t := range c.Tasks {
			changed[t.Index] = true
		}
		for _, t := range p.Tasks {
			if changed[t.Index] {
				add(templates.TaskRow(p, t, queue))
			} else {
				add(templates.StepsOf(p, t))
			}
		}
	} else {
		scale := templates.AxisExtent(p.Summary)
		add(templates.TimelineScale(p))
		if c.Lane != nil {
			before := ""
			if c.Next != nil {
				before = templates.LaneID(id, *c.Next)
			}
			add(templates.LaneEl(p, *c.Lane, scale, nil, before))
		}
		for _, t := range c.Tasks {
			for _, a := range t.History {
				if a.Worker != nil {
					add(bar(a, scale))
				}
			}
			add(templates.TaskRow(p, t, queue))
		}
		if templates.ProgressLine(p.Run, c.Before) != templates.ProgressLine(p.Run, p.Summary) {
			add(templates.Progress(p.Run, p.Summary))
		}
	}
	if p.Run.Mode == app.Distributed && c.Procs {
		add(templates.ProcTallies(id, live.Processes()))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// svgFragment wraps SVG elements so they parse in the SVG namespace; the page unwraps them.
func svgFragment(c templ.Component) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		if _, err := w.Write([]byte(`<svg data-svg-fragment>`)); err != nil {
			return err
		}
		if err := c.Render(ctx, w); err != nil {
			return err
		}
		_, err := w.Write([]byte(`</svg>`))
		return err
	})
}

// frame is e as one SSE frame of HTML for the viewer's window: its ID, its type (end for
// the terminal one) and its fragments. nil when e has no fragment.
func (f *fragmenter) frame(e *app.Event) []byte {
	parts := f.windowParts(e)
	if len(parts) == 0 {
		return nil
	}
	_, frameName := f.names()
	return e.Frame(frameName, func(e *app.Event) []byte {
		name := e.Type
		if e.Terminal() {
			name = "end"
		}
		return sseHTML(e.ID, name, parts)
	})
}

// windowParts renders e's fragments for the viewer's window, one element a line, as frame
// sends them and a batch gathers them. Events the page already shows when rendered
// (run.created, tasks.queued, task.queued) have none. (Frame is not reentrant: each is taken in turn.)
func (f *fragmenter) windowParts(e *app.Event) []byte {
	all := e.Frame(htmlParts, f.fragments)
	if e.ID != "" {
		f.prev = e.ID
	}
	if len(all) == 0 {
		return nil
	}
	partsName, _ := f.names()
	return e.Frame(partsName, func(*app.Event) []byte { return f.window(all) })
}

// sseHTML is an SSE frame whose data is lines of HTML.
func sseHTML(id, event string, lines []byte) []byte {
	b := make([]byte, 0, len(lines)+len(id)+len(event)+64)
	if id != "" { // an event that is not in the log has no ID
		b = append(b, "id: "...)
		b = append(b, id...)
		b = append(b, '\n')
	}
	if event != "" {
		b = append(b, "event: "...)
		b = append(b, event...)
		b = append(b, '\n')
	}
	for line := range bytes.SplitSeq(lines, []byte("\n")) {
		b = append(b, "data: "...)
		b = append(b, line...)
		b = append(b, '\n')
	}
	return append(b, '\n')
}

// batch gathers a viewer's fragments between two flushes; a later fragment of an element
// replaces an earlier one, so a task that started and ended within a batch costs one update.
type batch struct {
	lines [][]byte
	byID  map[string]int
	last  string
}

func (b *batch) add(id string, parts []byte) {
	b.last = id
	for line := range bytes.SplitSeq(parts, []byte("\n")) {
		key := elementID(line)
		if key == "" {
			b.lines = append(b.lines, line)
			continue
		}
		if i, ok := b.byID[key]; ok {
			b.lines[i] = nil
		}
		if b.byID == nil {
			b.byID = map[string]int{}
		}
		b.byID[key] = len(b.lines)
		b.lines = append(b.lines, line)
	}
}

// frame is the batch as one SSE frame, and empties it.
func (b *batch) frame() []byte {
	var kept [][]byte
	for _, l := range b.lines {
		if l != nil {
			kept = append(kept, l)
		}
	}
	out := sseHTML(b.last, "", bytes.Join(kept, []byte("\n")))
	b.lines, b.byID = b.lines[:0], nil
	return out
}

// elementID is the id of the first element of a fragment line ("" for none), or, for an
// SVG wrapper, of the element it wraps.
func elementID(line []byte) string {
	i := bytes.Index(line, []byte(` id="`))
	if i < 0 {
		return ""
	}
	rest := line[i+5:]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// htmlStream streams a run's events as HTML fragments for its pages: the same contract as
// the JSON stream (resume after Last-Event-ID or ?after=, ping, 204 once ended), with each
// event rendered once for every viewer.
func (s *Server) htmlStream(c *fiber.Ctx) error {
	page, err := streamPage(c)
	if err != nil {
		return err
	}
	return s.stream(c, func() (sseSource, error) {
		r, after, ended, err := s.resume(c)
		if err != nil || ended {
			return nil, err
		}
		return s.runStream(r, after, s.newFragmenter(r, page, after)), nil
	})
}

// streamPage reads ?page=, the page of the task list whose rows a stream sends (0: none;
// absent: the first).
func streamPage(c *fiber.Ctx) (int, error) {
	q := c.Query("page")
	if q == "" {
		return 1, nil
	}
	page, err := strconv.Atoi(q)
	if err != nil || page < 0 {
		msg := fmt.Sprintf("page: must be a page of the task list, 1 or more (0 for no rows); got %q", q)
		p := newProblem(http.StatusBadRequest, msg)
		p.Errors = []*FieldError{{Location: "query.page", Message: msg, Value: strings.Clone(q)}}
		return 0, p
	}
	return page, nil
}

// ping is a keep-alive frame that carries the server's time, in milliseconds since the run
// was created, for the page's clock: the stream has sent every event it had until then.
func (f *fragmenter) ping() []byte {
	at := templates.F(float64(time.Since(f.run.CreatedAt.Time).Microseconds()) / 1000)
	return []byte("event: ping\ndata: <i hidden data-sync=\"" + f.run.ID + "\" data-at-ms=\"" + at + "\"></i>\n\n")
}
