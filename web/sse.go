package web

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Bounds of the event streams, when Config leaves them unset.
const (
	DefaultStreamWriteTimeout = 10 * time.Second // a viewer that accepts nothing for this long is dropped
	DefaultMaxViewers         = 10_000           // open event streams per process
	// streamSendBuffer bounds what the kernel holds for a viewer who does not read. Left
	// to itself, Linux grows a socket's send buffer to 4 MB, enough to swallow a whole
	// 3,000-task run: thousands of stalled viewers would pin gigabytes, and never be seen
	// as stalled. 64 KB (Linux doubles it) still carries a replay at over 1 MB/s at 100 ms.
	streamSendBuffer = 64 << 10
)

// sseHeader starts every event stream. The connection is taken over from fasthttp, so the
// response head is written here, and the connection closes when the stream ends. The
// retry: field tells EventSource how soon to reconnect if the stream breaks.
const sseHeader = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n" +
	"retry: 2000\n\n"

var pingFrame = []byte(": ping\n\n")

// sseBuffers gathers a stream's frames into one write to its connection.
var sseBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

// sseSource is what one event stream sends: a run's events as JSON or HTML, the workers.
type sseSource interface {
	// next returns the frames ready to send, and whether the stream ends after them. It
	// never waits but for a short Redis call, and holds no connection once it returns.
	next(ctx context.Context) (frames [][]byte, end bool, err error)
	// ready is signalled when next may have more; due fires when next must be called
	// back at a time of the source's choosing. Either may be nil.
	ready() <-chan struct{}
	due() <-chan time.Time
	// last is what to send when the server shuts down, before the stream is cut.
	last(ctx context.Context) [][]byte
	close()
}

// viewerCount counts the open event streams of a process, against MAX_VIEWERS.
type viewerCount struct {
	open atomic.Int64
	max  int64
}

// stream answers an event-stream request: 503 past MAX_VIEWERS; otherwise open says what
// to send (nil when it has answered itself, as with the 204 for a run that has ended), and
// the connection is taken over, to be written by the one SSE writer.
func (s *Server) stream(c *fiber.Ctx, open func() (sseSource, error)) error {
	if n := s.viewers.open.Add(1); n > s.viewers.max {
		s.viewers.open.Add(-1)
		c.Set(fiber.HeaderRetryAfter, "10")
		return newProblem(http.StatusServiceUnavailable, fmt.Sprintf(
			"this server already serves its limit of %d event streams (MAX_VIEWERS); try again in a few seconds", s.viewers.max))
	}
	src, err := open()
	if err != nil || src == nil {
		s.viewers.open.Add(-1)
		return err
	}
	// Taking the connection over, rather than giving fasthttp a body stream writer, is what
	// lets every write carry its own deadline; it also saves the stream writer's second
	// goroutine and pipe per viewer.
	if tc, ok := c.Context().Conn().(interface{ SetWriteBuffer(int) error }); ok {
		tc.SetWriteBuffer(streamSendBuffer)
	}
	c.Context().HijackSetNoResponse(true)
	c.Context().Hijack(func(conn net.Conn) {
		defer s.viewers.open.Add(-1)
		defer src.close()
		s.writeStream(&sseConn{conn: conn, timeout: s.cfg.StreamWriteTimeout}, src)
	})
	return nil
}

// writeStream is the one SSE writer: it sends src's frames as they come, a ping every
// pingEvery, and returns on the stream's end, on any write error (the viewer left, or
// accepted nothing for the write timeout), or on shutdown.
func (s *Server) writeStream(conn *sseConn, src sseSource) {
	defer func() {
		// This runs on its own goroutine, out of reach of the recover middleware.
		if p := recover(); p != nil {
			s.logger.Error("panic in an event stream", "panic", p, "stack", stack())
		}
	}()
	send := func(frames ...[]byte) bool {
		// A buffer only while writing: a viewer waiting for events holds none.
		w := sseBuffers.Get().(*bufio.Writer)
		w.Reset(conn)
		for _, f := range frames {
			if _, err := w.Write(f); err != nil {
				break
			}
		}
		err := w.Flush()
		w.Reset(nil)
		sseBuffers.Put(w)
		if err == nil {
			return true
		}
		if conn.stalled {
			s.core.Metrics.ViewersDropped.WithLabelValues("stalled").Inc()
		}
		return false
	}
	shutdown := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		send(src.last(ctx)...)
	}
	if !send([]byte(sseHeader)) {
		return
	}
	ping := time.NewTicker(s.pingEvery)
	defer ping.Stop()
	for {
		frames, end, err := src.next(s.base)
		if len(frames) > 0 && !send(frames...) {
			return
		}
		if end {
			return
		}
		if err != nil {
			if s.base.Err() != nil {
				shutdown()
			}
			return
		}
		select {
		case <-src.ready():
		case <-src.due():
		case <-ping.C:
			frame := pingFrame
			if p, ok := src.(interface{ ping() []byte }); ok {
				frame = p.ping() // the HTML stream's carries the server's time
			}
			if !send(frame) {
				return
			}
		case <-s.base.Done():
			shutdown()
			return
		}
	}
}

// sseConn is a connection taken over for an event stream. Each write to it carries the
// write timeout, renewed as long as the viewer takes bytes: one that accepts nothing for
// that long is cut (and resumes with Last-Event-ID when it comes back).
type sseConn struct {
	conn    net.Conn
	timeout time.Duration
	stalled bool // the last write failed on its deadline
}

func (c *sseConn) Write(p []byte) (int, error) {
	n := 0
	for {
		if err := c.conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return n, err
		}
		m, err := c.conn.Write(p[n:])
		n += m
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if m == 0 {
			c.stalled = true
			return n, err
		}
		// Some bytes went: a slow viewer, not a stalled one. Give it another period.
	}
}

// periodicSource sends what render makes now, then every period; a render that fails sends
// a comment, and the next period tries again.
type periodicSource struct {
	every  time.Duration
	render func(ctx context.Context) ([]byte, error)
	at     time.Time
	timer  *time.Timer
}

func (p *periodicSource) next(ctx context.Context) ([][]byte, bool, error) {
	now := time.Now()
	if now.Before(p.at) {
		return nil, false, nil
	}
	p.at = now.Add(p.every)
	if p.timer == nil {
		p.timer = time.NewTimer(p.every)
	} else {
		p.timer.Reset(p.every)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	frame, err := p.render(ctx)
	if err != nil {
		return [][]byte{[]byte(": redis unreachable\n\n")}, false, nil
	}
	return [][]byte{frame}, false, nil
}

func (p *periodicSource) ready() <-chan struct{} { return nil }
func (p *periodicSource) due() <-chan time.Time {
	if p.timer == nil {
		return nil
	}
	return p.timer.C
}
func (p *periodicSource) last(context.Context) [][]byte { return nil }
func (p *periodicSource) close() {
	if p.timer != nil {
		p.timer.Stop()
	}
}
