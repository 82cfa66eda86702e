package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
)

// sseFrame names the SSE rendering of an event in app.Event.Frame. Every viewer of a run
// shares the events the feed fans out, so each is rendered once for all of them.
const sseFrame = "sse-json"

// renderSSE is an event as one SSE frame: its stream entry ID, its type, its JSON. An event
// that is not in the log (the end of a run whose data vanished) has no ID.
func renderSSE(e *app.Event) []byte {
	data := e.JSON()
	b := make([]byte, 0, len(data)+len(e.ID)+len(e.Type)+24)
	if e.ID != "" {
		b = append(b, "id: "...)
		b = append(b, e.ID...)
		b = append(b, '\n')
	}
	b = append(b, "event: "...)
	b = append(b, e.Type...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// events streams a run's events as server-sent events. It is a plain Fiber handler: huma's
// SSE support does not flush on Fiber.
func (s *Server) events(c *fiber.Ctx) error {
	return s.stream(c, func() (sseSource, error) {
		r, after, ended, err := s.resume(c)
		if err != nil || ended {
			return nil, err
		}
		return s.runStream(r, after, nil), nil
	})
}

// resume reads what a stream request asks for: the run (404 if unknown) and the event ID to
// resume after, from Last-Event-ID or ?after= (400 if it is not one). When the run has
// ended and nothing follows that ID, it answers 204, which makes EventSource stop
// reconnecting, and reports ended. It copies what it keeps: c is recycled once the handler
// returns, and the stream outlives it.
func (s *Server) resume(c *fiber.Ctx) (r *app.Run, after string, ended bool, err error) {
	runID := strings.Clone(c.Params("id"))
	after, where := strings.Clone(c.Get("Last-Event-ID")), "header.Last-Event-ID"
	if after == "" {
		after, where = strings.Clone(c.Query("after")), "query.after"
	}
	if after != "" && !app.ValidEventID(after) {
		name := where[strings.IndexByte(where, '.')+1:]
		msg := fmt.Sprintf("%s: must be an event ID like 1700000000000-0 (a stream entry ID); got %q", name, after)
		p := newProblem(http.StatusBadRequest, msg)
		p.Errors = []*FieldError{{Location: where, Message: msg, Value: after}}
		return nil, "", false, p
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.apiTimeout)
	defer cancel()
	r, err = s.core.Runs.Get(ctx, runID)
	if err != nil {
		return nil, "", false, err
	}
	if r.Ended() && after != "" {
		more, err := s.core.Log.Read(ctx, runID, after, 1)
		if err != nil {
			return nil, "", false, err
		}
		if len(more) == 0 {
			return r, after, true, c.SendStatus(fiber.StatusNoContent)
		}
	}
	return r, after, false, nil
}

// runSource sends a run's events after a resume position, up to its terminal event: as
// JSON frames, or as the HTML fragments its pages swap in.
type runSource struct {
	s      *Server
	run    *app.Run
	sub    *app.Subscription // made by the first next, on the stream's own goroutine
	html   *fragmenter       // nil for the JSON stream
	lastID string            // the last event sent or batched
	out    [][]byte

	caughtUp bool // the HTML stream has sent the page the server's time after its catch-up

	// The HTML stream of a big run batches its fragments (see coalesceAbove).
	coalesce bool
	pending  batch
	flushAt  time.Time
	timer    *time.Timer
}

// runStream is the source of a run's stream after the event ID after, as the HTML fragments
// html renders when it is set.
func (s *Server) runStream(r *app.Run, after string, html *fragmenter) *runSource {
	src := &runSource{s: s, run: r, lastID: after, html: html}
	if html != nil {
		src.coalesce = bigRun(r)
	}
	return src
}

func (r *runSource) next(ctx context.Context) ([][]byte, bool, error) {
	if r.sub == nil {
		r.sub = r.s.core.Feed.Subscribe(r.run.ID, r.lastID)
	}
	rctx, cancel := context.WithTimeout(ctx, r.s.apiTimeout)
	evs, err := r.sub.Next(rctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			r.s.logger.Warn("event stream ended before its run", "run", r.run.ID, "err", err)
		}
		return nil, false, err
	}
	// The frames returned last time are sent: let them go (a catch-up's frames are this
	// viewer's own), and reuse the slice.
	clear(r.out)
	out, end := r.out[:0], false
	for _, e := range evs {
		if e.ID != "" {
			r.lastID = e.ID
		}
		end = e.Terminal()
		out = r.add(out, e)
	}
	if len(r.pending.lines) > 0 && !time.Now().Before(r.flushAt) {
		out = append(out, r.pending.frame())
	}
	if r.html != nil && !r.caughtUp && !end {
		// The first call catches up from the log: the page learns the server's time once it
		// has what the log held, and only then lets its clock run (see static/js/live.js).
		r.caughtUp = true
		out = append(out, r.html.ping())
	}
	r.out = out
	return out, end, nil
}

// ping is the source's keep-alive frame: for the HTML stream, one with the server's time.
func (r *runSource) ping() []byte {
	if r.html != nil {
		return r.html.ping()
	}
	return pingFrame
}

// add appends e's frame to out, or batches its fragments.
func (r *runSource) add(out [][]byte, e *app.Event) [][]byte {
	if r.html == nil {
		return append(out, e.Frame(sseFrame, renderSSE))
	}
	fr := r.html.frame(e)
	switch {
	case fr == nil:
	case e.Terminal():
		if len(r.pending.lines) > 0 {
			out = append(out, r.pending.frame())
		}
		out = append(out, fr)
	case !r.coalesce:
		out = append(out, fr)
	default:
		if len(r.pending.lines) == 0 {
			r.flushAt = time.Now().Add(coalesceEvery)
			if r.timer == nil {
				r.timer = time.NewTimer(coalesceEvery)
			} else {
				r.timer.Reset(coalesceEvery)
			}
		}
		r.pending.add(e.ID, r.html.windowParts(e))
	}
	return out
}

func (r *runSource) ready() <-chan struct{} {
	if r.sub == nil {
		return nil
	}
	return r.sub.Ready()
}

func (r *runSource) due() <-chan time.Time {
	if len(r.pending.lines) == 0 {
		return nil
	}
	return r.timer.C
}

// last is what the log holds after the last event sent, up to the run's end: on shutdown
// the process interrupts its local runs first, so their viewers get run.interrupted rather
// than a stream cut before it.
func (r *runSource) last(ctx context.Context) [][]byte {
	var out [][]byte
	if len(r.pending.lines) > 0 {
		out = append(out, r.pending.frame())
	}
	evs, err := r.s.core.Log.Read(ctx, r.run.ID, r.lastID, 1000)
	if err != nil {
		return out
	}
	for _, e := range evs {
		if r.html == nil {
			out = append(out, e.Frame(sseFrame, renderSSE))
		} else if fr := r.html.frame(e); fr != nil {
			out = append(out, fr)
		}
		if e.Terminal() {
			break
		}
	}
	return out
}

func (r *runSource) close() {
	if r.sub != nil {
		r.sub.Close()
	}
	if r.html != nil {
		r.html.close()
	}
	if r.timer != nil {
		r.timer.Stop()
	}
}
