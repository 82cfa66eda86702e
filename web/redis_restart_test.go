package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/internal/redistest"
)

// Redis goes away mid-stream and comes back empty (no AOF): meanwhile the monitor's API
// answers problem+json 503 saying so; once Redis answers again, the in-process worker counts
// at once (asynq itself lists it only at its next heartbeat, up to 5 s later), a launch
// works at the first try and the monitor shows the queue again.
func TestRedisRestartedEmpty(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	h := start(t, withRedis(rs), withWorker())
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 10, "delay_ms": 2000})
	s := h.open(r.ID, "")
	for {
		e, ok := s.next(t)
		if !ok {
			t.Fatal("the stream ended before a task started")
		}
		if e.Type == app.TaskStarted {
			break
		}
	}

	rs.Kill()
	for _, path := range []string{"/monitor/api/queues", "/monitor/api/servers", "/monitor/api/queues/taskrace/pending_tasks"} {
		p := h.get(path).problem(t, http.StatusServiceUnavailable)
		// Refused at once, or (on a loaded machine) not answered in time: either way in words.
		said := contains(p.Detail, "Redis is unreachable") || contains(p.Detail, "Redis did not answer in time")
		raw := strings.Contains(p.Detail, "dial tcp") || strings.Contains(p.Detail, "connection refused") || strings.Contains(p.Detail, "redis: ")
		if !said || raw {
			t.Errorf("GET %s with Redis down: %q, want it to say Redis is unreachable, without the raw error", path, p.Detail)
		}
	}
	// The monitor's own page shows its answers as text: it asks for text and gets the same words.
	res := h.get("/monitor/api/queues", "Accept", "application/json, text/plain, */*")
	if res.status != http.StatusServiceUnavailable || !contains(res.header.Get("Content-Type"), "text/plain") ||
		!contains(string(res.body), "Redis is unreachable") || contains(string(res.body), "dial tcp") {
		t.Errorf("the monitor page's request with Redis down: %d %s %q", res.status, res.header.Get("Content-Type"), res.body)
	}

	rs.Restart(t) // empty: no AOF
	// The process sees Redis back once its client dials again (go-redis probes a Redis it
	// could not dial once a second): from then on, the first launch must work.
	h.eventually(10*time.Second, "/readyz to answer 200 again", func() bool {
		return h.get("/readyz").status == http.StatusOK
	})
	next := h.launch(map[string]any{"mode": "distributed", "tasks": 3, "delay_ms": 10})
	if next.Parallelism != 5 {
		t.Errorf("parallelism %d right after Redis came back, want the in-process worker's 5", next.Parallelism)
	}
	checkRun(t, next.ID, h.follow(next.ID), 3, app.RunFinished)

	var workers WorkerList
	h.get("/api/workers").json(t, &workers)
	if workers.Capacity != 5 || len(workers.Servers) != 1 {
		t.Errorf("workers after the restart: %+v, want the in-process worker with 5 slots", workers)
	}
	var queues []struct {
		Queue string `json:"queue"`
	}
	res = h.get("/monitor/api/queues")
	if res.status != http.StatusOK {
		t.Fatalf("GET /monitor/api/queues after the restart: %d %s", res.status, res.body)
	}
	var body struct {
		Queues []struct {
			Queue string `json:"queue"`
		} `json:"queues"`
	}
	res.json(t, &body)
	queues = body.Queues
	if len(queues) != 1 || queues[0].Queue != h.core.Config.Queue {
		t.Errorf("the monitor lists queues %+v after the restart, want %q", queues, h.core.Config.Queue)
	}
}
