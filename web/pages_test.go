package web

import (
	"bufio"
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/static"
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
	if len(done) != 300 {
		t.Errorf("%d tasks reached done in the stream, want 300", len(done))
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
	if s.pings == 0 {
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
