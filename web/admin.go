package web

import (
	"context"
	"crypto/subtle"
	"html/template"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/static"
)

// Signing in. The admin signs in with the token at /login and gets a session cookie
// (HttpOnly, SameSite=Lax); the session lives in Redis (app.Sessions), so signing out ends it
// for every copy of the cookie, and changing ADMIN_TOKEN ends them all.

const (
	sessionCookie = "taskrace_session"
	loginPath     = "/login"
	logoutPath    = "/logout"
)

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
	// Every X-Forwarded-For line, in order: a proxy may add a line of its own rather than
	// extend the client's, and the client chose what the first line says.
	var hops []string
	for _, line := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(string(line), ",")...)
	}
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

// exhausted reports whether ip's bucket is empty, taking nothing from it.
func (l *launchLimits) exhausted(ip string, now time.Time) bool {
	if l.perMin <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cl, ok := l.clients[ip]
	return ok && cl.lim.TokensAt(now) < 1
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
	s.route(fiber.MethodGet, loginPath, open, func(c *fiber.Ctx) error { return s.renderLogin(c, http.StatusOK, "") })
	s.route(fiber.MethodPost, loginPath, open, s.login)
	s.route(fiber.MethodPost, logoutPath, open, s.logout)
	register(s, admin, huma.Operation{
		OperationID:   "delete-run",
		Method:        http.MethodDelete,
		Path:          "/api/runs/{id}",
		Tags:          []string{"runs"},
		Summary:       "Delete a run and its events (admin)",
		DefaultStatus: http.StatusNoContent,
		Errors:        []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, func(ctx context.Context, in *runIDInput) (*struct{}, error) {
		err := s.core.Runs.Delete(ctx, in.ID)
		s.core.Projections.Forget(in.ID)
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		return nil, nil
	})
}

func (s *Server) renderLogin(c *fiber.Ctx, status int, msg string) error {
	next := safeNext(c.Query("next", c.FormValue("next", "/")))
	c.Status(status).Type("html")
	return loginPage.Execute(c, loginView{CSS: static.Path("css/app.css"), Theme: static.Path("js/theme.js"),
		Next: next, Error: msg, Open: s.cfg.AdminToken == ""})
}

func (s *Server) login(c *fiber.Ctx) error {
	if s.cfg.AdminToken == "" {
		return c.Redirect("/", http.StatusSeeOther)
	}
	if s.guessing(c) {
		return s.renderLogin(c, http.StatusTooManyRequests, tooManyGuesses)
	}
	if subtle.ConstantTimeCompare([]byte(c.FormValue("token")), []byte(s.cfg.AdminToken)) != 1 {
		s.wrongToken(c, "sign-in")
		return s.renderLogin(c, http.StatusUnauthorized, "That is not the admin token.")
	}
	token, err := s.core.Sessions.Create(c.UserContext(), s.cfg.AdminToken, s.cfg.SessionTTL)
	if err != nil {
		return s.renderLogin(c, http.StatusServiceUnavailable, app.ErrorMessage(err))
	}
	s.setSessionCookie(c, token, s.cfg.SessionTTL)
	return c.Redirect(safeNext(c.FormValue("next", "/")), http.StatusSeeOther)
}

// logout ends the session for every copy of its cookie, not only this browser's.
func (s *Server) logout(c *fiber.Ctx) error {
	if s.cfg.AdminToken != "" {
		if err := s.core.Sessions.Revoke(c.UserContext(), s.cfg.AdminToken, c.Cookies(sessionCookie)); err != nil {
			return s.pageError(c, err)
		}
	}
	s.setSessionCookie(c, "", -time.Second)
	return c.Redirect("/", http.StatusSeeOther)
}

func (s *Server) setSessionCookie(c *fiber.Ctx, token string, ttl time.Duration) {
	ck := &fiber.Cookie{Name: sessionCookie, Value: token, Path: "/", HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode, Secure: c.Protocol() == "https", MaxAge: int(ttl.Seconds())}
	if ttl < 0 {
		ck.MaxAge, ck.Expires = -1, time.Unix(0, 0)
	}
	c.Cookie(ck)
}
