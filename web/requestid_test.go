package web

import (
	"bytes"
	"encoding/json"
	"github.com/taskrace/taskrace/app"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestRequestIDInEveryLineItCauses(t *testing.T) {
	t.Parallel()
	var sink syncBuffer
	h := start(t)
	h.srv.logger = slog.New(slog.NewJSONHandler(&sink, nil))
	h.srv.logger = slog.New(appLogHandler(h.srv.logger))
	h.core.Logger = h.srv.logger // the domain's lines too

	res := h.get("/api/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV", "X-Request-ID", "talk-42")
	if res.header.Get("X-Request-ID") != "talk-42" {
		t.Errorf("X-Request-ID = %q, want the client's", res.header.Get("X-Request-ID"))
	}
	res = h.get("/api/runs", "X-Request-ID", "bad id with spaces")
	gen := res.header.Get("X-Request-ID")
	if gen == "" || gen == "bad id with spaces" {
		t.Errorf("X-Request-ID = %q, want a fresh one", gen)
	}
	// A launch the domain refuses: no worker is live for a distributed run.
	h.do("POST", "/api/runs", map[string]any{"mode": "distributed", "tasks": 1}, "X-Request-ID", "launch-7")

	h.do("POST", "/api/runs", map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0}, "X-Request-ID", "launch-8")

	seen := map[string]int{}
	launched := false
	for _, l := range sink.lines() {
		if l["msg"] == "run launched" && l["request_id"] == "launch-8" {
			launched = true
		}
		id, _ := l["request_id"].(string)
		if id == "" {
			t.Errorf("a log line without request_id: %v", l)
		}
		seen[id]++
	}
	if seen["talk-42"] == 0 || seen[gen] == 0 {
		t.Errorf("request lines by ID: %v", seen)
	}
	// The failed launch (no worker: 503) logs its cause and its request line, both with its ID.
	if seen["launch-7"] < 2 {
		t.Errorf("launch-7 caused %d lines, want its warning and its request line", seen["launch-7"])
	}
	if !launched {
		t.Error("the domain's line about the launch does not carry the request's ID")
	}
	if res := h.get("/healthz"); res.status != http.StatusOK {
		t.Fatal(res.status)
	}
}

func appLogHandler(l *slog.Logger) slog.Handler { return app.LogHandler{Handler: l.Handler()} }
