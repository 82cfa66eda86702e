package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
)

func TestMonitorPageLoadsNothingFromOutside(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, path := range []string{"/monitor", "/monitor/", "/monitor/queues/taskrace"} {
		res := h.get(path)
		if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", path, res.status, res.header.Get("Content-Type"))
		}
		page := string(res.body)
		if strings.Contains(page, "googleapis") || regexp.MustCompile(`(src|href)="https?://`).MatchString(page) {
			t.Errorf("GET %s links an outside host:\n%s", path, page)
		}
		csp := res.header.Get("Content-Security-Policy")
		scripts := regexp.MustCompile(`<script>(.*?)</script>`).FindAllStringSubmatch(page, -1)
		if len(scripts) == 0 {
			t.Fatalf("GET %s: no inline script to check", path)
		}
		for _, s := range scripts {
			sum := sha256.Sum256([]byte(s[1]))
			if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, h) {
				t.Errorf("GET %s: CSP %q does not allow inline script %s", path, csp, h)
			}
		}
		if strings.Contains(csp, "'unsafe-inline'") && strings.Contains(strings.Split(csp, "script-src")[1], "unsafe-inline;") {
			t.Errorf("CSP allows any inline script: %s", csp)
		}
	}
	if res := h.get("/monitorx"); res.status != http.StatusNotFound {
		t.Errorf("GET /monitorx = %d, want 404: the monitor is mounted at /monitor only", res.status)
	}
}

func TestMonitorShowsRunTasks(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 3, "delay_ms": 10})
	h.follow(r.ID)
	var list struct {
		Queues []struct {
			Queue     string `json:"queue"`
			Completed int    `json:"completed"`
		} `json:"queues"`
	}
	h.get("/monitor/api/queues").json(t, &list)
	if len(list.Queues) != 1 || list.Queues[0].Queue != "taskrace" || list.Queues[0].Completed != 3 {
		t.Errorf("monitor lists queues %+v, want taskrace with 3 completed", list.Queues)
	}
	res := h.get("/monitor/api/queues/taskrace/completed_tasks")
	if res.status != http.StatusOK || !strings.Contains(string(res.body), "run "+r.ID+" · task ") ||
		!regexp.MustCompile(`HTTP 200 in [0-9.]+ ms on `).Match(res.body) {
		t.Errorf("completed tasks (payload and result) are not shown readably: %d %s", res.status, res.body)
	}
	res = h.get("/monitor/api/queues/taskrace/tasks/" + app.TaskID(r.ID, 1))
	if res.status != http.StatusOK || !strings.Contains(string(res.body), app.TaskID(r.ID, 1)) {
		t.Errorf("task lookup in the monitor: %d %s", res.status, res.body)
	}
}

// monitorWrites are asynqmon's routes that change something.
var monitorWrites = []struct{ method, path string }{
	{"DELETE", "/queues/taskrace"},
	{"POST", "/queues/taskrace:pause"},
	{"POST", "/queues/taskrace:resume"},
	{"POST", "/queues/taskrace/active_tasks/x:cancel"},
	{"POST", "/queues/taskrace/active_tasks:cancel_all"},
	{"POST", "/queues/taskrace/active_tasks:batch_cancel"},
	{"DELETE", "/queues/taskrace/pending_tasks/x"},
	{"DELETE", "/queues/taskrace/pending_tasks:delete_all"},
	{"POST", "/queues/taskrace/pending_tasks:batch_delete"},
	{"POST", "/queues/taskrace/pending_tasks/x:archive"},
	{"POST", "/queues/taskrace/pending_tasks:archive_all"},
	{"POST", "/queues/taskrace/pending_tasks:batch_archive"},
	{"DELETE", "/queues/taskrace/scheduled_tasks/x"},
	{"DELETE", "/queues/taskrace/scheduled_tasks:delete_all"},
	{"POST", "/queues/taskrace/scheduled_tasks/x:run"},
	{"POST", "/queues/taskrace/scheduled_tasks:run_all"},
	{"POST", "/queues/taskrace/scheduled_tasks:batch_run"},
	{"POST", "/queues/taskrace/scheduled_tasks/x:archive"},
	{"POST", "/queues/taskrace/scheduled_tasks:archive_all"},
	{"DELETE", "/queues/taskrace/retry_tasks/x"},
	{"DELETE", "/queues/taskrace/retry_tasks:delete_all"},
	{"POST", "/queues/taskrace/retry_tasks/x:run"},
	{"POST", "/queues/taskrace/retry_tasks:run_all"},
	{"POST", "/queues/taskrace/retry_tasks:batch_delete"},
	{"DELETE", "/queues/taskrace/archived_tasks/x"},
	{"DELETE", "/queues/taskrace/archived_tasks:delete_all"},
	{"POST", "/queues/taskrace/archived_tasks/x:run"},
	{"POST", "/queues/taskrace/archived_tasks:run_all"},
	{"DELETE", "/queues/taskrace/completed_tasks/x"},
	{"DELETE", "/queues/taskrace/completed_tasks:delete_all"},
	{"POST", "/queues/taskrace/groups/g/aggregating_tasks:run_all"},
}

func TestMonitorIsReadOnlyButForTheAdmin(t *testing.T) {
	t.Parallel()
	const token = "speaker-secret"
	h := start(t, withWorker(), withWebConfig(func(c *Config) { c.AdminToken = token }))
	res := h.do("POST", "/api/runs", map[string]any{"mode": "distributed", "tasks": 1, "delay_ms": 0}, "Authorization", "Bearer "+token)
	var r app.Run
	res.json(t, &r)
	h.follow(r.ID)
	for i, w := range monitorWrites {
		auths := [][]string{nil, {"Authorization", token}}
		if i < guessesPerMinute-1 {
			auths = append(auths, []string{"Authorization", "Bearer wrong"}) // more would be guessing
		}
		for _, auth := range auths {
			res := h.do(w.method, "/monitor/api"+w.path, "{}", auth...)
			res.problem(t, http.StatusUnauthorized)
		}
	}
	// Reads stay open.
	if res := h.get("/monitor/api/queues"); res.status != http.StatusOK {
		t.Errorf("reading the monitor without the admin: %d", res.status)
	}
	// The admin may write: pause and resume the queue, then every other write route gets
	// through to asynqmon (which may find no such task: anything but a refusal).
	admin := []string{"Authorization", "Bearer " + token}
	for _, path := range []string{"/monitor/api/queues/taskrace:pause", "/monitor/api/queues/taskrace:resume"} {
		if res := h.do("POST", path, nil, admin...); res.status >= 300 {
			t.Errorf("admin POST %s = %d %s", path, res.status, res.body)
		}
	}
	for i := len(monitorWrites) - 1; i >= 0; i-- { // deleting the queue last
		w := monitorWrites[i]
		res := h.do(w.method, "/monitor/api"+w.path, "{}", admin...)
		if res.status == http.StatusForbidden || res.status == http.StatusUnauthorized || res.status == http.StatusMethodNotAllowed {
			t.Errorf("admin %s %s refused: %d %s", w.method, w.path, res.status, res.body)
		}
	}
}

func TestMonitorSaysEmbeddedRedisHasNoFigures(t *testing.T) {
	t.Parallel()
	m, err := app.StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := app.OpenRedis(m.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	core := app.NewCore(app.DefaultConfig(), r, logger)
	srv := New(core, Config{Embedded: true}, logger)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(t.Context())
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/monitor/api/redis_info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		Info map[string]string `json:"info"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	for _, k := range monitorRedisFields {
		if v := info.Info[k]; v == "" || v == "undefined" {
			t.Errorf("redis_info %s = %q: the page would show undefined", k, v)
		}
	}
	if info.Info["connected_clients"] == noFigures || info.Info["connected_clients"] == "" {
		t.Errorf("connected_clients = %q, want the figure embedded Redis does report", info.Info["connected_clients"])
	}
	for k := range info.Info {
		if strings.ContainsAny(k, "#\n") {
			t.Errorf("INFO parsed into a key %q", k)
		}
	}
	if info.Info["used_memory_human"] != noFigures {
		t.Errorf("used_memory_human = %q, want it to say embedded Redis has no such figure", info.Info["used_memory_human"])
	}
}

// TestMonitorPagesAreBounded: a page of the monitor lists at most monitorPageMax tasks,
// whatever size a client asks for.
func TestMonitorPagesAreBounded(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 150, "delay_ms": 30_000})
	defer h.do("POST", "/api/runs/"+r.ID+"/cancel", nil)
	for _, q := range []string{"size=-1&page=-1", "size=100000", "size=x", "size=0"} {
		var got struct {
			Tasks []json.RawMessage `json:"tasks"`
		}
		res := h.get("/monitor/api/queues/" + h.core.Config.Queue + "/pending_tasks?" + q)
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d %s", q, res.status, res.body)
		}
		res.json(t, &got)
		if len(got.Tasks) == 0 || len(got.Tasks) > monitorPageMax {
			t.Errorf("%s: %d tasks in a page, want 1 to %d", q, len(got.Tasks), monitorPageMax)
		}
	}
}
