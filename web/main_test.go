package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/internal/redistest"
	"github.com/taskrace/taskrace/worker"
)

// redisServer is this package's redis-server; each test takes its own database.
var redisServer *redistest.Server

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the test that stops Redis makes plenty on purpose.
	redis.SetLogger(quietRedis{})
	s, err := redistest.StartProcess(redistest.WithDatabases(512)) // one per test, with room for -count
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	redisServer = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// options change how a test server is built.
type options struct {
	worker    bool
	redis     *redistest.Server
	embedded  bool
	appConfig func(*app.Config)
	webConfig func(*Config)
	pingEvery time.Duration
	routes    func(*fiber.App)
}

type option func(*options)

func withWorker() option                   { return func(o *options) { o.worker = true } }
func withRedis(s *redistest.Server) option { return func(o *options) { o.redis = s } }

// withEmbeddedRedis runs the test on the embedded Redis that serve uses without REDIS_URL.
func withEmbeddedRedis() option                { return func(o *options) { o.embedded = true } }
func withAppConfig(f func(*app.Config)) option { return func(o *options) { o.appConfig = f } }
func withWebConfig(f func(*Config)) option     { return func(o *options) { o.webConfig = f } }
func withPingEvery(d time.Duration) option     { return func(o *options) { o.pingEvery = d } }
func withRoutes(f func(*fiber.App)) option     { return func(o *options) { o.routes = f } }

// harness is a real server on a real listener over a real Redis, with the domain started
// and, if asked, an in-process worker.
type harness struct {
	t      *testing.T
	core   *app.Core
	srv    *Server
	base   string // http://127.0.0.1:port
	served chan struct{}
	client *http.Client
}

func testLogger() *slog.Logger {
	if os.Getenv("WEB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func start(t *testing.T, opts ...option) *harness {
	t.Helper()
	o := options{redis: redisServer}
	for _, f := range opts {
		f(&o)
	}
	url := ""
	if o.embedded {
		m := miniredis.NewMiniRedis()
		m.ClockTTL(true)
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		url = "redis://" + m.Addr()
	} else {
		url = o.redis.URL(o.redis.NextDB())
	}
	r, err := app.OpenRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := app.DefaultConfig()
	cfg.BuiltinURL = base + "/httpbin"
	if o.appConfig != nil {
		o.appConfig(&cfg)
	}
	logger := testLogger()
	core := app.NewCore(cfg, r, logger)
	core.Fetcher.SetBuiltin(base + "/httpbin")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := core.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wcfg := Config{Version: "test", MaxDelay: cfg.Limits.MaxDelay, MaxBody: 64 << 10, Embedded: o.embedded}
	if o.webConfig != nil {
		o.webConfig(&wcfg)
	}
	srv := New(core, wcfg, logger)
	if o.pingEvery > 0 {
		srv.pingEvery = o.pingEvery
	}
	if o.routes != nil {
		o.routes(srv.Handler())
	}
	h := &harness{t: t, core: core, srv: srv, base: base, served: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second}}
	go func() {
		defer close(h.served)
		if err := srv.Serve(ln); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	var w *worker.Worker
	if o.worker {
		w = worker.New(core, worker.Config{Concurrency: 5, ShutdownTimeout: time.Second})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-h.served
		if w != nil {
			w.Shutdown()
		}
		core.Shutdown(sctx)
		r.Close()
	})
	if o.worker {
		// asynq writes the worker's record on its first heartbeat, just after Start.
		h.eventually(5*time.Second, "the worker to register", func() bool {
			n, err := core.Launcher.Capacity(context.Background())
			return err == nil && n > 0
		})
	}
	return h
}

// eventually waits until cond holds, checking every few milliseconds, or fails the test.
func (h *harness) eventually(within time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("gave up after %s waiting for %s", within, what)
		}
		<-tick.C
	}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, r.body)
	}
}

// problem decodes a problem+json body and checks its shape.
func (r *response) problem(t *testing.T, status int) *Problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type = %q, want application/problem+json; body: %s", ct, r.body)
	}
	var p Problem
	r.json(t, &p)
	if p.Status != status || p.Title == "" || p.Detail == "" || p.Type == "" {
		t.Fatalf("problem lacks a field or has the wrong status: %s", r.body)
	}
	return &p
}

func (h *harness) do(method, path string, body any, header ...string) *response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (h *harness) get(path string, header ...string) *response {
	return h.do("GET", path, nil, header...)
}

// launch posts a plan and returns the run, failing the test unless it is created.
func (h *harness) launch(plan map[string]any) *app.Run {
	h.t.Helper()
	res := h.do("POST", "/api/runs", plan)
	if res.status != http.StatusCreated {
		h.t.Fatalf("POST /api/runs %v: status %d: %s", plan, res.status, res.body)
	}
	var r app.Run
	res.json(h.t, &r)
	if loc := res.header.Get("Location"); loc != "/api/runs/"+r.ID {
		h.t.Errorf("Location = %q, want /api/runs/%s", loc, r.ID)
	}
	return &r
}

// sseEvent is one frame of an event stream.
type sseEvent struct {
	ID, Type, Data string
}

func (e sseEvent) event(t *testing.T) *app.Event {
	t.Helper()
	var ev app.Event
	if err := json.Unmarshal([]byte(e.Data), &ev); err != nil {
		t.Fatalf("event data is not JSON: %v: %s", err, e.Data)
	}
	ev.ID = e.ID
	return &ev
}

// sseStream is an open event stream.
type sseStream struct {
	resp   *http.Response
	sc     *bufio.Scanner
	cancel context.CancelFunc
	pings  int
}

// open requests a run's event stream; header pairs are added to the request.
func (h *harness) open(runID, query string, header ...string) *sseStream {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+"/api/runs/"+runID+"/events"+query, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		h.t.Fatalf("GET events of %s: %v", runID, err)
	}
	s := &sseStream{resp: resp, sc: bufio.NewScanner(resp.Body), cancel: cancel}
	h.t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next reads the next event; ok is false at the end of the stream.
func (s *sseStream) next(t *testing.T) (sseEvent, bool) {
	t.Helper()
	var e sseEvent
	var data []string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				e.Data = strings.Join(data, "\n")
				return e, true
			}
		case strings.HasPrefix(line, ":"):
			if strings.TrimSpace(line[1:]) == "ping" {
				s.pings++
			}
		case strings.HasPrefix(line, "id: "):
			e.ID = line[len("id: "):]
		case strings.HasPrefix(line, "event: "):
			e.Type = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[len("data: "):])
		case strings.HasPrefix(line, "retry: "):
		default:
			t.Fatalf("unexpected line in event stream: %q", line)
		}
	}
	if err := s.sc.Err(); err != nil {
		t.Fatalf("reading event stream: %v", err)
	}
	return e, false
}

// all reads events to the end of the stream.
func (s *sseStream) all(t *testing.T) []sseEvent {
	t.Helper()
	var evs []sseEvent
	for {
		e, ok := s.next(t)
		if !ok {
			return evs
		}
		evs = append(evs, e)
	}
}

// follow streams a run from its start to its end.
func (h *harness) follow(runID string) []sseEvent {
	h.t.Helper()
	s := h.open(runID, "")
	if s.resp.StatusCode != http.StatusOK {
		h.t.Fatalf("events of %s: status %d", runID, s.resp.StatusCode)
	}
	return s.all(h.t)
}

// checkRun checks a whole run's stream: run.created first, the terminal event last and
// only there, IDs increasing, and each of the tasks queued, then started, then ended once.
func checkRun(t *testing.T, runID string, evs []sseEvent, tasks int, terminal string) {
	t.Helper()
	if len(evs) < 2 {
		t.Fatalf("only %d events", len(evs))
	}
	if evs[0].Type != app.RunCreated {
		t.Errorf("first event is %s, want %s", evs[0].Type, app.RunCreated)
	}
	if last := evs[len(evs)-1]; last.Type != terminal {
		t.Errorf("last event is %s, want %s", last.Type, terminal)
	}
	type progress struct{ queued, started, ended int }
	seen := make([]progress, tasks)
	for i, se := range evs {
		e := se.event(t)
		if e.Type != se.Type || e.RunID != runID {
			t.Errorf("event %d: frame says %s of %s, data says %s of %s", i, se.Type, runID, e.Type, e.RunID)
		}
		if !app.ValidEventID(se.ID) || (i > 0 && app.CompareIDs(evs[i-1].ID, se.ID) >= 0) {
			t.Errorf("event %d: ID %q does not follow %q", i, se.ID, evs[max(i-1, 0)].ID)
		}
		if e.Terminal() && i != len(evs)-1 {
			t.Errorf("terminal event %s at %d of %d", e.Type, i, len(evs))
		}
		if e.Type == app.TasksQueued {
			for x := range min(e.Tasks, tasks) {
				seen[x].queued++
			}
		}
		if e.Index == nil {
			continue
		}
		p := &seen[*e.Index]
		switch e.Type {
		case app.TaskQueued:
			p.queued++
		case app.TaskStarted:
			if p.queued != 1 {
				t.Errorf("task %d started before it was queued", *e.Index)
			}
			p.started++
		case app.TaskFinished:
			if p.started == 0 {
				t.Errorf("task %d finished before it started", *e.Index)
			}
			p.ended++
		case app.TaskFailed:
			if p.started == 0 {
				t.Errorf("task %d failed before it started", *e.Index)
			}
			if e.Retry == nil || !*e.Retry {
				p.ended++
			}
		}
	}
	if terminal != app.RunFinished {
		return
	}
	for i, p := range seen {
		if p.queued != 1 || p.started < 1 || p.ended != 1 {
			t.Errorf("task %d: queued %d, started %d, ended %d times; want 1, ≥1, 1", i, p.queued, p.started, p.ended)
		}
	}
}

// with returns h reporting to t, for subtests.
func (h *harness) with(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}
