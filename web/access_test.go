package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/app"
)

// rawRequest sends one request with exactly this request line and headers, and returns the
// status of the answer (0 when none came within the deadline) and its headers. It reads no
// body: an event stream or a waiting seed route would hold it.
func rawRequest(t *testing.T, base, method, target string, header []string, body string) (int, http.Header) {
	t.Helper()
	status, hdr, _ := rawExchange(t, base, method, target, header, body, false)
	return status, hdr
}

// rawExchange is rawRequest, reading the answer's body when asked.
func rawExchange(t *testing.T, base, method, target string, header []string, body string, read bool) (int, http.Header, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	host := strings.TrimPrefix(base, "http://")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			host = header[i+1]
		}
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var got []byte
	if read {
		got, _ = io.ReadAll(resp.Body)
	}
	return resp.StatusCode, resp.Header, got
}

// spellings are the ways a client can write path that a router or a check could read
// differently: case, slashes, encoded slashes and dot segments.
func spellings(path string) []string {
	out := []string{path, strings.ToUpper(path), titleSegments(path), "/" + path, "/." + path,
		"/x/.." + path, "/x/%2e%2e" + path, path + "/", path + "//", strings.ReplaceAll(path, "/", "//")}
	if strings.HasSuffix(path, "/") {
		out = append(out, strings.TrimSuffix(path, "/"))
	}
	if i := strings.LastIndex(path, "/"); i > 0 {
		out = append(out, path[:i]+"%2F"+path[i+1:], path[:i]+"%2f"+path[i+1:], path[:i]+"/./"+path[i+1:])
	}
	return out
}

func titleSegments(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if s != "" {
			segs[i] = strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return strings.Join(segs, "/")
}

// TestRouteWalkChangesNothingAnonymously walks the router's own list of routes, not the
// declarations, and sends every one of them, in every method any route uses and in every
// spelling, without credentials (and with a forged cookie): no run may be created, canceled,
// pinned or deleted, and no queue paused.
func TestRouteWalkChangesNothingAnonymously(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker(), withWebConfig(func(c *Config) { c.AdminToken = speakerToken }),
		withAppConfig(func(c *app.Config) { c.MaxActiveRuns = 1000 }))
	ctx := context.Background()
	victim, err := h.core.Launcher.Launch(ctx, app.Plan{Mode: app.Sequential, Tasks: 20, DelayMS: 30_000})
	if err != nil {
		t.Fatal(err)
	}
	before, _, err := h.core.Runs.List(ctx, app.ListQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}

	methods := map[string]bool{}
	paths := map[string]bool{}
	for _, r := range h.srv.app.GetRoutes(true) {
		methods[r.Method] = true
		p := strings.NewReplacer(":id", victim.ID, ":seconds", "0", ":task_id", victim.ID+"-0").Replace(r.Path)
		if strings.HasSuffix(p, "/*") {
			for _, rest := range []string{"x", "api/queues/" + h.core.Config.Queue + ":pause", "api/queues/" + h.core.Config.Queue} {
				paths[strings.TrimSuffix(p, "*")+rest] = true
			}
			continue
		}
		paths[p] = true
	}
	if len(paths) < 30 {
		t.Fatalf("only %d routes found: the walk reads the wrong list", len(paths))
	}

	query := "?mode=sequential&tasks=1&delay=0&wait=false"
	bodies := []struct {
		header []string
		body   string
	}{
		{[]string{"Content-Type", "application/json"}, `{"mode":"sequential","tasks":1,"delay_ms":0}`},
		{[]string{"Content-Type", "application/x-www-form-urlencoded", "Origin", h.base,
			"Cookie", sessionCookie + "=" + strings.Repeat("A", 43)}, "mode=sequential&tasks=1&delay=0&runs=" + victim.ID},
		{[]string{"Sec-Fetch-Site", "same-origin", "Cookie", sessionCookie + "=forged"}, ""},
	}
	type req struct{ method, target string }
	var reqs []req
	for p := range paths {
		for _, sp := range spellings(p) {
			for m := range methods {
				reqs = append(reqs, req{m, sp + query})
			}
		}
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		through []string
	)
	work := make(chan req)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				for _, b := range bodies {
					status, _ := rawRequest(t, h.base, r.method, r.target, b.header, b.body)
					if status >= 200 && status < 300 && r.method != fiber.MethodGet && r.method != fiber.MethodHead {
						mu.Lock()
						through = append(through, fmt.Sprintf("%s %s → %d", r.method, r.target, status))
						mu.Unlock()
					}
				}
			}
		}()
	}
	for _, r := range reqs {
		work <- r
	}
	close(work)
	wg.Wait()
	t.Logf("%d requests over %d paths and %d methods", len(reqs)*len(bodies), len(paths), len(methods))
	for _, s := range through {
		t.Errorf("an anonymous write was answered 2xx: %s", s)
	}

	after, _, err := h.core.Runs.List(ctx, app.ListQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("runs: %d before the walk, %d after: anonymous requests launched or deleted runs", len(before), len(after))
	}
	r, err := h.core.Runs.Get(ctx, victim.ID)
	if err != nil {
		t.Fatalf("the victim run is gone: %v", err)
	}
	if r.Status != app.StatusRunning || r.Pinned {
		t.Errorf("the victim run is %s, pinned %v: anonymous requests changed it", r.Status, r.Pinned)
	}
	q, err := asynq.NewInspector(h.core.Redis.Opt).GetQueueInfo(h.core.Config.Queue)
	if err == nil && q.Paused {
		t.Error("an anonymous request paused the queue")
	}
}

// TestEveryRouteDeclaresItsAccess: a route registered without a level is found, and New
// refuses to serve with one.
func TestEveryRouteDeclaresItsAccess(t *testing.T) {
	t.Parallel()
	h := start(t)
	if missing := h.srv.undeclaredRoutes(); len(missing) != 0 {
		t.Fatalf("routes without a level: %v", missing)
	}
	// On a server of its own, which serves nothing: routes change before serving only.
	r, err := app.OpenRedis(redisServer.URL(redisServer.NextDB()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srv := New(app.NewCore(app.DefaultConfig(), r, testLogger()), Config{}, testLogger())
	defer srv.Shutdown(context.Background())
	srv.app.Post("/added-later", func(c *fiber.Ctx) error { return nil })
	if missing := srv.undeclaredRoutes(); !slices.Contains(missing, "POST /added-later") {
		t.Errorf("a route added without a level is not found: %v", missing)
	}
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for next, want := range map[string]string{
		"/runs":                         "/runs",
		"/runs/01J?page=2":              "/runs/01J?page=2",
		"/compare?runs=a%2Cb":           "/compare?runs=a%2Cb",
		"":                              "/",
		"runs":                          "/",
		"//evil.example":                "/",
		"/\\evil.example":               "/",
		"\\\\evil.example":              "/",
		"https://evil.example/":         "/",
		"javascript:alert(1)":           "/",
		"/%0D%0ASet-Cookie:a=b":         "/",
		"/\r\nSet-Cookie: a=b":          "/",
		"/%09/evil.example":             "/",
		"/\t/evil.example":              "/",
		"/%2F/evil.example":             "/",
		"/%2f%2fevil.example":           "/",
		"/%5Cevil.example":              "/",
		"/%00":                          "/",
		"/%zz":                          "/",
		"/ok\x7f":                       "/",
		"/" + strings.Repeat("a", 3000): "/",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

// FuzzSafeNext: whatever safeNext lets through stays on this site, as a browser resolves it
// (browsers drop tabs and newlines from URLs first), and can carry no header.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/runs", "//evil", "/%0d%0aX:y", "/%09/evil", "/\\evil", "/a/../b", "/%2F%2Fx", "https://x"} {
		f.Add(s)
	}
	base, _ := url.Parse("http://taskrace.test/page")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != "/" && got != next {
			t.Fatalf("safeNext(%q) = %q: neither the input nor /", next, got)
		}
		if strings.ContainsAny(got, "\r\n\t\x00\\") {
			t.Fatalf("safeNext(%q) = %q carries a control character or backslash", next, got)
		}
		for _, form := range []string{got, strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(got)} {
			u, err := url.Parse(form)
			if err != nil {
				t.Fatalf("safeNext(%q) = %q, which does not parse: %v", next, got, err)
			}
			if r := base.ResolveReference(u); r.Host != "taskrace.test" || r.Scheme != "http" {
				t.Fatalf("safeNext(%q) = %q leads to %s", next, got, r)
			}
			if dec, err := url.PathUnescape(form); err == nil && (strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\")) {
				t.Fatalf("safeNext(%q) = %q decodes to %q, another host", next, got, dec)
			}
		}
	})
}

func TestSignInNextStaysOnSite(t *testing.T) {
	t.Parallel()
	h := start(t, withWebConfig(func(c *Config) { c.AdminToken = speakerToken }))
	for _, next := range []string{"/%0D%0ASet-Cookie:taskrace_session=attacker", "/\r\nSet-Cookie: x=y", "/%09/evil.example",
		"/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example", "/%2F%2Fevil.example"} {
		res := h.form("/login", url.Values{"token": {speakerToken}, "next": {next}})
		if loc := res.header.Get("Location"); res.status != http.StatusSeeOther || loc != "/" {
			t.Errorf("next=%q: %d → %q, want 303 → /", next, res.status, loc)
		}
		for _, sc := range res.header.Values("Set-Cookie") {
			if !strings.HasPrefix(sc, sessionCookie+"=") {
				t.Errorf("next=%q injected a cookie: %q", next, sc)
			}
		}
		if len(res.header.Values("Set-Cookie")) != 1 {
			t.Errorf("next=%q: %d Set-Cookie headers, want the session's alone", next, len(res.header.Values("Set-Cookie")))
		}
		// The sign-in form echoes next only when it is safe.
		if body := string(h.get("/login?next=" + url.QueryEscape(next)).body); !strings.Contains(body, `name="next" value="/"`) {
			t.Errorf("the sign-in form keeps next=%q", next)
		}
	}
	// A path on the site is kept, query and all.
	res := h.form("/login", url.Values{"token": {speakerToken}, "next": {"/runs?mode=distributed"}})
	if loc := res.header.Get("Location"); loc != "/runs?mode=distributed" {
		t.Errorf("next=/runs?mode=distributed → %q", loc)
	}
}

func TestBuiltinTargetServesOnlyDelays(t *testing.T) {
	t.Parallel()
	h := start(t)
	res := h.get("/httpbin/delay/0.05")
	if res.status != http.StatusOK || !strings.Contains(string(res.body), `"delay":0.05`) {
		t.Fatalf("/httpbin/delay/0.05: %d %s", res.status, res.body)
	}
	if res.header.Get("Set-Cookie") != "" || !strings.Contains(res.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("/httpbin/delay answers without our headers, or sets a cookie: %v", res.header)
	}
	for _, path := range []string{
		"/httpbin/cookies/set?" + sessionCookie + "=attacker",
		"/httpbin/response-headers?Content-Security-Policy=script-src%20*&Set-Cookie=" + sessionCookie + "%3Dx",
		"/httpbin/redirect-to?url=http://evil.example/",
		"/httpbin/redirect/1", "/httpbin/get", "/httpbin/headers", "/httpbin/status/302", "/httpbin/anything",
		"/httpbin/", "/httpbin", "/httpbin/delay/1/x",
	} {
		res := h.get(path)
		if res.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.status)
		}
		if sc, loc := res.header.Get("Set-Cookie"), res.header.Get("Location"); sc != "" || loc != "" {
			t.Errorf("GET %s: Set-Cookie %q, Location %q", path, sc, loc)
		}
		if csp := res.header.Get("Content-Security-Policy"); csp != contentPolicy() {
			t.Errorf("GET %s: CSP %q, not ours", path, csp)
		}
	}
	for _, bad := range []string{"abc", "-1", "NaN", "Inf", "31", "1e9", "1e308", "9300000000", "9223372036.854775807"} {
		h.get("/httpbin/delay/"+bad).problem(t, http.StatusBadRequest)
	}
}

// signIn signs in as the admin and returns the session's Cookie header value.
func (h *harness) signIn(t *testing.T) string {
	t.Helper()
	res := h.form("/login", url.Values{"token": {speakerToken}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", res.status)
	}
	return sessionOf(t, res)
}

func TestCookieChangesMustBeSameOrigin(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker(), withWebConfig(func(c *Config) { c.AdminToken = speakerToken }),
		withAppConfig(func(c *app.Config) { c.MaxActiveRuns = 100 }))
	cookie := h.signIn(t)
	ctx := context.Background()
	runs := func() int {
		rs, _, err := h.core.Runs.List(ctx, app.ListQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	sibling := "http://127.0.0.1:1" // same site, another port: the browser sends the Lax cookie
	crossSite := [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "none"},                                     // a link opened from a chat or mail app
		{"Origin", "https://" + strings.TrimPrefix(h.base, "http://")}, // our host, another scheme
		{"Sec-Fetch-Site", "same-site", "Origin", sibling},
		{"Referer", "http://evil.example/page"},
		{"Origin", sibling},
		{"Origin", "null"},
		{}, // says nothing at all
	}

	t.Run("launching GETs", func(t *testing.T) {
		n := runs()
		for _, hdr := range crossSite {
			for _, path := range []string{"/sequential?tasks=1&delay=0", "/distributed?tasks=1&delay=0", "/concurrent?tasks=1&delay=0"} {
				h.get(path, append([]string{"Cookie", cookie}, hdr...)...).problem(t, http.StatusForbidden)
			}
		}
		if got := runs(); got != n {
			t.Errorf("cross-site GETs with the cookie launched %d runs", got-n)
		}
		for _, hdr := range [][]string{{"Sec-Fetch-Site", "same-origin"}, {"Referer", h.base + "/"}} {
			if res := h.get("/sequential?tasks=1&delay=0", append([]string{"Cookie", cookie}, hdr...)...); res.status != http.StatusOK {
				t.Errorf("GET /sequential with the cookie and %v: %d %s", hdr, res.status, res.body)
			}
		}
	})

	t.Run("body-less POSTs", func(t *testing.T) {
		r, err := h.core.Launcher.Launch(ctx, app.Plan{Mode: app.Sequential, Tasks: 1, DelayMS: 30_000})
		if err != nil {
			t.Fatal(err)
		}
		for _, hdr := range crossSite {
			for _, w := range []struct{ method, path string }{
				{"POST", "/api/runs/" + r.ID + "/cancel"}, {"POST", "/api/runs/" + r.ID + "/pin"},
				{"POST", "/runs/" + r.ID + "/cancel"}, {"POST", "/runs/" + r.ID + "/pin"},
				{"DELETE", "/api/runs/" + r.ID}, {"POST", "/compare/cancel?runs=" + r.ID},
			} {
				h.do(w.method, w.path, nil, append([]string{"Cookie", cookie}, hdr...)...).problem(t, http.StatusForbidden)
			}
		}
		got, err := h.core.Runs.Get(ctx, r.ID)
		if err != nil || got.Status != app.StatusRunning || got.Pinned {
			t.Fatalf("after cross-site POSTs with the cookie the run is %+v (%v)", got, err)
		}
		// The Bearer token is no cookie: another origin may use it.
		if res := h.do("POST", "/api/runs/"+r.ID+"/pin", nil, "Authorization", "Bearer "+speakerToken, "Origin", sibling); res.status != http.StatusOK {
			t.Errorf("pin with the Bearer token from another origin: %d %s", res.status, res.body)
		}
		if res := h.do("POST", "/api/runs/"+r.ID+"/cancel", nil, "Cookie", cookie, "Sec-Fetch-Site", "same-origin"); res.status != http.StatusOK {
			t.Errorf("cancel with the cookie from our page: %d %s", res.status, res.body)
		}
	})
}

func TestOversizedBodiesGet413(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, size := range []int{1<<20 + 1, 4 << 20} {
		body := `{"mode":"sequential","target":"` + strings.Repeat("x", size) + `"}`
		p := h.do("POST", "/api/runs", body).problem(t, http.StatusRequestEntityTooLarge)
		if !strings.Contains(p.Detail, "65536") {
			t.Errorf("413 detail = %q", p.Detail)
		}
		// And on a page's form route too.
		res := h.do("POST", "/runs", "mode=sequential&x="+strings.Repeat("y", size), "Content-Type", "application/x-www-form-urlencoded")
		res.problem(t, http.StatusRequestEntityTooLarge)
	}
	// A chunked body, whose size no header tells.
	status, _ := rawChunked(t, h.base, "/api/runs", 200<<10)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 200 KiB body: %d, want 413", status)
	}
	// A client that asks first is told no before it sends anything.
	status, _ = rawRequest(t, h.base, "POST", "/api/runs", []string{"Content-Type", "application/json",
		"Expect", "100-continue", "Content-Length", strconv.Itoa(8 << 20)}, "")
	if status != http.StatusExpectationFailed {
		t.Errorf("Expect: 100-continue with 8 MiB: %d, want 417", status)
	}
	// Still served after all that.
	h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0})
}

func rawChunked(t *testing.T, base, path string, size int) (int, http.Header) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", path)
	chunk := strings.Repeat("x", 8<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		fmt.Fprintf(w, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	w.WriteString("0\r\n\r\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("chunked body: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestDuplicateJSONKeysAreRefused(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, body := range []string{
		`{"mode":"sequential","tasks":1,"tasks":2}`,
		`{"mode":"distributed","mode":"sequential","tasks":1}`,
		`{"mode":"sequential","tasks":1,"delay_ms":0,"delay_ms":1}`,
		`{"mode":"sequential","tasks":1,"delay_ms":0,"MODE":"distributed"}`,
		`{"mode":"sequential","tasks":1,"taſks":2}`,
	} {
		p := h.do("POST", "/api/runs", body).problem(t, http.StatusBadRequest)
		if !strings.Contains(p.Detail+fmt.Sprint(p.Errors), "twice") {
			t.Errorf("%s: %q does not name the repeated key", body, p.Detail)
		}
	}
	// A wrong type is said in words, naming no Go type.
	for _, body := range []string{`{"mode":"sequential","TASKS":"x"}`, `{"mode":"sequential","Delay_MS":true}`} {
		res := h.do("POST", "/api/runs", body)
		if res.status != http.StatusBadRequest && res.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d", body, res.status)
		}
		if b := string(res.body); strings.Contains(b, "Go struct") || strings.Contains(b, "RunRequest") || strings.Contains(b, "int64") {
			t.Errorf("%s: the answer names Go types: %s", body, b)
		}
	}
	// The same key in two objects is no repeat.
	if res := h.do("POST", "/api/runs", `{"mode":"sequential","tasks":1,"delay_ms":0}`); res.status != http.StatusCreated {
		t.Errorf("a plain body: %d %s", res.status, res.body)
	}
}

func TestNoDuplicateKeys(t *testing.T) {
	t.Parallel()
	for body, dup := range map[string]bool{
		`{"a":1,"b":2}`:                 false,
		`{"a":1,"a":2}`:                 true,
		`{"a":{"b":1},"c":{"b":1}}`:     false,
		`{"a":{"b":1,"b":1}}`:           true,
		`{"a":[{"b":1},{"b":1}],"c":1}`: false,
		`{"a":[1,2],"a":3}`:             true,
		`{"a":{"x":[]},"a":1}`:          true,
		`[{"a":1},{"a":1}]`:             false,
		`{"a":"a","b":"a"}`:             false,
		`{"a":1,`:                       false, // malformed: json.Unmarshal reports it
		`{"a":1,"A":2}`:                 true,
		`{"ks":1,"kſ":2}`:               true,
	} {
		if got := noDuplicateKeys([]byte(body)) != nil; got != dup {
			t.Errorf("noDuplicateKeys(%s): %v, want %v", body, got, dup)
		}
	}
}

func TestShareLinksIgnoreStrangersHosts(t *testing.T) {
	t.Parallel()
	h := start(t, withWebConfig(func(c *Config) { c.AllowedHosts = []string{"taskrace.lan:8080"} }))
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0})
	h.follow(r.ID)
	own := strings.TrimPrefix(h.base, "http://")
	for host, want := range map[string]string{
		own:                 h.base,
		"evil.example":      h.base,
		"taskrace.lan:8080": "http://taskrace.lan:8080",
		"TASKRACE.LAN:8080": "http://taskrace.lan:8080",
	} {
		status, _, body := rawExchange(t, h.base, "GET", "/runs/"+r.ID, []string{"Host", host}, "", true)
		if status != http.StatusOK {
			t.Fatalf("GET with Host %s: %d", host, status)
		}
		page := string(body)
		if !strings.Contains(page, `data-share-url>`+want+"/runs/"+r.ID+"<") {
			t.Errorf("Host %s: the share link is not %s", host, want)
		}
		if strings.Contains(page, "evil.example") {
			t.Errorf("Host %s: the page names the stranger's host", host)
		}
	}
	// Loopback links say that phones cannot reach them.
	if page := string(h.get("/runs/" + r.ID).body); !strings.Contains(page, "data-share-loopback") || !strings.Contains(page, "PUBLIC_URL") {
		t.Error("a loopback share link says nothing of phones")
	}
	pub := start(t, withWebConfig(func(c *Config) { c.PublicURL = "http://192.168.1.20:8080" }))
	r, err := pub.core.Launcher.Launch(context.Background(), app.Plan{Mode: app.Sequential, Tasks: 1})
	if err != nil {
		t.Fatal(err)
	}
	pub.follow(r.ID)
	_, _, body := rawExchange(t, pub.base, "GET", "/runs/"+r.ID, []string{"Host", "evil.example"}, "", true)
	page := string(body)
	if !strings.Contains(page, "http://192.168.1.20:8080/runs/"+r.ID) || strings.Contains(page, "data-share-loopback") {
		t.Error("with PUBLIC_URL the share link is not PUBLIC_URL's, or is called loopback")
	}
}

// TestAnswersAreCompressedButStreams: pages, JSON and the monitor's scripts go out
// compressed to a client that accepts it; event streams never do.
func TestAnswersAreCompressedButStreams(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 20, "delay_ms": 0})
	h.follow(r.ID)
	gz := []string{"Accept-Encoding", "gzip"}
	page := h.get("/", gz...)
	for _, path := range []string{"/", "/runs/" + r.ID, "/api/runs/" + r.ID, "/api/runs", "/openapi.json", "/monitor/"} {
		res := h.get(path, gz...)
		if res.status != http.StatusOK || res.header.Get("Content-Encoding") != "gzip" {
			t.Errorf("GET %s: %d, Content-Encoding %q, want gzip", path, res.status, res.header.Get("Content-Encoding"))
		}
	}
	_ = page
	// The monitor's page names its bundle: that goes out compressed too.
	mon := string(h.get("/monitor/").body)
	if i := strings.Index(mon, `src="/monitor/static/js/`); i >= 0 {
		src := mon[i+len(`src="`):]
		src = src[:strings.Index(src, `"`)]
		if res := h.get(src, gz...); res.header.Get("Content-Encoding") != "gzip" {
			t.Errorf("GET %s: Content-Encoding %q, want gzip", src, res.header.Get("Content-Encoding"))
		}
	} else {
		t.Error("the monitor's page names no script bundle")
	}
	for _, path := range []string{"/api/runs/" + r.ID + "/events?after=0-0", "/runs/" + r.ID + "/stream?after=0-0"} {
		status, hdr := rawRequest(t, h.base, "GET", path, []string{"Accept-Encoding", "gzip", "Accept", "text/event-stream"}, "")
		if status != http.StatusOK || hdr.Get("Content-Encoding") != "" {
			t.Errorf("GET %s: %d, Content-Encoding %q, want none", path, status, hdr.Get("Content-Encoding"))
		}
	}
}

// TestHugeDelaysSayWhatWasTyped: a delay far past any limit is refused as typed, not as the
// overflowed number of milliseconds it would make.
func TestHugeDelaysSayWhatWasTyped(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, delay := range []string{"1e308", "9300000000", "-1e300"} {
		res := h.postForm("/runs", url.Values{"mode": {"sequential"}, "tasks": {"1"}, "delay": {delay}})
		body := string(res.body)
		if res.status != http.StatusUnprocessableEntity || !strings.Contains(body, delay) || strings.Contains(body, "-9223372036854775808") {
			t.Errorf("delay %s: %d, the page does not say what was typed", delay, res.status)
		}
	}
}

// TestWrongTokensAreLimited: a client that keeps guessing the admin token, by sign-in or
// Bearer, is refused before its guess is compared, the right token included.
func TestWrongTokensAreLimited(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"sign-in", "bearer"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			h := start(t, withWebConfig(func(c *Config) { c.AdminToken = speakerToken }))
			try := func(token string) int {
				if via == "sign-in" {
					return h.form("/login", url.Values{"token": {token}}).status
				}
				return h.do("POST", "/api/runs/x/pin", nil, "Authorization", "Bearer "+token).status
			}
			for i := range guessesPerMinute {
				if got := try(fmt.Sprintf("guess-%d", i)); got != http.StatusUnauthorized {
					t.Fatalf("guess %d: %d, want 401", i, got)
				}
			}
			for _, token := range []string{"guess-x", speakerToken} {
				if got := try(token); got != http.StatusTooManyRequests {
					t.Errorf("after %d wrong tokens, %q: %d, want 429", guessesPerMinute, token, got)
				}
			}
		})
	}
}

// TestForwardedHeadersFromTrustedProxiesOnly: every X-Forwarded-For line counts (a proxy may
// add its own), and X-Forwarded-Proto is believed from a trusted proxy only.
func TestForwardedHeadersFromTrustedProxiesOnly(t *testing.T) {
	t.Parallel()
	proxied := start(t, withWebConfig(func(c *Config) {
		c.AdminToken, c.PublicLaunch, c.LaunchRate = speakerToken, true, 1
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}))
	plan := `{"mode":"sequential","tasks":1,"delay_ms":0}`
	for i, want := range []int{http.StatusCreated, http.StatusTooManyRequests} {
		// The client writes the first line; the proxy adds the second, naming the client.
		status, _ := rawRequest(t, proxied.base, "POST", "/api/runs", []string{"Content-Type", "application/json",
			"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1), "X-Forwarded-For", "198.51.100.7"}, plan)
		if status != want {
			t.Errorf("launch %d from 198.51.100.7 with a forged first line: %d, want %d", i, status, want)
		}
	}

	h := start(t)
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0})
	h.follow(r.ID)
	_, _, body := rawExchange(t, h.base, "GET", "/runs/"+r.ID, []string{"X-Forwarded-Proto", "https", "X-Forwarded-Ssl", "on"}, "", true)
	if strings.Contains(string(body), "https://") && strings.Contains(string(body), "data-share-url>https") {
		t.Error("an untrusted client's X-Forwarded-Proto made the share link https")
	}
}
