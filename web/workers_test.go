package web

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/worker"
)

func TestWorkersListsLiveServersAndTheirTasks(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	// A second asynq server on the same Redis, as a second worker process would be.
	w := worker.New(h.core, worker.Config{Concurrency: 3, ShutdownTimeout: time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()

	var list WorkerList
	h.eventually(10*time.Second, "both workers to be listed", func() bool {
		h.srv.workerSnap.mu.Lock()
		h.srv.workerSnap.list = nil // read afresh
		h.srv.workerSnap.mu.Unlock()
		h.get("/api/workers").json(t, &list)
		return len(list.Servers) == 2
	})
	if list.Capacity != 8 {
		t.Fatalf("capacity %d; want 8 slots", list.Capacity)
	}
	for _, s := range list.Servers {
		if s.Host == "" || s.PID == 0 || len(s.Queues) != 1 || s.Queues[0] != "taskrace" || s.Started.IsZero() {
			t.Errorf("server %+v lacks host, pid, queue or start", s)
		}
	}

	// Tasks in flight show with their run and index (asynq reports them on its heartbeat).
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 8, "delay_ms": 8000})
	h.eventually(15*time.Second, "active tasks to be listed", func() bool {
		h.srv.workerSnap.mu.Lock()
		h.srv.workerSnap.list = nil // read afresh
		h.srv.workerSnap.mu.Unlock()
		var l WorkerList
		h.get("/api/workers").json(t, &l)
		n := 0
		for _, s := range l.Servers {
			for _, a := range s.Active {
				if a.RunID == r.ID {
					n++
				}
			}
		}
		return n == 8
	})
	h.do("POST", "/api/runs/"+r.ID+"/cancel", nil)

	// The stream sends the list as `workers` events.
	resp, err := http.Get(h.base + "/api/workers/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ev string
	for sc.Scan() {
		line := sc.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			ev = e
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok && ev == "workers" {
			var l WorkerList
			if err := json.Unmarshal([]byte(d), &l); err != nil || len(l.Servers) != 2 {
				t.Errorf("workers event %s: %v", d, err)
			}
			return
		}
	}
	t.Fatalf("no workers event: %v", sc.Err())
}
