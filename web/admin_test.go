package web

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
)

const speakerToken = "speaker-token-0123456789"

// page posts a form as a browser on one of our pages would, with the given cookie.
func (h *harness) form(path string, values url.Values, header ...string) *response {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.base+path, strings.NewReader(values.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", h.base)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	return &response{status: resp.StatusCode, header: resp.Header}
}

func sessionOf(t *testing.T, res *response) string {
	t.Helper()
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if c.Name == sessionCookie {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no session cookie in %v", res.header)
	return ""
}

func TestAdminTokenGuardsWrites(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker(), withWebConfig(func(c *Config) { c.AdminToken = speakerToken }))
	plan := map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0}
	bearer := []string{"Authorization", "Bearer " + speakerToken}

	for _, auth := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", speakerToken}} {
		res := h.do("POST", "/api/runs", plan, auth...)
		res.problem(t, http.StatusUnauthorized)
		if res.header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	}
	h.get("/sequential?tasks=1&delay=0").problem(t, http.StatusUnauthorized)
	if res := h.get("/sequential?tasks=1&delay=0", bearer...); res.status != http.StatusOK {
		t.Errorf("seed route with the Bearer token: %d %s", res.status, res.body)
	}

	res := h.do("POST", "/api/runs", plan, bearer...)
	if res.status != http.StatusCreated {
		t.Fatalf("launch with the Bearer token: %d %s", res.status, res.body)
	}
	var r app.Run
	res.json(t, &r)
	h.follow(r.ID)
	// Viewing stays open.
	for _, path := range []string{"/api/runs", "/api/runs/" + r.ID, "/api/runs/" + r.ID + "/events?after=0-0"} {
		if res := h.get(path); res.status != http.StatusOK {
			t.Errorf("GET %s without the token: %d", path, res.status)
		}
	}
	for _, w := range []struct{ method, path string }{
		{"POST", "/api/runs/" + r.ID + "/cancel"}, {"POST", "/api/runs/" + r.ID + "/pin"},
		{"DELETE", "/api/runs/" + r.ID + "/pin"}, {"DELETE", "/api/runs/" + r.ID},
	} {
		h.do(w.method, w.path, nil).problem(t, http.StatusUnauthorized)
	}
	// The admin can delete a run.
	if res := h.do("DELETE", "/api/runs/"+r.ID, nil, bearer...); res.status != http.StatusNoContent {
		t.Errorf("admin DELETE run: %d %s", res.status, res.body)
	}
	h.get("/api/runs/"+r.ID).problem(t, http.StatusNotFound)
}

func TestAdminSignInCookieAndCSRF(t *testing.T) {
	t.Parallel()
	h := start(t, withWebConfig(func(c *Config) { c.AdminToken = speakerToken; c.SessionTTL = time.Hour }))
	launch := url.Values{"mode": {"sequential"}, "tasks": {"1"}, "delay": {"0"}}

	// A page's form without a session goes to the sign-in form.
	if res := h.form("/runs", launch); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/login") {
		t.Fatalf("form launch without a session: %d → %s", res.status, res.header.Get("Location"))
	}
	if res := h.form("/login", url.Values{"token": {"nope"}}); res.status != http.StatusUnauthorized {
		t.Errorf("sign-in with a wrong token: %d", res.status)
	}
	res := h.form("/login", url.Values{"token": {speakerToken}, "next": {"/runs"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/runs" {
		t.Fatalf("sign-in: %d → %s", res.status, res.header.Get("Location"))
	}
	cookie := sessionOf(t, res)
	if sc := res.header.Get("Set-Cookie"); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") {
		t.Errorf("session cookie is not HttpOnly and SameSite: %s", sc)
	}
	if res := h.form("/runs", launch, "Cookie", cookie); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/runs/") {
		t.Errorf("form launch with a session: %d → %s", res.status, res.header.Get("Location"))
	}

	// CSRF: the same form, with the session, from no page or another site.
	for _, origin := range [][]string{{"Origin", "", "Referer", ""}, {"Origin", "http://evil.example"}} {
		hdr := append([]string{"Cookie", cookie}, origin...)
		if res := h.form("/runs", launch, hdr...); res.status != http.StatusForbidden {
			t.Errorf("form launch with origin %v: %d, want 403", origin, res.status)
		}
	}

	// Forged sessions, and sessions of another admin token, are no sessions.
	forged := sessionCookie + "=" + strings.Repeat("A", 43)
	other, err := h.core.Sessions.Create(context.Background(), "another token", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{forged, sessionCookie + "=" + other, sessionCookie + "=short"} {
		h.do("POST", "/api/runs", map[string]any{"mode": "sequential", "tasks": 1}, "Cookie", c, "Sec-Fetch-Site", "same-origin").
			problem(t, http.StatusUnauthorized)
	}

	// Signing out clears the cookie, and ends the session for every copy of it.
	res = h.form("/logout", nil, "Cookie", cookie)
	if sc := res.header.Get("Set-Cookie"); res.status != http.StatusSeeOther || !strings.Contains(sc, sessionCookie+"=;") {
		t.Errorf("logout: %d, Set-Cookie %q", res.status, sc)
	}
	if res := h.form("/runs", launch, "Cookie", cookie); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/login") {
		t.Errorf("a copy of the cookie after logout still launches: %d → %s", res.status, res.header.Get("Location"))
	}
}

func TestLaunchRateLimit(t *testing.T) {
	t.Parallel()
	proxy := netip.MustParsePrefix("127.0.0.1/32")
	h := start(t, withWebConfig(func(c *Config) {
		c.AdminToken = speakerToken
		c.PublicLaunch = true
		c.LaunchRate = 2
		c.TrustedProxies = []netip.Prefix{proxy}
	}), withAppConfig(func(c *app.Config) { c.MaxActiveRuns = 100 }))
	plan := map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0}
	from := func(ip string) []string { return []string{"X-Forwarded-For", ip} }
	for range 2 {
		if res := h.do("POST", "/api/runs", plan, from("203.0.113.1")...); res.status != http.StatusCreated {
			t.Fatalf("public launch: %d %s", res.status, res.body)
		}
	}
	res := h.do("POST", "/api/runs", plan, from("203.0.113.1")...)
	res.problem(t, http.StatusTooManyRequests)
	if ra := res.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 without a Retry-After: %q", ra)
	}
	// Another client behind the trusted proxy has its own budget; the admin has none.
	if res := h.do("POST", "/api/runs", plan, from("203.0.113.2")...); res.status != http.StatusCreated {
		t.Errorf("second client: %d", res.status)
	}
	if res := h.do("POST", "/api/runs", plan, append(from("203.0.113.1"), "Authorization", "Bearer "+speakerToken)...); res.status != http.StatusCreated {
		t.Errorf("admin over the limit: %d", res.status)
	}
}

func TestLaunchLimitsRefillAndForwardedFor(t *testing.T) {
	t.Parallel()
	l := newLaunchLimits(2)
	now := time.Now()
	for i := range 2 {
		if _, ok := l.allow("a", now); !ok {
			t.Fatalf("launch %d refused", i)
		}
	}
	wait, ok := l.allow("a", now)
	if ok || wait <= 0 || wait > 30*time.Second {
		t.Fatalf("third launch: ok %v, wait %s; want refused for up to 30 s", ok, wait)
	}
	if _, ok := l.allow("a", now.Add(wait)); !ok {
		t.Error("after the wait the bucket has not refilled")
	}

	// X-Forwarded-For counts only from a trusted peer.
	h := start(t, withWebConfig(func(c *Config) {
		c.AdminToken = speakerToken
		c.PublicLaunch = true
		c.LaunchRate = 1
	}))
	plan := map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0}
	if res := h.do("POST", "/api/runs", plan, "X-Forwarded-For", "203.0.113.1"); res.status != http.StatusCreated {
		t.Fatalf("first launch: %d", res.status)
	}
	h.do("POST", "/api/runs", plan, "X-Forwarded-For", "203.0.113.9").problem(t, http.StatusTooManyRequests)
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, path := range []string{"/", "/api/runs", "/docs", "/login", "/monitor/", "/httpbin/delay/0", "/nowhere", "/openapi.json"} {
		res := h.get(path)
		csp := res.header.Get("Content-Security-Policy")
		if csp == "" || res.header.Get("X-Content-Type-Options") != "nosniff" || res.header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s lacks security headers: %v", path, res.header)
		}
		// One frame policy: never framed, said both ways.
		if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Count(csp, "frame-ancestors") != 1 {
			t.Errorf("GET %s: frame policy %q, want frame-ancestors 'none' with X-Frame-Options DENY", path, csp)
		}
		script := strings.SplitN(strings.SplitN(csp, "script-src", 2)[1], ";", 2)[0]
		if strings.Contains(script, "unsafe-inline") {
			t.Errorf("GET %s: CSP allows inline scripts: %s", path, csp)
		}
	}
}
