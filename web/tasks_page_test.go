package web

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Bad input on the recorded tasks' pages is said on the page, with the status it maps to;
// the stream answers a problem.
func TestTaskPagesRefuseBadInput(t *testing.T) {
	t.Parallel()
	h := start(t)
	foreignApp(t, h, "pages-bad", 1)
	cases := []struct {
		name, path string
		status     int
		says       string
	}{
		{"unknown state", "/tasks?q=" + url.QueryEscape("state:bogus"), 400, "state must be one of"},
		{"unknown key", "/tasks?q=" + url.QueryEscape("colour:red"), 400, `unknown key "colour"`},
		{"open quote", "/tasks?q=" + url.QueryEscape(`"timeout`), 400, "a quote is not closed"},
		{"huge query", "/tasks?q=" + strings.Repeat("a", 1001), 400, "at most 1000 characters"},
		{"unknown order", "/tasks?sort=random", 400, "sort: must be start or runtime"},
		{"bad cursor", "/tasks?cursor=abc", 400, "cursor: must be the link of a previous page"},
		{"bad offset", "/tasks?sort=runtime&cursor=-3", 400, "cursor: must be the link of a previous page"},
		{"no such task", "/tasks/pages-bad/nope", 404, "not found"},
		{"no such queue", "/tasks/nowhere/email-0", 404, "not found"},
		{"bad execution", "/tasks/pages-bad/email-0?execution=x", 400, "execution: must be 1 or more"},
		{"bad worker", "/workers/nohost", 404, "a worker is named host:pid"},
		{"bad window", "/stats?window=1y", 400, "window: must be one of"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.get(c.path, "Accept", "text/html")
			if r.status != c.status {
				t.Errorf("%s: %d, want %d: %s", c.path, r.status, c.status, text(string(r.body)))
			}
			if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
				t.Errorf("%s: answered %s, want a page", c.path, r.header.Get("Content-Type"))
			}
			if !strings.Contains(html.UnescapeString(text(string(r.body))), c.says) {
				t.Errorf("%s: the page does not say %q: %s", c.path, c.says, text(string(r.body)))
			}
		})
	}
	if status, _ := rawRequest(t, h.base, "GET", "/tasks/pages-bad/%zz", []string{"Accept", "text/html"}, ""); status != 404 {
		t.Errorf("a badly escaped task path: %d, want 404", status)
	}
	for _, p := range []string{"/tasks/stream?q=" + url.QueryEscape("state:nope"), "/tasks/stream?sort=x", "/stats/stream?window=2d", "/workers/stream?proc=nohost"} {
		r := h.get(p)
		if r.status != 400 || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s", p, r.status, r.header.Get("Content-Type"))
		}
	}
	// A task ID with a slash and odd characters opens, escaped as the list links it.
	h.eventually(20*time.Second, "the foreign tasks to be recorded", func() bool {
		return h.get("/tasks/pages-bad/image-0").status == 200
	})
	page := string(h.get("/tasks?q=" + url.QueryEscape("queue:pages-bad")).body)
	if !strings.Contains(page, `href="/tasks/pages-bad/image-0"`) || !strings.Contains(page, "image:resize") {
		t.Errorf("the list does not link the recorded task: %s", text(page))
	}
}

// With ADMIN_TOKEN and not PUBLIC_TASKS, the recorded tasks' pages are the admin's: a
// browser is sent to sign in and back, a script gets 401; the workers page stays open but
// shows no other application's server nor any recorded count.
func TestTaskPagesAreRestricted(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker(), withWebConfig(func(c *Config) { c.AdminToken = speakerToken }))
	foreignApp(t, h, "pages-restricted", 1)
	h.eventually(20*time.Second, "the foreign task to be recorded", func() bool {
		return h.get("/api/tasks/pages-restricted/email-0", "Authorization", "Bearer "+speakerToken).status == 200
	})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/tasks?q=" + url.QueryEscape("state:failed"), "/tasks/pages-restricted/email-0", "/stats"} {
		req, _ := http.NewRequest("GET", h.base+p, nil)
		req.Header.Set("Accept", "text/html")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "/login?next=" + url.QueryEscape(p); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("%s anonymously: %d to %q, want 303 to %q", p, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if r := h.get(p); r.status != 401 {
			t.Errorf("%s by a script: %d, want 401", p, r.status)
		}
		if r := h.get(p, "Authorization", "Bearer "+speakerToken); r.status != 200 {
			t.Errorf("%s as the admin: %d", p, r.status)
		}
	}
	for _, p := range []string{"/tasks/stream", "/stats/stream"} {
		if r := h.get(p); r.status != 401 {
			t.Errorf("%s anonymously: %d, want 401", p, r.status)
		}
	}
	h.eventually(20*time.Second, "the foreign server and its counts on the admin's workers page", func() bool {
		page := string(h.get("/workers", "Authorization", "Bearer "+speakerToken).body)
		return strings.Contains(page, `data-role="app"`) || strings.Contains(page, "data-processed")
	})
	page := string(h.get("/workers").body)
	if strings.Contains(page, "data-processed") || strings.Contains(page, "pages-restricted") {
		t.Errorf("the anonymous workers page shows recorded work or another application's queue: %s", text(page))
	}
	if !strings.Contains(page, `data-role="serve"`) {
		t.Errorf("the anonymous workers page lacks serve's worker: %s", text(page))
	}
}
