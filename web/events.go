package web

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
)

// sseFrame names the SSE rendering of an event in app.Event.Frame. Every viewer of a run
// shares the events the feed fans out, so each is rendered once for all of them.
const sseFrame = "sse-json"

// renderSSE is an event as one SSE frame: its stream entry ID, its type, its JSON.
func renderSSE(e *app.Event) []byte {
	data := e.JSON()
	b := make([]byte, 0, len(data)+len(e.ID)+len(e.Type)+24)
	b = append(b, "id: "...)
	b = append(b, e.ID...)
	b = append(b, "\nevent: "...)
	b = append(b, e.Type...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// events streams a run's events as server-sent events. It is a plain Fiber handler: huma's
// SSE support does not flush on Fiber.
func (s *Server) events(c *fiber.Ctx) error {
	r, after, ended, err := s.resume(c)
	if err != nil || ended {
		return err
	}
	runID := r.ID
	// Take the connection over (see htmlStream): half the memory per viewer of a body
	// stream writer, which adds a goroutine and a pipe.
	c.Context().HijackSetNoResponse(true)
	c.Context().Hijack(func(conn net.Conn) {
		w := bufio.NewWriterSize(conn, 4096)
		if _, err := w.WriteString(sseHTMLHeader); err != nil {
			return
		}
		s.stream(w, runID, after)
	})
	return nil
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

// stream writes the run's events after `after` to w until the terminal event, a write
// error (the client left), or shutdown. A goroutine follows the run through the feed; it
// ends with the stream.
func (s *Server) stream(w *bufio.Writer, runID, after string) {
	defer func() {
		// This runs on its own goroutine, out of reach of the recover middleware.
		if p := recover(); p != nil {
			s.logger.Error("panic in an event stream", "run", runID, "panic", p, "stack", stack())
		}
	}()
	ctx, cancel := context.WithCancel(s.base)
	evs := make(chan *app.Event, 16)
	go func() {
		defer close(evs)
		err := s.core.Feed.Watch(ctx, runID, after, func(e *app.Event) error {
			select {
			case evs <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("event stream ended before its run", "run", runID, "err", err)
		}
	}()
	defer func() {
		cancel()
		for range evs { // let the watcher finish
		}
	}()

	last := after // the ID of the last event written
	ping := time.NewTicker(s.pingEvery)
	defer ping.Stop()
	// Send the headers now, with how soon EventSource should reconnect if the stream breaks.
	if _, err := w.WriteString("retry: 2000\n\n"); err != nil || w.Flush() != nil {
		return
	}
	for {
		select {
		case e, ok := <-evs:
			if !ok {
				return
			}
			if _, err := w.Write(e.Frame(sseFrame, renderSSE)); err != nil {
				return
			}
			if err := w.Flush(); err != nil {
				return
			}
			last = e.ID
			if e.Terminal() {
				return
			}
		case <-ping.C:
			if _, err := w.WriteString(": ping\n\n"); err != nil {
				return
			}
			if err := w.Flush(); err != nil {
				return
			}
		case <-s.base.Done():
			s.flushLog(w, runID, last)
			return
		}
	}
}

// flushLog writes what the run's log holds after the event last, up to its terminal event,
// before a stream ends on shutdown: the process interrupts its local runs first, so their
// viewers get run.interrupted rather than a stream cut before it.
func (s *Server) flushLog(w *bufio.Writer, runID, last string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	evs, err := s.core.Log.Read(ctx, runID, last, 1000)
	if err != nil {
		return
	}
	for _, e := range evs {
		if _, err := w.Write(e.Frame(sseFrame, renderSSE)); err != nil {
			return
		}
		if e.Terminal() {
			break
		}
	}
	w.Flush()
}
