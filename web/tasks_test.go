package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/live"
)

// foreignApp is another asynq application on the harness's Redis, recorded with package
// live: email:send always fails (one retry), image:resize fails once and then succeeds.
func foreignApp(t *testing.T, h *harness, queue string, n int) {
	t.Helper()
	opt := h.core.Redis.Opt
	rec, err := live.NewRecorder(opt, live.Options{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: 2, Queues: map[string]int{queue: 1},
		TaskCheckInterval: 5 * time.Millisecond, DelayedTaskCheckInterval: 50 * time.Millisecond,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return 0 }, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.Use(rec.Middleware)
	mux.HandleFunc("email:send", func(context.Context, *asynq.Task) error { return errors.New("smtp: connection refused") })
	mux.HandleFunc("image:resize", func(ctx context.Context, _ *asynq.Task) error {
		if n, _ := asynq.GetRetryCount(ctx); n == 0 {
			return errors.New("cache cold")
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		rec.Close()
	})
	c := asynq.NewClient(opt)
	defer c.Close()
	for i := range n {
		for _, task := range []struct {
			typ      string
			maxRetry int
		}{{"email:send", 1}, {"image:resize", 3}} {
			id := fmt.Sprintf("%s-%d", strings.Split(task.typ, ":")[0], i)
			if _, err := c.Enqueue(live.NewTask(task.typ, nil), asynq.Queue(queue), asynq.TaskID(id), asynq.MaxRetry(task.maxRetry)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// openStream opens an event stream at path; header pairs are added to the request.
func (h *harness) openStream(path string, header ...string) *sseStream {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+path, nil)
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
		h.t.Fatalf("GET %s: %v", path, err)
	}
	s := &sseStream{resp: resp, sc: bufio.NewScanner(resp.Body), cancel: cancel}
	h.t.Cleanup(s.close)
	return s
}

// taskEvent decodes the data of a task event frame.
func taskEvent(t *testing.T, e sseEvent) live.Event {
	t.Helper()
	var ev live.Event
	if err := json.Unmarshal([]byte(e.Data), &ev); err != nil {
		t.Fatalf("event data is not JSON: %v: %s", err, e.Data)
	}
	ev.ID = e.ID
	return ev
}

// untilEnded reads a task event stream until n tasks have ended for good.
func untilEnded(t *testing.T, s *sseStream, n int) []sseEvent {
	t.Helper()
	var evs []sseEvent
	ended := 0
	for ended < n {
		e, ok := s.next(t)
		if !ok {
			t.Fatalf("the stream ended after %d events, %d tasks ended", len(evs), ended)
		}
		evs = append(evs, e)
		if ev := taskEvent(t, e); ev.State == "done" || ev.State == "failed" {
			ended++
		}
	}
	return evs
}

func TestRecordedTasksAPI(t *testing.T) {
	t.Parallel()
	h := start(t)
	const queue = "foreign"
	stream := h.openStream("/api/tasks/events?after=0-0&q=" + url.QueryEscape("queue:"+queue))
	if stream.resp.StatusCode != http.StatusOK || stream.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("task events: %d %s", stream.resp.StatusCode, stream.resp.Header.Get("Content-Type"))
	}
	foreignApp(t, h, queue, 3)
	evs := untilEnded(t, stream, 6)
	// Two attempts of six tasks, each ended once; a start comes as a fact of its own unless
	// it was written with its end (see live.Fact).
	ends := 0
	for i, e := range evs {
		ev := taskEvent(t, e)
		if ev.Kind == live.KindEnded {
			ends++
		}
		if e.Type != "task."+ev.Kind || ev.Queue != queue || (i > 0 && app.CompareIDs(evs[i-1].ID, e.ID) >= 0) {
			t.Errorf("event %d: %s %s of %s/%s, ID %s after %s", i, e.Type, ev.Kind, ev.Queue, ev.TaskID, e.ID, evs[max(i-1, 0)].ID)
		}
	}
	if ends != 12 || len(evs) > 24 {
		t.Errorf("%d events, %d of them ends, before every task ended; want 12 ends and at most 12 starts", len(evs), ends)
	}
	// The reader has them all once the stream delivered them; the list may lag by a batch.
	h.eventually(5*time.Second, "the list to hold every ended task", func() bool {
		var l TaskList
		res := h.get("/api/tasks?q=state:done,failed")
		json.Unmarshal(res.body, &l)
		return l.Total == 6
	})

	var all TaskList
	h.get("/api/tasks").json(t, &all)
	if all.Total != 6 || len(all.Tasks) != 6 || all.Counts["failed"] != 3 || all.Counts["done"] != 3 || all.Next != nil {
		t.Fatalf("GET /api/tasks: total %d, %d tasks, counts %v, next %v", all.Total, len(all.Tasks), all.Counts, all.Next)
	}
	for _, task := range all.Tasks {
		want := map[string]string{"email:send": "failed", "image:resize": "done"}[task.Type]
		if task.State != want || task.Attempts != 2 || task.Queue != queue || task.ID == "" || task.History != nil {
			t.Errorf("%s %s: state %s, %d attempts; want %s after 2 (and no history in a list)", task.Type, task.ID, task.State, task.Attempts, want)
		}
	}
	for q, want := range map[string]int{
		"state:failed": 3, "type:image:*": 3, "type:email:send state:done": 0, "retried:yes": 6,
		"refused": 3, "image-2": 1, "queue:" + queue: 6, "queue:other": 0,
		"worker:" + all.Tasks[0].Worker.Host: 6,
	} {
		var l TaskList
		res := h.get("/api/tasks?q=" + url.QueryEscape(q))
		if res.status != http.StatusOK {
			t.Fatalf("q=%s: %d %s", q, res.status, res.body)
		}
		res.json(t, &l)
		if l.Total != want || len(l.Tasks) != want {
			t.Errorf("q=%s: %d tasks (total %d), want %d", q, len(l.Tasks), l.Total, want)
		}
	}
	var first, second TaskList
	h.get("/api/tasks?limit=4").json(t, &first)
	if len(first.Tasks) != 4 || first.Next == nil {
		t.Fatalf("first page: %d tasks, next %v", len(first.Tasks), first.Next)
	}
	h.get("/api/tasks?limit=4&cursor="+url.QueryEscape(*first.Next)).json(t, &second)
	if len(second.Tasks) != 2 || second.Next != nil || second.Tasks[1].ID != all.Tasks[5].ID {
		t.Errorf("second page: %d tasks, next %v", len(second.Tasks), second.Next)
	}

	var d live.Task
	res := h.get("/api/tasks/" + queue + "/email-0")
	if res.status != http.StatusOK {
		t.Fatalf("GET /api/tasks/%s/email-0: %d %s", queue, res.status, res.body)
	}
	res.json(t, &d)
	if d.State != "failed" || len(d.History) != 2 || !d.History[0].Retry || d.History[1].Retry || d.Error != "smtp: connection refused" {
		t.Errorf("email-0: %+v", d)
	}
	h.get("/api/tasks/other/email-0").problem(t, http.StatusNotFound)
	h.get("/api/tasks/"+queue+"/email-0?execution=2").problem(t, http.StatusNotFound)

	// taskrace's own task route keeps answering beside the recorded ones.
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0})
	h.follow(r.ID)
	var own TaskDetail
	h.get("/api/tasks/"+app.TaskID(r.ID, 0)).json(t, &own)
	if own.RunID != r.ID || own.State != app.TaskStateDone {
		t.Errorf("GET /api/tasks/{task_id} of a run: %+v", own)
	}

	// Resuming with Last-Event-ID delivers exactly what followed that event.
	resumed := h.openStream("/api/tasks/events?q="+url.QueryEscape("queue:"+queue), "Last-Event-ID", evs[9].ID)
	for i, want := range evs[10:] {
		got, ok := resumed.next(t)
		if !ok || got.ID != want.ID || got.Data != want.Data {
			t.Fatalf("resumed event %d: %v %s, want %s", i, ok, got.ID, want.ID)
		}
	}
	// A filtered stream delivers only what its query selects.
	failed := h.openStream("/api/tasks/events?after=0-0&q=state:failed")
	for range 3 {
		e, _ := failed.next(t)
		if ev := taskEvent(t, e); ev.State != "failed" || ev.Type != "email:send" {
			t.Errorf("state:failed stream delivered %s in state %s", ev.Type, ev.State)
		}
	}

	// The recorder writes the aggregates every 100 ms or so.
	got := map[string]live.TypeStats{}
	h.eventually(5*time.Second, "the aggregates of every attempt", func() bool {
		var st live.Stats
		h.get("/api/stats?window=5m&minutes=true").json(t, &st)
		for _, s := range st.Types {
			got[s.Type+" on "+s.Queue] = s
		}
		return got["email:send on "+queue].Started+got["image:resize on "+queue].Started == 12
	})
	if s := got["email:send on "+queue]; s.Started != 6 || s.Failed != 3 || s.Retried != 3 || len(s.Minutes) == 0 {
		t.Errorf("stats of email:send: %+v", s)
	}
	if s := got["image:resize on "+queue]; s.Succeeded != 3 || s.Retried != 3 || s.Wait.Count != 3 {
		t.Errorf("stats of image:resize: %+v", s)
	}
	metrics := string(h.get("/metrics").body)
	for _, line := range []string{`taskrace_live_attempts_started_total{queue="foreign",type="email:send"} 6`,
		`taskrace_live_attempts_ended_total{exit="success",queue="foreign",type="image:resize"} 3`,
		`taskrace_live_tasks_failed_total{queue="foreign",type="email:send"} 3`,
		`taskrace_live_attempt_duration_seconds_count{queue="foreign",type="image:resize"} 6`} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

// The aggregates are kept by type and queue: the same type on two queues is two entries of
// /api/stats, two rows and charts of /stats and two series of /metrics, each with its own
// counts; and so are taskrace's own tasks, of one type on a queue per mode.
func TestStatsByQueue(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker(), withAppConfig(func(c *app.Config) { c.RetryDelay = 10 * time.Millisecond }))
	foreignApp(t, h, "mail-a", 2)
	foreignApp(t, h, "mail-b", 1)
	for _, plan := range []map[string]any{{"mode": "sequential", "tasks": 1}, {"mode": "concurrent", "tasks": 2, "parallelism": 2},
		{"mode": "distributed", "tasks": 3}} {
		plan["delay_ms"], plan["failure_rate"] = 0, 1
		h.follow(h.launch(plan).ID)
	}
	// Per series: attempts started, succeeded, retried, failed.
	want := map[string][4]int64{
		"email:send on mail-a": {4, 0, 2, 2}, "email:send on mail-b": {2, 0, 1, 1},
		"image:resize on mail-a": {4, 2, 2, 0}, "image:resize on mail-b": {2, 1, 1, 0},
		// failure_rate 1 fails every first attempt; taskrace retries it.
		"taskrace:fetch on taskrace:sequential": {2, 1, 1, 0}, "taskrace:fetch on taskrace:concurrent": {4, 2, 2, 0},
		"taskrace:fetch on taskrace": {6, 3, 3, 0},
	}
	counts := func(st live.Stats) map[string][4]int64 {
		got := map[string][4]int64{}
		for _, s := range st.Types {
			got[s.Type+" on "+s.Queue] = [4]int64{s.Started, s.Succeeded, s.Retried, s.Failed}
		}
		return got
	}
	var got map[string][4]int64
	h.eventually(10*time.Second, "the aggregates of every series", func() bool {
		var st live.Stats
		h.get("/api/stats?window=15m").json(t, &st)
		got = counts(st)
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("/api/stats:\n%v\nwant\n%v", got, want)
	}

	// One queue's entries, for any spelling of its name; a queue with none has none.
	for q, want := range map[string][]string{"mail-b": {"email:send on mail-b", "image:resize on mail-b"},
		"taskrace:sequential": {"taskrace:fetch on taskrace:sequential"}, "mail": nil, "MAIL-B": nil, "mail-b ": nil, "mail-*": nil} {
		var st live.Stats
		res := h.get("/api/stats?queue=" + url.QueryEscape(q))
		res.json(t, &st)
		var names []string
		for _, s := range st.Types {
			names = append(names, s.Type+" on "+s.Queue)
		}
		if res.status != http.StatusOK || st.Types == nil || fmt.Sprint(names) != fmt.Sprint(want) {
			t.Errorf("/api/stats?queue=%s: %d, %v; want %v", q, res.status, names, want)
		}
	}
	h.get("/api/stats?queue="+strings.Repeat("q", 1001)).problem(t, http.StatusUnprocessableEntity)

	// /stats: a row and a chart per series.
	page := string(h.get("/stats?window=15m").body)
	for series := range want {
		typ, queue, _ := strings.Cut(series, " on ")
		row := fmt.Sprintf(`data-stat-type="%s" data-stat-queue="%s"`, typ, queue)
		chart := fmt.Sprintf(`data-chart-type="%s" data-chart-queue="%s"`, typ, queue)
		if strings.Count(page, row) != 1 || strings.Count(page, chart) != 1 {
			t.Errorf("/stats: %d rows and %d charts of %s, want one each", strings.Count(page, row), strings.Count(page, chart), series)
		}
	}
	if n := strings.Count(page, "data-stat-type="); n != len(want) {
		t.Errorf("/stats: %d rows, want %d", n, len(want))
	}
	rowB := regexp.MustCompile(`data-stat-type="email:send" data-stat-queue="mail-b".*?</tr>`).FindString(page)
	if !strings.Contains(rowB, `data-processed="2"`) || !strings.Contains(rowB, `data-failed="1"`) ||
		!strings.Contains(rowB, `href="/tasks?q=type%3Aemail%3Asend+queue%3Amail-b"`) {
		t.Errorf("/stats: email:send on mail-b reads %s", text(rowB))
	}

	// /metrics: a series per type and queue.
	metrics := string(h.get("/metrics").body)
	for _, line := range []string{`taskrace_live_attempts_started_total{queue="mail-a",type="email:send"} 4`,
		`taskrace_live_attempts_started_total{queue="mail-b",type="email:send"} 2`,
		`taskrace_live_tasks_failed_total{queue="mail-b",type="email:send"} 1`,
		`taskrace_live_attempts_ended_total{exit="success",queue="taskrace:concurrent",type="taskrace:fetch"} 2`,
		`taskrace_live_attempts_retried_total{queue="taskrace",type="taskrace:fetch"} 3`,
		`taskrace_live_attempt_duration_seconds_count{queue="mail-a",type="image:resize"} 4`,
		`taskrace_live_task_wait_seconds_count{queue="mail-b",type="image:resize"} 1`} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	if regexp.MustCompile(`(?m)^taskrace_live_attempts_started_total\{type=`).MatchString(metrics) {
		t.Error("/metrics has a series without the queue label")
	}
}

func TestRecordedTasksBadInput(t *testing.T) {
	t.Parallel()
	h := start(t)
	for path, status := range map[string]int{
		"/api/tasks?q=" + url.QueryEscape("state:succeeded"): http.StatusBadRequest,
		"/api/tasks?q=" + url.QueryEscape("color:red"):       http.StatusBadRequest,
		"/api/tasks?q=" + url.QueryEscape(`"open`):           http.StatusBadRequest,
		"/api/tasks?cursor=page2":                            http.StatusUnprocessableEntity,
		"/api/tasks?limit=0":                                 http.StatusUnprocessableEntity,
		"/api/tasks?limit=1001":                              http.StatusUnprocessableEntity,
		"/api/stats?window=48h":                              http.StatusUnprocessableEntity,
		"/api/stats?window=soon":                             http.StatusUnprocessableEntity,
		"/api/tasks/events?q=" + url.QueryEscape("state:x"):  http.StatusBadRequest,
		"/api/tasks/events?after=yesterday":                  http.StatusBadRequest,
		"/api/tasks/q/none":                                  http.StatusNotFound,
	} {
		p := h.get(path).problem(t, status)
		if status != http.StatusNotFound && len(p.Errors) == 0 {
			t.Errorf("%s: the problem names no field: %+v", path, p)
		}
	}
	var empty TaskList
	h.get("/api/tasks").json(t, &empty)
	if empty.Tasks == nil || empty.Total != 0 {
		t.Errorf("no recorded tasks: %+v, want an empty list", empty)
	}
}

// With ADMIN_TOKEN set, recorded tasks are the admin's, in every spelling of their routes,
// unless PUBLIC_TASKS; taskrace's own runs stay public.
func TestRecordedTasksAccess(t *testing.T) {
	t.Parallel()
	restrictedPaths := []string{"/api/tasks", "/api/tasks/events", "/api/tasks/q/x", "/api/stats"}
	h := start(t, withWebConfig(func(c *Config) { c.AdminToken = speakerToken }))
	foreignApp(t, h, "foreign", 1)
	admin := []string{"Authorization", "Bearer " + speakerToken}
	for _, p := range restrictedPaths {
		for _, sp := range spellings(p) {
			for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Cookie", sessionCookie + "=forged"},
				{"Sec-Fetch-Site", "same-origin", "Cookie", sessionCookie + "=forged"}} {
				status, _, body := rawExchange(t, h.base, "GET", sp+"?q=", hdr, "", true)
				switch {
				case sp == p && status != http.StatusUnauthorized:
					t.Errorf("GET %s %v: %d, want 401", sp, hdr, status)
				case status != http.StatusUnauthorized && status != http.StatusNotFound:
					t.Errorf("GET %s %v: %d, want 401 (or 404 for a spelling that is no route): %.200s", sp, hdr, status, body)
				case strings.Contains(string(body), "foreign"):
					t.Errorf("GET %s %v leaked a recorded task: %.200s", sp, hdr, body)
				}
			}
		}
		if p == "/api/tasks/events" {
			s := h.openStream(p, admin...)
			if s.resp.StatusCode != http.StatusOK {
				t.Errorf("the admin's GET %s: %d", p, s.resp.StatusCode)
			}
			s.close()
			continue
		}
		if res := h.get(p, admin...); res.status != http.StatusOK && res.status != http.StatusNotFound {
			t.Errorf("the admin's GET %s: %d %s", p, res.status, res.body)
		}
	}
	if res := h.get("/api/runs"); res.status != http.StatusOK {
		t.Errorf("GET /api/runs anonymously: %d, want 200: runs stay public", res.status)
	}
	h.eventually(10*time.Second, "the foreign tasks' aggregates", func() bool {
		return strings.Contains(string(h.get("/metrics", admin...).body), "taskrace_live_attempts_started_total")
	})
	if strings.Contains(string(h.get("/metrics").body), "taskrace_live_") {
		t.Error("anonymous /metrics carries the recorded tasks' aggregates")
	}
	var doc map[string]any
	h.get("/openapi.json").json(t, &doc)
	paths := doc["paths"].(map[string]any)
	for _, p := range []string{"/api/tasks", "/api/tasks/events", "/api/tasks/{queue}/{id}", "/api/stats"} {
		op, _ := paths[p].(map[string]any)["get"].(map[string]any)
		if sec, _ := json.Marshal(op["security"]); !strings.Contains(string(sec), bearerScheme) {
			t.Errorf("%s: security %s, want the admin's token", p, sec)
		}
	}

	open := start(t, withWebConfig(func(c *Config) { c.AdminToken = speakerToken; c.PublicTasks = true }))
	for _, p := range []string{"/api/tasks", "/api/stats", "/api/tasks/q/x"} {
		if res := open.get(p); res.status != http.StatusOK && res.status != http.StatusNotFound {
			t.Errorf("PUBLIC_TASKS: GET %s anonymously: %d", p, res.status)
		}
	}
	if !strings.Contains(string(open.get("/metrics").body), "taskrace_live_up 1") {
		t.Error("PUBLIC_TASKS: anonymous /metrics lacks the recorded tasks' metrics")
	}
}
