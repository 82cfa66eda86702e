package web

import (
	"bytes"
	"context"
	"io"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/templates"
)

// Frame names of the HTML rendering of an event in app.Event.Frame.
const (
	htmlParts = "html-parts" // the fragments, one element a line
	htmlFrame = "html"       // the same as one SSE frame
)

// Above coalesceAbove tasks, a viewer's updates are batched every coalesceEvery: a page
// of ten thousand rows cannot take ten thousand DOM updates a second.
const (
	coalesceAbove = 200
	coalesceEvery = 100 * time.Millisecond
)

// fragmenter renders a run's events into the HTML its pages swap in. It depends only on
// the run's immutable fields, so any viewer's fragmenter renders an event to the same bytes,
// and the first one to render it renders it for every viewer.
type fragmenter struct {
	s   *Server
	run *app.Run
}

// parts renders e's fragments, one element a line. Events the page already shows when
// rendered (run.created, task.queued) have none.
func (f *fragmenter) parts(e *app.Event) []byte {
	r := f.run
	var buf bytes.Buffer
	add := func(c templ.Component) {
		var b bytes.Buffer
		if err := c.Render(context.Background(), &b); err != nil {
			f.s.logger.Error("cannot render a fragment", "run", r.ID, "event", e.Type, "err", err)
			return
		}
		// One element a line: the SSE frame sends each line as a data: line, and a batch
		// tells fragments apart by line.
		buf.Write(bytes.ReplaceAll(bytes.ReplaceAll(b.Bytes(), []byte("\r"), nil), []byte("\n"), []byte(" ")))
		buf.WriteByte('\n')
	}
	switch {
	case e.Terminal():
		f.terminal(e, add)
	case e.Index == nil || e.Worker == nil:
	case e.Type == app.TaskStarted:
		w := e.Worker.String()
		add(templates.LaneEl(r, w, templates.ScaleOf(r), nil))
		add(svgFragment(templates.BarEl(r.ID, w, startedBar(r, e))))
		add(templates.TaskRow(r, &app.Task{ID: e.TaskID, Index: *e.Index, State: app.TaskStateRunning,
			Worker: e.Worker, Attempts: e.Attempt, StartedAt: e.At}, f.queue()))
	case e.Type == app.TaskFinished || e.Type == app.TaskFailed:
		w := e.Worker.String()
		b := endedBar(r, e)
		add(templates.LaneEl(r, w, templates.ScaleOf(r), nil))
		add(svgFragment(templates.BarEl(r.ID, w, b)))
		started := app.Time{Time: e.At.Add(-time.Duration(b.DurMS * float64(time.Millisecond)))}
		add(templates.TaskRow(r, &app.Task{ID: e.TaskID, Index: *e.Index, State: b.State, Worker: e.Worker,
			Attempts: e.Attempt, StartedAt: started, EndedAt: e.At, DurationMS: e.DurationMS, HTTPStatus: e.Status, Error: e.Error}, f.queue()))
		if b.State != app.TaskStateRetrying {
			add(templates.Bump(r.ID, b.State == app.TaskStateFailed))
		}
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// terminal renders what changes when the run ends, from its stored record.
func (f *fragmenter) terminal(e *app.Event, add func(templ.Component)) {
	ctx, cancel := context.WithTimeout(f.s.base, pageTimeout)
	defer cancel()
	r, err := f.s.core.Runs.Get(ctx, f.run.ID)
	if err != nil {
		// The record is gone or unreachable: end the page from the event alone.
		cp := *f.run
		r = &cp
		r.Status = app.StatusOf(e.Type)
		r.WallMS, r.Efficiency, r.Reason = e.WallMS, e.Efficiency, e.Reason
	}
	res, baseline := f.s.resultRow(ctx, r)
	add(templates.StatusBadge(r))
	add(templates.ElapsedClock(r))
	add(templates.TimelineScale(r))
	add(templates.Progress(r))
	add(templates.Actions(r, r.Pinned))
	add(templates.Summary(r, baseline))
	add(templates.ResultRow(res))
	if r.Mode == app.Distributed {
		if evs, err := f.s.core.Log.ReadAll(ctx, r.ID); err == nil {
			add(templates.ProcTallies(r.ID, procTallies(app.Project(r, evs, time.Now(), nil).Tasks)))
		}
	}
}

// queue is the asynq queue of the run's tasks, for their links to the monitor; none for a
// run that is not distributed.
func (f *fragmenter) queue() string {
	if f.run.Mode != app.Distributed {
		return ""
	}
	return f.s.core.Config.Queue
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

// frame is e as one SSE frame of HTML: its ID, its type (end for the terminal one) and its
// fragments. nil when e has no fragment.
func (f *fragmenter) frame(e *app.Event) []byte {
	parts := e.Frame(htmlParts, f.parts)
	if len(parts) == 0 {
		return nil
	}
	return e.Frame(htmlFrame, func(e *app.Event) []byte {
		name := e.Type
		if e.Terminal() {
			name = "end"
		}
		return sseHTML(e.ID, name, parts)
	})
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
	return s.stream(c, func() (sseSource, error) {
		r, after, ended, err := s.resume(c)
		if err != nil || ended {
			return nil, err
		}
		return s.runStream(r, after, true), nil
	})
}
