package web

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/static"
	"github.com/taskrace/taskrace/templates"
)

// outsideHost matches a URL or protocol-relative reference to a named host.
var outsideHost = regexp.MustCompile(`(?i)(?:https?:)?//(?:[a-z0-9-]+\.)+[a-z]{2,}`)

var (
	cssComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	xmlns      = regexp.MustCompile(`xmlns(?::\w+)?="[^"]*"`)
)

// postForm posts a form as a page of ours does, without following the redirect.
func (h *harness) postForm(path string, values url.Values) *response {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.base+path, strings.NewReader(values.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", h.base)
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: body}
}

func TestPagesAndAssetsNameNoOutsideHost(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker(), withWebConfig(func(c *Config) { c.Embedded = true }))
	a := h.launch(map[string]any{"mode": "distributed", "tasks": 3, "delay_ms": 10})
	b := h.launch(map[string]any{"mode": "sequential", "tasks": 2, "delay_ms": 10})
	h.follow(a.ID)
	h.follow(b.ID)
	pages := []string{"/", "/runs", "/runs/" + a.ID, "/runs/" + a.ID + "?present=1", "/compare?runs=" + a.ID + "," + b.ID, "/compare", "/docs", "/partials/capacity"}
	for _, p := range pages {
		res := h.get(p)
		if res.status != http.StatusOK {
			t.Errorf("GET %s: %d", p, res.status)
		}
		if m := outsideHost.FindString(string(res.body)); m != "" {
			t.Errorf("%s names an outside host: %s", p, m)
		}
	}
	// Our own assets name no host; vendored ones are checked for what would load from one
	// (the browser tests also run with every outside host unreachable).
	loads := regexp.MustCompile(`(?i)(?:@import|url\(\s*['"]?(?:https?:)?//|<script[^>]+src=["']?(?:https?:)?//)`)
	fs.WalkDir(static.FS, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(name, ".txt") || strings.HasSuffix(name, ".md") {
			return err
		}
		res := h.get(static.Path(name))
		if res.status != http.StatusOK {
			t.Errorf("GET %s: %d", static.Path(name), res.status)
			return nil
		}
		body := string(res.body)
		if strings.HasPrefix(name, "vendor/") {
			if m := loads.FindString(body); m != "" {
				t.Errorf("%s loads from an outside host: %s", name, m)
			}
			return nil
		}
		// A licence banner in a comment and an XML namespace name a host but load nothing.
		body = cssComment.ReplaceAllString(body, "")
		body = xmlns.ReplaceAllString(body, "")
		if m := outsideHost.FindString(body); m != "" {
			t.Errorf("%s names an outside host: %s", name, m)
		}
		return nil
	})
}

func TestPageFormsShowErrorsOnThePage(t *testing.T) {
	t.Parallel()
	h := start(t)
	res := h.postForm("/runs", url.Values{"mode": {"concurrent"}, "tasks": {"0"}, "delay": {"1"}, "parallelism": {"2"}})
	if res.status != http.StatusUnprocessableEntity || !strings.Contains(string(res.body), "tasks: must be between 1 and 10000; got 0") ||
		!strings.Contains(res.header.Get("Content-Type"), "text/html") {
		t.Errorf("bad launch form: %d %s", res.status, res.body)
	}
	// No worker: a distributed launch says how to start one, on the dashboard.
	res = h.postForm("/runs", url.Values{"mode": {"distributed"}, "tasks": {"2"}, "delay": {"0.1"}})
	if res.status != http.StatusServiceUnavailable || !strings.Contains(string(res.body), "taskrace worker") || !strings.Contains(string(res.body), `id="launch"`) {
		t.Errorf("distributed launch without a worker: %d %s", res.status, res.body)
	}
	res = h.postForm("/race", url.Values{"tasks": {"2"}, "delay": {"0.1"}})
	if res.status != http.StatusServiceUnavailable {
		t.Errorf("race without a worker: %d", res.status)
	}
	if n, _ := h.core.Runs.ActiveCount(t.Context()); n != 0 {
		t.Errorf("%d runs left running by refused launches", n)
	}
	res = h.get("/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV")
	if res.status != http.StatusNotFound || !strings.Contains(string(res.body), "not found") || !strings.Contains(string(res.body), "<nav") {
		t.Errorf("unknown run page: %d %s", res.status, res.body)
	}
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 1})
	h.follow(r.ID)
	res = h.postForm("/runs/"+r.ID+"/cancel", nil)
	if res.status != http.StatusConflict || !strings.Contains(string(res.body), "already ended") {
		t.Errorf("canceling an ended run from its page: %d %s", res.status, res.body)
	}
	if res := h.get("/runs?mode=fast"); res.status != http.StatusUnprocessableEntity || !strings.Contains(string(res.body), "mode: must be one of") {
		t.Errorf("bad filter: %d", res.status)
	}
	if res := h.get("/compare?runs=nope"); res.status != http.StatusUnprocessableEntity {
		t.Errorf("bad compare: %d", res.status)
	}
}

func TestPageFormsLaunchCancelAndPin(t *testing.T) {
	t.Parallel()
	h := start(t)
	res := h.postForm("/runs", url.Values{"mode": {"sequential"}, "tasks": {"3"}, "delay": {"2"}})
	loc := res.header.Get("Location")
	if res.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/runs/") {
		t.Fatalf("launch form: %d Location %q", res.status, loc)
	}
	id := strings.TrimPrefix(loc, "/runs/")
	if res := h.postForm("/runs/"+id+"/cancel", nil); res.status != http.StatusSeeOther {
		t.Fatalf("cancel form: %d %s", res.status, res.body)
	}
	if res := h.postForm("/runs/"+id+"/pin", url.Values{"pinned": {"1"}}); res.status != http.StatusSeeOther {
		t.Fatalf("pin form: %d %s", res.status, res.body)
	}
	got := h.apiRun(id).Run
	if got.Status != app.StatusCanceled || !got.Pinned {
		t.Errorf("after cancel and pin: status %s, pinned %v", got.Status, got.Pinned)
	}
	page := string(h.get("/runs/" + id).body)
	for _, want := range []string{`data-status="canceled"`, "Pinned: unpin", "Replay 4×", `property="og:description"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the canceled run's page lacks %s", want)
		}
	}
	if strings.Contains(page, "data-stream-url") {
		t.Error("an ended run's page follows its stream")
	}
}

func TestRunPageUsesThePublicURL(t *testing.T) {
	t.Parallel()
	h := start(t, withWebConfig(func(c *Config) { c.PublicURL = "http://192.168.1.20:8080/" }))
	r, err := h.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Sequential, Tasks: 1, DelayMS: 1})
	if err != nil {
		t.Fatal(err)
	}
	h.follow(r.ID)
	page := string(h.get("/runs/" + r.ID).body)
	want := "http://192.168.1.20:8080/runs/" + r.ID
	if !strings.Contains(page, `property="og:url" content="`+want+`"`) || !strings.Contains(page, `data-copy="`+want+`"`) ||
		!strings.Contains(page, "QR code of "+want) {
		t.Errorf("the run page does not share %s", want)
	}
	if !strings.Contains(page, "Sequential · 1 task · ") {
		t.Error("no Open Graph line like Sequential · 1 task · 0.01 s")
	}
}

func TestHTMLStreamResumesAndEnds(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 4, "delay_ms": 20})
	evs := h.follow(r.ID)
	last := evs[len(evs)-1].ID
	// Whole stream: every started/ended task has its row, and the end frame comes last.
	s := h.openPath("/runs/" + r.ID + "/stream")
	frames := s.all(t)
	if len(frames) == 0 || frames[len(frames)-1].Type != "end" || frames[len(frames)-1].ID != last {
		t.Fatalf("the HTML stream does not end on its terminal event: %+v", frames[max(0, len(frames)-1):])
	}
	rows := 0
	for _, f := range frames {
		rows += strings.Count(f.Data, `<tr id="task-`+r.ID)
	}
	if rows != 8 { // started and finished, for each of 4 tasks
		t.Errorf("%d row fragments, want 8", rows)
	}
	if end := frames[len(frames)-1].Data; strings.Count(end, `<i hidden data-row="task-`+r.ID) != 4 || strings.Count(end, `data-steps="0 queued;`) != 4 {
		t.Errorf("the end frame does not give every row its steps: %s", end)
	}
	// Resuming at the terminal event: 204, so EventSource stops.
	if res := h.get("/runs/"+r.ID+"/stream", "Last-Event-ID", last); res.status != http.StatusNoContent {
		t.Errorf("resume at the end: %d", res.status)
	}
	if res := h.get("/runs/" + r.ID + "/stream?after=" + frames[0].ID); res.status != http.StatusOK ||
		strings.Count(string(res.body), "id: ") != len(frames)-1 {
		t.Errorf("resume after the first frame: %d, %d frames, want %d", res.status, strings.Count(string(res.body), "id: "), len(frames)-1)
	}
}

func TestHTMLStreamCoalescesLargeRuns(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 300, "delay_ms": 1})
	s := h.openPath("/runs/" + r.ID + "/stream")
	frames := s.all(t)
	evs := h.follow(r.ID)
	if frames[len(frames)-1].Type != "end" {
		t.Fatalf("no end frame")
	}
	// 300 tasks make 600 task events; batched about ten times a second, far fewer frames.
	if len(frames) > 100 {
		t.Errorf("%d frames for %d events: not coalesced", len(frames), len(evs))
	}
	done := map[string]bool{}
	re := regexp.MustCompile(`<tr id="(task-[^"]+)"[^>]*data-state="done"`)
	for _, f := range frames {
		for _, m := range re.FindAllStringSubmatch(f.Data, -1) {
			done[m[1]] = true
		}
	}
	// The stream sends the rows of its page of the task list only.
	if len(done) != tasksPerPage || !done[templates.RowID(r.ID, 0)] || done[templates.RowID(r.ID, tasksPerPage)] {
		t.Errorf("%d tasks of the first page reached done in the stream, want %d", len(done), tasksPerPage)
	}
	// Every viewer gets the whole timeline, its bars as data (templates.BarData): each
	// attempt reaches its end, and no bar comes as HTML.
	bars := regexp.MustCompile(`<i id="(bar-` + r.ID + `-\d+-\d+)" data-bar="\w+ done `)
	second, ended := map[string]bool{}, map[string]bool{}
	for _, f := range h.openPath("/runs/" + r.ID + "/stream?page=2").all(t) {
		for _, m := range re.FindAllStringSubmatch(f.Data, -1) {
			second[m[1]] = true
		}
		for _, m := range bars.FindAllStringSubmatch(f.Data, -1) {
			ended[m[1]] = true
		}
		if strings.Contains(f.Data, "<rect") {
			t.Errorf("a big run's stream sends a bar as HTML: %.200s", f.Data)
		}
	}
	if len(ended) != 300 {
		t.Errorf("%d bars reached done in the second page's stream, want all 300", len(ended))
	}
	if len(second) != 300-tasksPerPage || !second[templates.RowID(r.ID, 299)] {
		t.Errorf("%d tasks of the second page reached done in its stream, want %d", len(second), 300-tasksPerPage)
	}
	page := string(h.get("/runs/" + r.ID).body)
	if n := strings.Count(page, `<tr id="task-`); n != tasksPerPage {
		t.Errorf("the page lists %d rows, want a window of %d", n, tasksPerPage)
	}
	if n := strings.Count(page, `<rect id="bar-`); n != 300 {
		t.Errorf("the timeline has %d bars, want all 300", n)
	}
}

// openPath opens an event stream at path.
func (h *harness) openPath(path string) *sseStream {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		h.t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		h.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	s := &sseStream{resp: resp, sc: bufio.NewScanner(resp.Body), cancel: cancel}
	s.sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	h.t.Cleanup(s.close)
	return s
}

func TestHTMLStreamPings(t *testing.T) {
	t.Parallel()
	h := start(t, withPingEvery(20*time.Millisecond))
	r, err := h.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Sequential, Tasks: 1, DelayMS: 300})
	if err != nil {
		t.Fatal(err)
	}
	s := h.openPath("/runs/" + r.ID + "/stream")
	frames := s.all(t)
	// A ping carries the server's time since the run was created, for the page's clock.
	sync := regexp.MustCompile(`^<i hidden data-sync="` + r.ID + `" data-at-ms="([0-9.]+)"></i>$`)
	pings := 0
	for _, f := range frames {
		if f.Type == "ping" {
			if m := sync.FindStringSubmatch(f.Data); m == nil || mustFloat(t, m[1]) <= 0 || mustFloat(t, m[1]) > 10_000 {
				t.Errorf("a ping carries %q, want the server's time since the run began", f.Data)
			}
			pings++
		}
	}
	if pings == 0 {
		t.Error("no ping while the task ran")
	}
	if frames[len(frames)-1].Type != "end" {
		t.Error("no end frame")
	}
}

func TestHTMLStreamEndsOnShutdown(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 20_000})
	s := h.openPath("/runs/" + r.ID + "/stream")
	h.eventually(5*time.Second, "the stream to subscribe", func() bool { return h.core.Feed.Subscribers() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	s.all(t) // ends: the server closed the stream
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("the stream outlived Shutdown by %s", took)
	}
}

func TestHTMLStreamNoticesAClientThatLeft(t *testing.T) {
	t.Parallel()
	h := start(t, withPingEvery(20*time.Millisecond))
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 20_000})
	s := h.openPath("/runs/" + r.ID + "/stream")
	h.eventually(5*time.Second, "the stream to subscribe", func() bool { return h.core.Feed.Subscribers() == 1 })
	s.close()
	h.eventually(5*time.Second, "the stream to notice its client left", func() bool { return h.core.Feed.Subscribers() == 0 })
}

// orphanedRun stores a running distributed run whose tasks went to two worker processes:
// this one (alive: the core keeps its heartbeat) with tasks 0 (done) and 1, and one that
// stopped heartbeating with tasks 2 (still leased by asynq, until the returned time) and 3
// (already requeued). Lost workers are found as app.MarkOrphans finds them.
func orphanedRun(t *testing.T, h *harness) (*app.Run, time.Time) {
	t.Helper()
	ctx := t.Context()
	live := h.core.Worker(0)
	gone := app.Worker{Host: "lost", PID: 42, Slot: 1, Proc: "01NOSUCHPROCESS"}
	now := time.Now().UTC().Truncate(time.Second)
	r := &app.Run{ID: app.NewRunID(), Plan: app.Plan{Mode: app.Distributed, Tasks: 4, DelayMS: 1000, Parallelism: 4,
		Target: app.BuiltinTarget}, Status: app.StatusRunning, CreatedAt: app.Time{Time: now.Add(-5 * time.Second)}, IdealMS: 1000}
	if err := h.core.Runs.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	at := app.Time{Time: now.Add(-4 * time.Second)}
	dur := 1000.0
	ev := func(typ string, i int, w app.Worker) *app.Event {
		e := &app.Event{Type: typ, RunID: r.ID, At: at, Index: &i, TaskID: app.TaskID(r.ID, i), Worker: &w, Attempt: 1}
		if typ == app.TaskFinished {
			e.DurationMS, e.Status = &dur, http.StatusOK
		}
		return e
	}
	if err := h.core.Log.AppendAll(ctx, []*app.Event{
		ev(app.TaskStarted, 0, live), ev(app.TaskFinished, 0, live),
		ev(app.TaskStarted, 1, live),
		ev(app.TaskStarted, 2, gone),
		ev(app.TaskStarted, 3, gone),
	}); err != nil {
		t.Fatal(err)
	}
	lease := now.Add(20 * time.Second)
	if err := h.core.Redis.Client.ZAdd(ctx, "asynq:{"+h.core.Config.Queue+"}:lease",
		redis.Z{Score: float64(lease.Unix()), Member: app.TaskID(r.ID, 2)}).Err(); err != nil {
		t.Fatal(err)
	}
	return r, lease
}

func TestRunPageShowsWorkerLoss(t *testing.T) {
	t.Parallel()
	h := start(t)
	r, lease := orphanedRun(t, h)
	live := h.core.Worker(0)
	res := h.get("/runs/" + r.ID)
	if res.status != http.StatusOK {
		t.Fatalf("GET the run page: %d", res.status)
	}
	page := string(res.body)
	row := func(i int) string {
		m := regexp.MustCompile(`(?s)<tr id="` + templates.RowID(r.ID, i) + `".*?</tr>`).FindString(page)
		if m == "" {
			t.Fatalf("no row for task %d", i)
		}
		return m
	}
	clock := func(t time.Time) string { return t.UTC().Format("15:04:05") }
	leased := text(row(2))
	for _, want := range []string{"⚠ orphaned", "worker lost:42 lost", "asynq retries between " +
		clock(lease.Add(30*time.Second)) + " and " + clock(lease.Add(90*time.Second)) + " UTC"} {
		if !strings.Contains(leased, want) {
			t.Errorf("the leased orphan's row lacks %q: %s", want, leased)
		}
	}
	if requeued := text(row(3)); !strings.Contains(requeued, "⚠ orphaned") || !strings.Contains(requeued, "asynq has put it back on the queue") {
		t.Errorf("the requeued orphan's row: %s", requeued)
	}
	for _, i := range []int{0, 1} {
		if strings.Contains(row(i), "orphaned") {
			t.Errorf("task %d, on a live worker, shows as orphaned", i)
		}
	}
	// The tally of tasks per worker process, from the events; the notice above it names the
	// lost one, in words.
	procs := regexp.MustCompile(`(?s)<div id="procs-` + r.ID + `".*?</table>`).FindString(page)
	for _, want := range []string{live.Process() + " 2", "lost:42 2"} {
		if !strings.Contains(text(procs), want) {
			t.Errorf("the workers tally lacks %q: %s", want, text(procs))
		}
	}
	// No event tells a worker's loss: the page refreshes the notice from a partial while the
	// run is live.
	if !strings.Contains(page, `data-poll="/runs/`+r.ID+`/workers"`) {
		t.Error("the live run's page does not refresh its lost workers")
	}
	res = h.get("/runs/" + r.ID + "/workers")
	lines := strings.Split(strings.TrimSpace(string(res.body)), "\n")
	if res.status != http.StatusOK || len(lines) != 1 || !strings.HasPrefix(lines[0], `<div id="lost-`+r.ID+`"`) {
		t.Fatalf("the workers partial: %d %s", res.status, res.body)
	}
	wantLost := "⚠ Worker lost:42 is gone with tasks 2 and 3 in hand. asynq retries between " +
		clock(lease.Add(30*time.Second)) + " and " + clock(lease.Add(90*time.Second)) + " UTC"
	if got := text(lines[0]); !strings.Contains(got, wantLost) {
		t.Errorf("the lost workers read %q, want %q", got, wantLost)
	}
	if notice := regexp.MustCompile(`(?s)<div id="lost-` + r.ID + `".*?</div>`).FindString(page); text(notice) != text(lines[0]) {
		t.Errorf("the partial's notice %q differs from the page's %q", text(lines[0]), text(notice))
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	tags   = regexp.MustCompile(`<[^>]*>`)
	spaces = regexp.MustCompile(`\s+`)
)

// text is HTML's text, tags dropped and white space folded.
func text(html string) string {
	return strings.TrimSpace(spaces.ReplaceAllString(tags.ReplaceAllString(html, " "), " "))
}

func TestDistributedTaskRowsLinkToTheMonitor(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 2, "delay_ms": 10})
	h.follow(r.ID)
	page := string(h.get("/runs/" + r.ID).body)
	for i := range 2 {
		want := `href="/monitor/queues/taskrace/tasks/` + app.TaskID(r.ID, i) + `"`
		if !strings.Contains(page, want) {
			t.Errorf("task %d does not link to the monitor (%s)", i, want)
		}
	}
	seq := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 1})
	h.follow(seq.ID)
	if strings.Contains(string(h.get("/runs/"+seq.ID).body), "/monitor/queues/") {
		t.Error("a sequential run's task links to the monitor, where it never was")
	}
	// The live stream renders rows with the same link.
	frames := h.openPath("/runs/" + r.ID + "/stream").all(t)
	var all strings.Builder
	for _, f := range frames {
		all.WriteString(f.Data)
	}
	if !strings.Contains(all.String(), `href="/monitor/queues/taskrace/tasks/`+app.TaskID(r.ID, 0)+`"`) {
		t.Error("the stream's rows do not link to the monitor")
	}
}

func TestLayoutSaysWhoMayDoWhat(t *testing.T) {
	t.Parallel()
	t.Run("open mode", func(t *testing.T) {
		t.Parallel()
		h := start(t)
		page := text(string(h.get("/").body))
		if !strings.Contains(page, "Open mode: anyone can launch, cancel and change queues (no ADMIN_TOKEN set)") {
			t.Errorf("open mode is not said plainly: %s", page)
		}
		if strings.Contains(page, "Sign in") || strings.Contains(page, "Sign out") {
			t.Error("open mode offers signing in or out")
		}
		for _, want := range []string{`href="/workers"`, `href="/monitor/"`} {
			if !strings.Contains(string(h.get("/").body), want) {
				t.Errorf("the navigation lacks %s", want)
			}
		}
	})
	cases := []struct {
		name        string
		public      bool
		admin       bool
		launch      bool // launch buttons enabled
		note, login bool
	}{
		{name: "visitor", launch: false, note: true, login: true},
		{name: "visitor with PUBLIC_LAUNCH", public: true, launch: true, note: true, login: true},
		{name: "admin", admin: true, launch: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, withWebConfig(func(c *Config) { c.AdminToken = "s3cret"; c.PublicLaunch = tc.public }))
			r, err := h.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Sequential, Tasks: 1, DelayMS: 20_000})
			if err != nil {
				t.Fatal(err)
			}
			var hdr []string
			if tc.admin {
				token, err := h.core.Sessions.Create(t.Context(), "s3cret", time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				hdr = []string{"Cookie", sessionCookie + "=" + token}
			}
			home := string(h.get("/", hdr...).body)
			run := string(h.get("/runs/"+r.ID+"?page=1", hdr...).body)
			if strings.Contains(home, "Open mode") {
				t.Error("with ADMIN_TOKEN set the page says open mode")
			}
			signIn := `href="/login?next=%2Fruns%2F` + r.ID + `%3Fpage%3D1"`
			if got := strings.Contains(run, signIn) && strings.Contains(run, ">Sign in</a>"); got != tc.login {
				t.Errorf("sign-in link to come back (%s): %v, want %v", signIn, got, tc.login)
			}
			if got := strings.Contains(run, `action="/logout"`) && strings.Contains(run, "Sign out"); got != tc.admin {
				t.Errorf("sign-out form: %v, want %v", got, tc.admin)
			}
			if got := strings.Count(home, "disabled") == 0; got != tc.launch {
				t.Errorf("launch buttons enabled: %v, want %v", got, tc.launch)
			}
			if got := strings.Contains(run, "data-access-note"); got != tc.note {
				t.Errorf("a note on why buttons are missing: %v, want %v", got, tc.note)
			}
			want := `data-can-admin="` + templates.Bool01(tc.admin) + `" data-can-launch="` + templates.Bool01(tc.launch) + `"`
			if !strings.Contains(run, want) {
				t.Errorf("the page's body lacks %s", want)
			}
			for _, needs := range []string{`action="/runs/` + r.ID + `/cancel" data-needs="admin"`, `action="/runs" data-needs="launch"`} {
				if !strings.Contains(run, needs) {
					t.Errorf("the run page lacks %s", needs)
				}
			}
		})
	}
}

func TestWorkersPageListsTheLiveWorkers(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 2, "delay_ms": 8000})
	// asynq reports active tasks on its heartbeat, every 5 s.
	var page string
	h.eventually(10*time.Second, "the workers page to show an active task", func() bool {
		page = string(h.get("/workers").body)
		return strings.Contains(page, `data-active-task="`+app.TaskID(r.ID, 0)+`"`)
	})
	host, _ := os.Hostname()
	for _, want := range []string{`data-worker="` + host + ":" + strconv.Itoa(os.Getpid()) + `"`,
		`href="/runs/` + r.ID + `#task-` + r.ID + `-0"`, "js/workers", `aria-current="page"`, "taskrace"} {
		if !strings.Contains(page, want) {
			t.Errorf("the workers page lacks %s", want)
		}
	}
	if !strings.Contains(text(page), "1 worker · 5 slots · 2 tasks active") {
		t.Errorf("the workers page's summary: %s", text(page))
	}
	if _, err := h.core.Launcher.Cancel(t.Context(), r.ID); err != nil {
		t.Fatal(err)
	}
}

// Home compares like with like: the latest run of each mode of one plan, each row naming
// its plan and compared only with an earlier sequential run of that plan.
func TestHomeComparesLikeWithLike(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	run := func(plan map[string]any) *app.Run {
		r := h.launch(plan)
		h.follow(r.ID)
		return r
	}
	p := map[string]any{"tasks": 3, "delay_ms": 20}
	with := func(mode string, extra ...any) map[string]any {
		m := map[string]any{"mode": mode}
		for k, v := range p {
			m[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	a := run(with("sequential"))
	b := run(with("distributed"))
	c := run(with("sequential"))
	page := string(h.get("/").body)
	row := func(id string) string {
		m := regexp.MustCompile(`(?s)<tr id="result-` + id + `".*?</tr>`).FindString(page)
		if m == "" {
			t.Fatalf("no result row for run %s", id)
		}
		return m
	}
	if !strings.Contains(text(page), "Latest run of each mode: 3 tasks × 0.02 s") {
		t.Errorf("Home does not name the plan it compares: %s", text(page))
	}
	for _, id := range []string{b.ID, c.ID} {
		if !strings.Contains(text(row(id)), "3 tasks × 0.02 s") {
			t.Errorf("the row of %s does not name its plan: %s", id, text(row(id)))
		}
	}
	if strings.Contains(page, `id="result-`+a.ID+`"`) {
		t.Error("Home lists an older sequential run besides the latest")
	}
	// The distributed run is compared with the sequential run before it, never the later one.
	if want := "against sequential run " + templates.ShortID(a.ID); !strings.Contains(row(b.ID), want) {
		t.Errorf("the distributed row is not compared with %s: %s", a.ID, row(b.ID))
	}
	if want := "against sequential run " + templates.ShortID(a.ID); !strings.Contains(row(c.ID), want) {
		t.Errorf("the sequential row is not compared with the earlier one: %s", row(c.ID))
	}
	// The chart: ticks from 0 at the start of the track, and the ideal labelled at its line.
	chart := regexp.MustCompile(`(?s)<svg[^>]*data-chart.*?</svg>`).FindString(page)
	if !strings.Contains(chart, `data-tick="0"`) || strings.Count(chart, "data-tick-label") < 3 ||
		!regexp.MustCompile(`<text x="`+templates.F(templates.ChartLeft)+`"[^>]*text-anchor="start"[^>]*data-tick-label[^>]*>0 s<`).MatchString(chart) {
		t.Errorf("the chart's axis: %s", chart)
	}
	ideals := regexp.MustCompile(`<line x1="([0-9.]+)"[^>]*data-ideal-line></line>\s*<text x="([0-9.]+)"`).FindAllStringSubmatch(chart, -1)
	if len(ideals) != 2 {
		t.Errorf("%d labelled ideal lines, want one per row: %s", len(ideals), chart)
	}
	for _, m := range ideals {
		if m[1] != m[2] {
			t.Errorf("an ideal label at x=%s, its line at x=%s", m[2], m[1])
		}
		if x := mustFloat(t, m[1]); x >= templates.ChartLeft+templates.ChartWidth {
			t.Errorf("an ideal line at the end of the track (x=%v): no head-room", x)
		}
	}
	// Another plan: Home compares that one, and the form holds it.
	d := run(map[string]any{"mode": "concurrent", "tasks": 5, "delay_ms": 10, "parallelism": 2})
	page = string(h.get("/").body)
	if !strings.Contains(page, `id="result-`+d.ID+`"`) || strings.Contains(page, `id="result-`+b.ID+`"`) {
		t.Error("Home does not compare the latest plan alone")
	}
	if !strings.Contains(page, `id="tasks" name="tasks" type="number" value="5"`) {
		t.Error("the form does not hold the compared plan")
	}
}

// Every viewer gets the same fragments for an event, whether it follows the run from the
// start, resumes past what the run's shared projection holds, or lags behind the fragments
// kept.
func TestHTMLFragmentsAreTheSameForEveryViewer(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	h.srv.live.keep = 3
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 6, "delay_ms": 10, "failure_rate": 0.5})
	h.follow(r.ID)
	read := func() []*app.Event { // each viewer gets events of its own, as from the log
		evs, err := h.core.Log.ReadAll(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	rec, err := h.core.Runs.Get(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	first := h.srv.newFragmenter(rec, 1, "")
	defer first.close()
	var want [][]byte
	for _, e := range read() {
		want = append(want, first.windowParts(e))
	}
	if len(want) < 10 || want[len(want)-1] == nil {
		t.Fatalf("%d events, the last with fragments %q", len(want), want[len(want)-1])
	}
	for _, from := range []int{1, 4, len(want) - 2} {
		evs := read()
		v := h.srv.newFragmenter(rec, 1, evs[from-1].ID)
		for i := from; i < len(evs); i++ {
			if got := v.windowParts(evs[i]); !bytes.Equal(got, want[i]) {
				t.Errorf("resumed after event %d, event %d (%s) renders\n%s\nwant\n%s", from-1, i, evs[i].Type, got, want[i])
			}
		}
		v.close()
	}
	// A viewer that resumes past the shared projection: the projection catches up first.
	h.srv.live.leave(rec) // the first viewer leaves: the next starts the run's state afresh
	first.lr = h.srv.live.join(rec)
	evs := read()
	v := h.srv.newFragmenter(rec, 1, evs[len(evs)-3].ID)
	defer v.close()
	for i := len(evs) - 2; i < len(evs); i++ {
		if got := v.windowParts(evs[i]); !bytes.Equal(got, want[i]) {
			t.Errorf("a fresh state, resumed late: event %d renders\n%s\nwant\n%s", i, got, want[i])
		}
	}
}
