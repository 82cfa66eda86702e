package web

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/internal/redistest"
)

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// checkFieldProblem checks that p names the input at location, and that both its detail
// and the input's message mention each of mention (the field, the limit, the value).
func checkFieldProblem(t *testing.T, p *Problem, location string, mention ...string) {
	t.Helper()
	for _, e := range p.Errors {
		if e.Location != location {
			continue
		}
		if !contains(e.Message, mention...) || !contains(p.Detail, mention...) {
			t.Errorf("problem at %s = %q (detail %q); want it to mention %q", location, e.Message, p.Detail, mention)
		}
		return
	}
	t.Errorf("problem names no input at %s: %+v", location, p)
	for _, e := range p.Errors {
		t.Logf("  %s: %s (%v)", e.Location, e.Message, e.Value)
	}
}

func TestCreateRunRejectsInvalidPlans(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, tc := range []struct {
		name     string
		body     string
		location string
		mention  []string
	}{
		{"tasks zero", `{"mode":"sequential","tasks":0}`, "body.tasks", []string{"tasks", "1", "0"}},
		{"tasks huge", `{"mode":"sequential","tasks":1000000}`, "body.tasks", []string{"tasks", "10000", "1000000"}},
		{"tasks negative", `{"mode":"sequential","tasks":-3}`, "body.tasks", []string{"tasks", "1", "-3"}},
		{"tasks overflow", `{"mode":"sequential","tasks":1e30}`, "body.tasks", []string{"tasks", "10000"}},
		{"tasks wrong type", `{"mode":"sequential","tasks":"ten"}`, "body.tasks", []string{"tasks", "integer", `"ten"`}},
		{"tasks fraction", `{"mode":"sequential","tasks":2.5}`, "body.tasks", []string{"tasks", "integer", "2.5"}},
		{"delay negative", `{"mode":"sequential","delay_ms":-5}`, "body.delay_ms", []string{"delay_ms", "0", "-5"}},
		{"delay huge", `{"mode":"sequential","delay_ms":40000}`, "body.delay_ms", []string{"delay_ms", "30000", "40000"}},
		{"unknown mode", `{"mode":"warp","tasks":1}`, "body.mode", []string{"mode", "sequential", "concurrent", "distributed", `"warp"`}},
		{"bad target", `{"mode":"sequential","target":"http://example.com:9"}`, "body.target", []string{"target", "builtin", "example.com:9"}},
		{"failure rate", `{"mode":"sequential","failure_rate":2}`, "body.failure_rate", []string{"failure_rate", "1", "2"}},
		{"parallelism", `{"mode":"concurrent","parallelism":1000}`, "body.parallelism", []string{"parallelism", "100", "1000"}},
		{"unknown field", `{"mode":"sequential","workers":3}`, "body.workers", []string{"workers", "unexpected"}},
		{"no mode", `{"tasks":1}`, "body.mode", []string{"mode", "required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := h.with(t)
			p := h.do("POST", "/api/runs", tc.body).problem(t, http.StatusUnprocessableEntity)
			checkFieldProblem(t, p, tc.location, tc.mention...)
		})
	}
	// None of them left a run behind.
	var list RunList
	if h.getOK("/api/runs", &list); len(list.Runs) != 0 {
		t.Errorf("invalid plans saved %d runs", len(list.Runs))
	}
}

func TestCreateRunRejectsBadBodies(t *testing.T) {
	t.Parallel()
	h := start(t)
	t.Run("unparsable", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		p := h.do("POST", "/api/runs", `{"mode": "sequential",`).problem(t, http.StatusBadRequest)
		if len(p.Errors) != 1 || p.Errors[0].Location != "body" || !contains(p.Detail, "JSON") {
			t.Errorf("problem = %+v", p)
		}
	})
	t.Run("empty", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		h.do("POST", "/api/runs", "").problem(t, http.StatusBadRequest)
	})
	t.Run("not JSON", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/xml; charset=utf-8"} {
			p := h.do("POST", "/api/runs", `{"mode":"sequential"}`, "Content-Type", ct).problem(t, http.StatusUnsupportedMediaType)
			if !contains(p.Detail, "application/json", ct) {
				t.Errorf("415 detail = %q", p.Detail)
			}
		}
	})
	t.Run("JSON with charset", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		res := h.do("POST", "/api/runs", `{"mode":"sequential","tasks":1,"delay_ms":0}`, "Content-Type", "application/json; charset=utf-8")
		if res.status != http.StatusCreated {
			t.Fatalf("status %d: %s", res.status, res.body)
		}
	})
	t.Run("too large", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		for _, size := range []int{64<<10 + 1, 70 << 10, 1000 << 10} {
			body := `{"mode":"sequential","target":"` + strings.Repeat("x", size) + `"}`
			p := h.do("POST", "/api/runs", body).problem(t, http.StatusRequestEntityTooLarge)
			if !contains(p.Detail, "65536") {
				t.Errorf("413 detail = %q", p.Detail)
			}
		}
		// Exactly at the limit is not too large.
		body := `{"mode":"sequential","target":"` + strings.Repeat("x", 64<<10-33) + `"}`
		if len(body) != 64<<10 {
			t.Fatalf("body of %d bytes", len(body))
		}
		h.do("POST", "/api/runs", body).problem(t, http.StatusUnprocessableEntity)
	})
	t.Run("far too large", func(t *testing.T) {
		t.Parallel()
		// 8 MiB, sent whole: the answer is a 413 the client reads, not a reset connection.
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		size := 8 << 20
		sent := make(chan error, 1)
		go func() {
			_, err := fmt.Fprintf(conn, "POST /api/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
			if err == nil {
				_, err = io.Copy(conn, io.LimitReader(zeros{}, int64(size)))
			}
			sent <- err
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		res := &response{status: resp.StatusCode, header: resp.Header, body: b}
		res.problem(t, http.StatusRequestEntityTooLarge)
		if err := <-sent; err != nil {
			t.Errorf("the body was not read away: %v", err)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, path := range []string{"/api/runs/" + app.NewRunID(), "/api/runs/nope", "/api/runs/" + app.NewRunID() + "/events",
		"/nope", "/api/nope", "/static/nope.js", "/result/nope"} {
		p := h.get(path).problem(t, http.StatusNotFound)
		if p.Type != "urn:taskrace:problem:not_found" {
			t.Errorf("GET %s: type %q", path, p.Type)
		}
	}
	h.do("DELETE", "/api/runs", nil).problem(t, http.StatusMethodNotAllowed)
	h.do("PUT", "/healthz", nil).problem(t, http.StatusMethodNotAllowed)
}

func TestTooManyActiveRuns(t *testing.T) {
	t.Parallel()
	h := start(t, withAppConfig(func(c *app.Config) { c.MaxActiveRuns = 1 }))
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 10_000})
	p := h.do("POST", "/api/runs", map[string]any{"mode": "concurrent", "tasks": 1}).problem(t, http.StatusTooManyRequests)
	if !contains(p.Detail, "1") {
		t.Errorf("429 detail = %q", p.Detail)
	}
	h.get("/sequential?tasks=1&delay=0").problem(t, http.StatusTooManyRequests)
	if res := h.do("POST", "/api/runs/"+r.ID+"/cancel", nil); res.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", res.status, res.body)
	}
	h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0})
}

func TestDistributedWithoutWorkerIsUnavailable(t *testing.T) {
	t.Parallel()
	h := start(t)
	p := h.do("POST", "/api/runs", map[string]any{"mode": "distributed", "tasks": 2}).problem(t, http.StatusServiceUnavailable)
	if !contains(p.Detail, "taskrace worker") {
		t.Errorf("503 detail = %q, want it to say how to start a worker", p.Detail)
	}
	h.get("/sequential_celery?tasks=2&delay=0").problem(t, http.StatusServiceUnavailable)
}

func TestRedisDownAnswers503(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	h := start(t, withRedis(rs))
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0})
	h.follow(r.ID)

	rs.Kill()
	t.Run("down", func(t *testing.T) {
		h := h.with(t)
		for _, tc := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/api/runs", map[string]any{"mode": "sequential", "tasks": 1}},
			{"GET", "/readyz", nil},
			{"GET", "/api/runs", nil},
			{"GET", "/api/runs/" + r.ID, nil},
			{"GET", "/api/runs/" + r.ID + "/events", nil},
			{"GET", "/sequential?tasks=1&delay=0", nil},
		} {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				t.Parallel()
				h := h.with(t)
				began := time.Now()
				p := h.do(tc.method, tc.path, tc.body).problem(t, http.StatusServiceUnavailable)
				if took := time.Since(began); took > 5*time.Second {
					t.Errorf("took %s to answer 503", took)
				}
				if contains(p.Detail, "connection refused") || contains(p.Detail, "dial tcp") {
					t.Errorf("503 leaks the cause: %q", p.Detail)
				}
			})
		}
		if res := h.get("/healthz"); res.status != http.StatusOK {
			t.Errorf("/healthz with Redis down: %d", res.status)
		}
	})

	rs.Restart(t)
	h.eventually(10*time.Second, "/readyz to answer 200 again", func() bool {
		return h.get("/readyz").status == http.StatusOK
	})
	r = h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0})
	checkRun(t, r.ID, h.follow(r.ID), 1, app.RunFinished)
}

func TestPanicIsA500Problem(t *testing.T) {
	t.Parallel()
	h := start(t, withRoutes(func(a *fiber.App) {
		a.Get("/boom", func(*fiber.Ctx) error { panic("secret internal detail") })
		a.Get("/fail", func(*fiber.Ctx) error { return context.Canceled })
	}))
	for _, path := range []string{"/boom", "/fail"} {
		res := h.get(path)
		res.problem(t, http.StatusInternalServerError)
		if contains(string(res.body), "secret") || contains(string(res.body), "canceled") {
			t.Errorf("GET %s leaks the cause: %s", path, res.body)
		}
	}
	if res := h.get("/healthz"); res.status != http.StatusOK {
		t.Errorf("after a panic, /healthz = %d", res.status)
	}
}

// A page that fails shows what the API would say, never the cause, and the cause is logged.
func TestPageErrorsLogTheirCause(t *testing.T) {
	t.Parallel()
	var srv *Server
	h := start(t, withRoutes(func(a *fiber.App) {
		a.Get("/page-boom", func(c *fiber.Ctx) error { return srv.pageError(c, errors.New("secret internal detail")) })
	}))
	srv = h.srv
	var sink syncBuffer
	h.srv.logger = slog.New(slog.NewJSONHandler(&sink, nil))
	res := h.get("/page-boom")
	if res.status != http.StatusInternalServerError || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
		t.Fatalf("a failed page: %d %s", res.status, res.header.Get("Content-Type"))
	}
	if strings.Contains(string(res.body), "secret") || !strings.Contains(string(res.body), "the cause has been logged") {
		t.Errorf("the error page reads: %s", text(string(res.body)))
	}
	logged := false
	for _, l := range sink.lines() {
		logged = logged || strings.Contains(fmt.Sprint(l["err"]), "secret internal detail")
	}
	if !logged {
		t.Errorf("the cause was not logged: %v", sink.lines())
	}
}
