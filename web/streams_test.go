package web

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/taskrace/taskrace/app"
)

// stalledViewer is a client that asks for an event stream and never reads it, with a small
// receive buffer, so the server's writes soon block.
type stalledViewer struct {
	conn net.Conn
}

func dialStalled(t *testing.T, addr, path string, header ...string) *stalledViewer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n"
	for i := 0; i+1 < len(header); i += 2 {
		req += header[i] + ": " + header[i+1] + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return &stalledViewer{conn: conn}
}

// received is what the server managed to send before it cut the stream, as whole frames
// (the last may have been cut mid-way). It reads until the connection ends or goes quiet:
// a connection cut on a stalled viewer may never say so, the kernel giving up on it.
func (v *stalledViewer) received(t *testing.T) []sseEvent {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		v.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := v.conn.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	_, body, ok := bytes.Cut(got, []byte("\r\n\r\n"))
	if !ok || !bytes.HasPrefix(got, []byte("HTTP/1.1 200 ")) {
		t.Fatalf("the stalled viewer's response: %.200q", got)
	}
	return parseFrames(body[:bytes.LastIndex(body, []byte("\n\n"))+1])
}

// parseFrames parses whole SSE frames, skipping comments and the retry: preamble.
func parseFrames(b []byte) []sseEvent {
	var evs []sseEvent
	for frame := range bytes.SplitSeq(b, []byte("\n\n")) {
		var e sseEvent
		var data []string
		for line := range strings.SplitSeq(string(frame), "\n") {
			switch {
			case strings.HasPrefix(line, "id: "):
				e.ID = line[len("id: "):]
			case strings.HasPrefix(line, "event: "):
				e.Type = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = append(data, line[len("data: "):])
			}
		}
		if len(data) > 0 {
			e.Data = strings.Join(data, "\n")
			evs = append(evs, e)
		}
	}
	return evs
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

// TestStalledViewersAreDropped opens many viewers that never read (half on the JSON stream,
// half on the HTML one) and a few that do, on a 3,000-task run: the readers get every
// event to the end, while the server drops each stalled viewer once it has accepted nothing
// for the write timeout; none of them holds a Redis connection meanwhile, so the API keeps
// answering. A dropped viewer that resumes with Last-Event-ID misses nothing.
func TestStalledViewersAreDropped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		stalled, tasks int
		opts           []option
	}{
		{"redis-server", 150, 3000, nil},
		// Enough to exhaust the embedded Redis's pool if each held a connection.
		{"embedded", 400, 1000, []option{withEmbeddedRedis()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const timeout = 2 * time.Second
			h := start(t, append(tc.opts, withWebConfig(func(c *Config) { c.StreamWriteTimeout = timeout }))...)
			stalledDrops := h.core.Metrics.ViewersDropped.WithLabelValues("stalled")
			before := counter(stalledDrops)
			tasks := tc.tasks
			r := h.launch(map[string]any{"mode": "concurrent", "tasks": tasks, "delay_ms": 50, "parallelism": 50})
			launched := time.Now()
			addr := strings.TrimPrefix(h.base, "http://")

			stalled := make([]*stalledViewer, tc.stalled)
			for i := range stalled {
				path := "/api/runs/" + r.ID + "/events"
				if i%2 == 1 {
					path = "/runs/" + r.ID + "/stream"
				}
				stalled[i] = dialStalled(t, addr, path)
			}
			// The readers: three on the JSON stream, one on the HTML stream.
			var wg sync.WaitGroup
			bodies := make([][]byte, 4)
			errs := make([]error, 4)
			ended := make([]time.Time, 4)
			for i := range bodies {
				path := "/api/runs/" + r.ID + "/events"
				if i == 3 {
					path = "/runs/" + r.ID + "/stream"
				}
				// A deadline for a loaded machine: the run takes 3 s on an idle one.
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "GET", h.base+path, nil)
				res, err := http.DefaultClient.Do(req)
				if err != nil || res.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %v %v", path, res, err)
				}
				defer res.Body.Close()
				wg.Go(func() {
					bodies[i], errs[i] = io.ReadAll(res.Body)
					ended[i] = time.Now()
				})
			}
			// While the stalled viewers are held, the API answers: they hold no connection of
			// the pool.
			// Like h.eventually, saying where the server's counts stood when it gave up.
			waitFor := func(within time.Duration, what string, cond func(open, dropped float64) bool) {
				t.Helper()
				deadline := time.Now().Add(within)
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for {
					open, dropped := float64(h.srv.viewers.open.Load()), counter(stalledDrops)-before
					if cond(open, dropped) {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("gave up after %s waiting for %s: %v streams open, %v viewers dropped as stalled", within, what, open, dropped)
					}
					<-tick.C
				}
			}
			waitFor(time.Minute, "every stalled viewer to be served", func(open, dropped float64) bool {
				return open+dropped >= float64(len(stalled))
			})
			if res := h.get("/api/runs/" + r.ID); res.status != http.StatusOK {
				t.Errorf("GET the run with %d stalled viewers: %d %s", len(stalled), res.status, res.body)
			}
			wg.Wait()
			readers := make([][]sseEvent, len(bodies))
			for i, b := range bodies {
				if errs[i] != nil {
					t.Fatalf("reader %d: %v", i, errs[i])
				}
				readers[i] = parseFrames(b)
			}
			for i, evs := range readers[:3] {
				if len(evs) == 0 {
					t.Fatalf("reader %d got nothing", i)
				}
				checkRun(t, r.ID, evs, tasks, app.RunFinished)
				t.Logf("reader %d had the end %s after it happened", i, ended[i].Sub(evs[len(evs)-1].event(t).At.Time))
			}
			if html := readers[3]; len(html) == 0 || html[len(html)-1].Type != "end" {
				t.Errorf("the HTML reader did not get to the end frame")
			}

			t.Logf("run wall %.0f ms; the readers are done %s after the launch", *readers[0][len(readers[0])-1].event(t).WallMS, time.Since(launched))
			// Server side: every stalled viewer is dropped, counted, and gone from the open
			// streams (the readers' streams ended with their run).
			waitFor(timeout+time.Minute, "the stalled viewers to be dropped", func(open, dropped float64) bool {
				return dropped >= float64(len(stalled)) && open == 0
			})
			t.Logf("every stalled viewer dropped %s after the launch", time.Since(launched))
			if n := counter(stalledDrops) - before; n != float64(len(stalled)) {
				t.Errorf("%v viewers dropped as stalled, want %d", n, len(stalled))
			}
			fams := scrape(t, h)
			if n := counterOf(fams["taskrace_stream_viewers_dropped_total"], map[string]string{"reason": "stalled"}); n < float64(len(stalled)) {
				t.Errorf("/metrics counts %v stalled viewers, want %d", n, len(stalled))
			}
			if g := fams["taskrace_sse_clients"]; g == nil || g.Metric[0].GetGauge().GetValue() != 0 {
				t.Errorf("taskrace_sse_clients = %v after every stream ended", g)
			}

			// A dropped viewer resumes where its stream was cut and misses nothing.
			whole := readers[0]
			for _, v := range []*stalledViewer{stalled[0], stalled[2]} { // two on the JSON stream
				got := v.received(t)
				if len(got) == 0 || len(got) >= len(whole) {
					t.Fatalf("the stalled viewer got %d of %d events before it was dropped", len(got), len(whole))
				}
				got = append(got, h.open(r.ID, "", "Last-Event-ID", got[len(got)-1].ID).all(t)...)
				if len(got) != len(whole) {
					t.Fatalf("resumed after a drop: %d events, the whole stream %d", len(got), len(whole))
				}
				for i := range whole {
					if got[i] != whole[i] {
						t.Fatalf("resumed after a drop: event %d is %+v, want %+v", i, got[i], whole[i])
					}
				}
			}
		})
	}
}

// TestMaxViewers: past MAX_VIEWERS, a stream request gets 503 problem+json saying so, on
// every kind of stream; once a stream ends, there is room again.
func TestMaxViewers(t *testing.T) {
	t.Parallel()
	h := start(t, withPingEvery(20*time.Millisecond), withWebConfig(func(c *Config) { c.MaxViewers = 2 }))
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 20_000})
	first := h.open(r.ID, "")
	second := h.openPath("/api/workers/stream")
	for _, path := range []string{"/api/runs/" + r.ID + "/events", "/runs/" + r.ID + "/stream", "/api/workers/stream"} {
		p := h.get(path, "Accept", "text/event-stream").problem(t, http.StatusServiceUnavailable)
		if !strings.Contains(p.Detail, "MAX_VIEWERS") || !strings.Contains(p.Detail, "2") {
			t.Errorf("%s: the 503 does not say the limit: %q", path, p.Detail)
		}
	}
	// At the limit, the 503 comes before anything is looked up.
	if res := h.get("/api/runs/" + app.NewRunID() + "/events"); res.status != http.StatusServiceUnavailable {
		t.Errorf("at the limit, an unknown run: %d, want the 503 first", res.status)
	}
	first.close()
	h.eventually(5*time.Second, "the closed stream to be noticed", func() bool { return h.srv.viewers.open.Load() == 1 })
	third := h.open(r.ID, "")
	if third.resp.StatusCode != http.StatusOK {
		t.Errorf("with room again: %d", third.resp.StatusCode)
	}
	second.close()
}

// TestVanishedRunEndsItsStreams deletes a running run's keys, as a Redis restarted without
// persistence would: the JSON and HTML streams end with run.interrupted saying the data is
// gone, and a reconnect gets 404, on which EventSource stops.
func TestVanishedRunEndsItsStreams(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 2, "delay_ms": 10_000})
	js := h.open(r.ID, "")
	html := h.openPath("/runs/" + r.ID + "/stream")
	first, ok := js.next(t)
	if !ok || first.Type != app.RunCreated {
		t.Fatalf("first event %+v", first)
	}
	h.vanish(r.ID)

	rest := js.all(t)
	if len(rest) == 0 {
		t.Fatal("the JSON stream ended with no event")
	}
	end := rest[len(rest)-1]
	if e := end.event(t); end.Type != app.RunInterrupted || e.Reason != app.ReasonGone || end.ID != "" {
		t.Errorf("the JSON stream ended on %+v", end)
	}
	frames := html.all(t)
	if last := frames[len(frames)-1]; last.Type != "end" || !strings.Contains(last.Data, "gone from Redis") {
		t.Errorf("the HTML stream ended on %+v", last)
	}
	for _, path := range []string{"/api/runs/" + r.ID + "/events", "/runs/" + r.ID + "/stream"} {
		if res := h.get(path, "Last-Event-ID", first.ID); res.status != http.StatusNotFound {
			t.Errorf("reconnecting to %s: %d, want 404", path, res.status)
		}
	}
}

// vanish deletes every key of a run, as a Redis restarted without persistence loses them.
func (h *harness) vanish(runID string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rdb := h.core.Redis.Client
	keys, err := rdb.Keys(ctx, "taskrace:run:"+runID+"*").Result()
	if err != nil || len(keys) == 0 {
		h.t.Fatalf("keys of the run: %v %v", keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		h.t.Fatal(err)
	}
}

// TestBrowserPageStopsOnAVanishedRun: the page of a run whose data vanishes shows it
// interrupted, with the reason, and stops following; a page that was disconnected when it
// vanished stops on the 404 of its reconnect instead of retrying for ever.
func TestBrowserPageStopsOnAVanishedRun(t *testing.T) {
	t.Parallel()
	h := start(t)
	cut, base := newCutter(t, h.base)
	b := newBrowser(t, base)
	// Caused on purpose: the cut stream, the 404 of the reconnect and of the page's probe.
	b.allow("ERR_INCOMPLETE_CHUNKED_ENCODING")
	b.allow("404")
	b.allow("text/event-stream")
	ctx := b.ctx
	for _, disconnected := range []bool{false, true} {
		r := h.launch(map[string]any{"mode": "sequential", "tasks": 2, "delay_ms": 10_000})
		b.open(ctx, "/runs/"+r.ID)
		eval[bool](b, ctx, `(document.addEventListener('taskrace:end', (e) => { window.__end = e.detail; }), true)`)
		h.eventually(10*time.Second, "the page's stream to open", func() bool { return h.srv.viewers.open.Load() >= 1 })
		h.vanish(r.ID)
		if disconnected {
			cut.cut() // before the feed notices: the page learns it from its reconnect
		}
		b.until(ctx, 20*time.Second, "the page to stop following", `window.__end`)
		if disconnected {
			if !eval[bool](b, ctx, `window.__end.gone === true`) {
				t.Errorf("the disconnected page stopped without saying the run is gone: %v", eval[any](b, ctx, `window.__end`))
			}
			continue
		}
		b.until(ctx, 5*time.Second, "the run to show interrupted", `document.querySelector('[data-status=interrupted]')`)
		if !eval[bool](b, ctx, `document.body.textContent.includes('gone from Redis')`) {
			t.Error("the page does not say the run's data is gone")
		}
	}
	b.noConsoleErrors()
}
