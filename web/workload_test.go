package web

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// On embedded Redis, the Mixed workload runs in this process and its tasks are recorded
// and listed like any application's, every type of the mix among them.
func TestMixedWorkloadOnEmbeddedRedis(t *testing.T) {
	t.Parallel()
	h := start(t, withEmbeddedRedis())
	if !strings.Contains(string(h.get("/").body), `data-launch="workload"`) {
		t.Fatal("the dashboard offers no Mixed workload")
	}
	if r := h.do("POST", "/workload", "tasks=40&rate=100", "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
		t.Fatalf("launching: %d %s", r.status, text(string(r.body)))
	}
	var list TaskList
	h.eventually(30*time.Second, "the workload's 40 tasks, every type, to be recorded", func() bool {
		h.get("/api/tasks?limit=100&q="+url.QueryEscape("queue:workload")).json(t, &list)
		types := map[string]bool{}
		for _, task := range list.Tasks {
			types[task.Type] = true
		}
		return list.Total == 40 && len(types) == 4
	})
	for _, bad := range []string{"tasks=0", "tasks=5001", "tasks=x", "rate=0", "rate=201", "rate=NaN"} {
		r := h.do("POST", "/workload", bad, "Content-Type", "application/x-www-form-urlencoded")
		if r.status != 422 && r.status != 400 {
			t.Errorf("POST /workload %s: %d, want a refusal", bad, r.status)
		}
		if !strings.Contains(text(string(r.body)), "must be") {
			t.Errorf("POST /workload %s: the page says %s", bad, text(string(r.body)))
		}
	}
}
