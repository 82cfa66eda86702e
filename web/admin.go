package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/taskrace/taskrace/static"
)

// Access control. Viewing is open to everyone. With ADMIN_TOKEN set, launching (unless
// PUBLIC_LAUNCH), canceling, pinning, deleting and every write in the monitor are the
// admin's: a request is the admin's when it carries the token as a Bearer credential or a
// session cookie that a login with the token set. Without ADMIN_TOKEN everything is open.
//
// The session cookie is stateless: its expiry and an HMAC of it under a key derived from
// the token. Changing the token signs every session out.

const (
	sessionCookie = "taskrace_session"
	loginPath     = "/login"
	logoutPath    = "/logout"
)

// access is what a route asks of a request.
type access int

const (
	open   access = iota // anyone
	launch               // the admin, or anyone with PUBLIC_LAUNCH; rate-limited for non-admins
	admin                // the admin only
)

// accessOf classifies a request by method and path: the one table of who may do what.
func accessOf(method, path string) access {
	get := method == fiber.MethodGet || method == fiber.MethodHead
	switch {
	case path == "/api/runs" && method == fiber.MethodPost,
		path == "/runs" && method == fiber.MethodPost,
		path == "/race" && method == fiber.MethodPost,
		get && (path == "/sequential" || path == "/sequential_celery" || path == "/distributed" || path == "/concurrent"):
		return launch
	case strings.HasPrefix(path, "/api/runs/") && !get,
		strings.HasPrefix(path, "/runs/") && !get,
		path == "/compare/cancel":
		return admin
	}
	return open
}

// isAdmin reports whether the request is the admin's.
func (s *Server) isAdmin(c *fiber.Ctx) bool {
	if s.cfg.AdminToken == "" {
		return true
	}
	if token, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1
	}
	return s.validSession(c.Cookies(sessionCookie))
}

func (s *Server) sessionMAC(expiry string) string {
	key := sha256.Sum256([]byte("taskrace session key\x00" + s.cfg.AdminToken))
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(expiry))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) newSession(now time.Time) string {
	exp := strconv.FormatInt(now.Add(s.cfg.SessionTTL).Unix(), 10)
	return exp + "." + s.sessionMAC(exp)
}

func (s *Server) validSession(v string) bool {
	exp, mac, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(mac), []byte(s.sessionMAC(exp))) != 1 {
		return false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && time.Now().Unix() < n
}

// guard enforces the access table, CSRF protection and the launch rate limit.
func (s *Server) guard(c *fiber.Ctx) error {
	if !s.sameOrigin(c) {
		return writeProblem(c, newProblem(http.StatusForbidden,
			"this form was not sent from a taskrace page (its Origin is missing or foreign): reload the page and try again"))
	}
	need := accessOf(c.Method(), c.Path())
	if need == open {
		return c.Next()
	}
	isAdmin := s.isAdmin(c)
	if !isAdmin && (need == admin || !s.cfg.PublicLaunch) {
		return s.unauthorized(c)
	}
	if need == launch && !isAdmin {
		if wait, ok := s.limits.allow(s.clientIP(c), time.Now()); !ok {
			secs := int(wait.Seconds()) + 1
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
			return writeProblem(c, newProblem(http.StatusTooManyRequests,
				"too many launches from this address: at most "+strconv.Itoa(s.cfg.LaunchRate)+
					" a minute (LAUNCH_RATE); try again in "+strconv.Itoa(secs)+" s"))
		}
	}
	return c.Next()
}

// unauthorized answers a request that needs the admin: a problem for API clients, the login
// form for pages.
func (s *Server) unauthorized(c *fiber.Ctx) error {
	if isForm(c) {
		return c.Redirect(loginPath+"?next="+url.QueryEscape(returnPath(c)), http.StatusSeeOther)
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="taskrace"`)
	return writeProblem(c, newProblem(http.StatusUnauthorized,
		"only the admin may do this: send Authorization: Bearer <ADMIN_TOKEN>, or sign in at "+loginPath))
}

// returnPath is where a login sends the admin back to: the page the form was on.
func returnPath(c *fiber.Ctx) string {
	if ref, err := url.Parse(c.Get(fiber.HeaderReferer)); err == nil && ref.Host == c.Hostname() && localPath(ref.Path) {
		return ref.RequestURI()
	}
	return "/"
}

func localPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.Contains(p, `\`)
}

func isForm(c *fiber.Ctx) bool {
	ct := string(c.Request().Header.ContentType())
	return strings.HasPrefix(ct, fiber.MIMEApplicationForm) || strings.HasPrefix(ct, fiber.MIMEMultipartForm) ||
		strings.HasPrefix(ct, fiber.MIMETextPlain)
}

// sameOrigin is the CSRF protection: a form post (the only kind of write another site can
// make a browser send with its cookies) must come from one of our own pages, as its Origin
// (or, lacking it, Referer) header says.
// Only a request that carries the admin's session cookie can be forged this way.
func (s *Server) sameOrigin(c *fiber.Ctx) bool {
	m := c.Method()
	if m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions || !isForm(c) || c.Cookies(sessionCookie) == "" {
		return true
	}
	src := c.Get(fiber.HeaderOrigin)
	if src == "" || src == "null" {
		src = c.Get(fiber.HeaderReferer)
	}
	u, err := url.Parse(src)
	return src != "" && err == nil && s.ownHost(c, u.Host)
}

func (s *Server) ownHost(c *fiber.Ctx, host string) bool {
	if host == "" {
		return false
	}
	if host == string(c.Request().Host()) {
		return true
	}
	if pub, err := url.Parse(s.cfg.PublicURL); err == nil && pub.Host != "" && host == pub.Host {
		return true
	}
	return false
}

// clientIP is the peer's address, or, when the peer is a trusted proxy, the address it says
// it forwarded for (the nearest one in X-Forwarded-For that is not itself a trusted proxy).
func (s *Server) clientIP(c *fiber.Ctx) string {
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return c.Context().RemoteIP().String()
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	hops := strings.Split(c.Get(fiber.HeaderXForwardedFor), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if a = a.Unmap(); !s.trusted(a) {
			return a.String()
		}
	}
	return peer.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// launchLimits is a token bucket per client address.
type launchLimits struct {
	mu      sync.Mutex
	perMin  int
	clients map[string]*clientLimit
	swept   time.Time
}

type clientLimit struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLaunchLimits(perMinute int) *launchLimits {
	return &launchLimits{perMin: perMinute, clients: make(map[string]*clientLimit)}
}

// allow takes one launch from ip's bucket; when empty it says how long until the next.
func (l *launchLimits) allow(ip string, now time.Time) (time.Duration, bool) {
	if l.perMin <= 0 {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute { // forget clients whose bucket has refilled
		for k, cl := range l.clients {
			if now.Sub(cl.seen) > time.Minute {
				delete(l.clients, k)
			}
		}
		l.swept = now
	}
	cl, ok := l.clients[ip]
	if !ok {
		cl = &clientLimit{lim: rate.NewLimiter(rate.Every(time.Minute/time.Duration(l.perMin)), l.perMin)}
		l.clients[ip] = cl
	}
	cl.seen = now
	r := cl.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// securityHeaders sets the headers every answer carries; a route with its own CSP (the
// monitor, the API docs) keeps it.
func securityHeaders(c *fiber.Ctx) error {
	err := c.Next()
	h := &c.Response().Header
	if len(h.Peek(fiber.HeaderContentSecurityPolicy)) == 0 {
		h.Set(fiber.HeaderContentSecurityPolicy, "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
			"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
	}
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderXFrameOptions, "DENY")
	h.Set(fiber.HeaderReferrerPolicy, "same-origin")
	return err
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sign in · taskrace</title><link rel="stylesheet" href="{{.CSS}}"><script src="{{.Theme}}"></script></head>
<body class="min-h-screen bg-white text-slate-900 dark:bg-slate-950 dark:text-slate-100">
<main class="mx-auto max-w-sm p-6">
<h1 class="text-2xl font-semibold">Sign in as the admin</h1>
<p class="mt-2">Watching is open to everyone; launching, canceling and changing queues need the admin token.</p>
{{if .Error}}<p role="alert" class="mt-4 rounded border border-red-700 p-3 text-red-800 dark:text-red-300">{{.Error}}</p>{{end}}
{{if .Open}}<p class="mt-4">No ADMIN_TOKEN is set: everything is open, there is nothing to sign in to.</p>{{else}}
<form method="post" action="/login" class="mt-4 grid gap-3">
<input type="hidden" name="next" value="{{.Next}}">
<label for="token" class="font-medium">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required class="rounded border border-slate-500 p-2 text-slate-900">
<button class="btn btn-primary" type="submit">Sign in</button>
</form>{{end}}
<p class="mt-6"><a class="underline" href="/">Back to the dashboard</a></p>
</main></body></html>`))

type loginView struct {
	CSS, Theme, Next, Error string
	Open                    bool
}

func (s *Server) registerAuth() {
	s.app.Get(loginPath, func(c *fiber.Ctx) error { return s.renderLogin(c, http.StatusOK, "") })
	s.app.Post(loginPath, s.login)
	s.app.Post(logoutPath, s.logout)
	huma.Register(s.api, huma.Operation{
		OperationID:   "delete-run",
		Method:        http.MethodDelete,
		Path:          "/api/runs/{id}",
		Tags:          []string{"runs"},
		Summary:       "Delete a run and its events (admin)",
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusServiceUnavailable},
	}, func(ctx context.Context, in *runIDInput) (*struct{}, error) {
		if err := s.core.Runs.Delete(ctx, in.ID); err != nil {
			return nil, s.fail(ctx, err)
		}
		return nil, nil
	})
}

func (s *Server) renderLogin(c *fiber.Ctx, status int, msg string) error {
	next := c.Query("next", c.FormValue("next", "/"))
	if !localPath(next) {
		next = "/"
	}
	c.Status(status).Type("html")
	return loginPage.Execute(c, loginView{CSS: static.Path("css/app.css"), Theme: static.Path("js/theme.js"),
		Next: next, Error: msg, Open: s.cfg.AdminToken == ""})
}

func (s *Server) login(c *fiber.Ctx) error {
	if s.cfg.AdminToken == "" {
		return c.Redirect("/", http.StatusSeeOther)
	}
	if subtle.ConstantTimeCompare([]byte(c.FormValue("token")), []byte(s.cfg.AdminToken)) != 1 {
		return s.renderLogin(c, http.StatusUnauthorized, "That is not the admin token.")
	}
	c.Cookie(&fiber.Cookie{Name: sessionCookie, Value: s.newSession(time.Now()), Path: "/", HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode, Secure: c.Protocol() == "https", MaxAge: int(s.cfg.SessionTTL.Seconds())})
	next := c.FormValue("next", "/")
	if !localPath(next) {
		next = "/"
	}
	return c.Redirect(next, http.StatusSeeOther)
}

func (s *Server) logout(c *fiber.Ctx) error {
	c.Cookie(&fiber.Cookie{Name: sessionCookie, Value: "", Path: "/", HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode, MaxAge: -1, Expires: time.Unix(0, 0)})
	return c.Redirect("/", http.StatusSeeOther)
}
