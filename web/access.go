package web

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/gofiber/fiber/v2"
)

// Access control. Viewing taskrace's own runs is open to everyone. With ADMIN_TOKEN set,
// launching (unless PUBLIC_LAUNCH), canceling, pinning, deleting and every write in the
// monitor are the admin's, and so is reading the tasks of other applications recorded with
// package live (unless PUBLIC_TASKS): a request is the admin's when it carries the token as a Bearer credential or the
// cookie of a live session (see sessions in admin.go). Without ADMIN_TOKEN everything is open.
//
// Every route declares its level where it is registered (route, register), and the check
// runs as the first handler of the route that matched. The router is strict (case-sensitive,
// exact slashes), so a path spelled another way matches no route rather than a route without
// its check; New refuses to build a server with a route that declares no level.

// access is what a route asks of a request.
type access int

const (
	undeclared access = iota // a route registered without a level: New refuses it
	open                     // anyone
	launch                   // the admin, or anyone with PUBLIC_LAUNCH; rate-limited for non-admins
	admin                    // the admin only
	restricted               // a read: the admin's, or anyone's with PUBLIC_TASKS
)

func (a access) String() string {
	switch a {
	case open:
		return "open"
	case launch:
		return "launch"
	case admin:
		return "admin"
	case restricted:
		return "restricted"
	}
	return "undeclared"
}

// bearerScheme is the name of the admin's credential in the OpenAPI document.
const bearerScheme = "adminToken"

// route registers a plain Fiber route with its access level. A GET route answers HEAD too.
func (s *Server) route(method, path string, need access, h fiber.Handler) {
	methods := []string{method}
	if method == fiber.MethodGet {
		methods = append(methods, fiber.MethodHead)
	}
	for _, m := range methods {
		s.declare(m, path, need)
		s.app.Add(m, path, s.authorize(need), h)
	}
}

// register registers a huma operation with its access level: the check runs before the
// operation's own middlewares, and the OpenAPI document says which credential it takes.
func register[I, O any](s *Server, need access, op huma.Operation, h func(context.Context, *I) (*O, error)) {
	check := func(ctx huma.Context, next func(huma.Context)) {
		if c := humafiber.Unwrap(ctx); s.refused(c, need) {
			return
		}
		next(ctx)
	}
	op.Middlewares = append(huma.Middlewares{check}, op.Middlewares...)
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata["access"] = need.String()
	s.secure(&op, need)
	slices.Sort(op.Errors)
	op.Errors = slices.Compact(op.Errors)
	s.declare(op.Method, fiberPath(op.Path), need)
	huma.Register(s.api, op, h)
}

// secure says in the OpenAPI document what credential op takes at level need, and the
// refusals that come with it.
func (s *Server) secure(op *huma.Operation, need access) {
	switch {
	case s.cfg.AdminToken == "" || need == open || (need == restricted && s.cfg.PublicTasks):
		op.Security = []map[string][]string{{}} // open on this server
		return
	case need == restricted:
		op.Security = []map[string][]string{{bearerScheme: {}}}
		op.Errors = append(op.Errors, http.StatusUnauthorized)
		return
	case need == admin || !s.cfg.PublicLaunch:
		op.Security = []map[string][]string{{bearerScheme: {}}}
		op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusForbidden)
	default: // launch, open to all with PUBLIC_LAUNCH
		op.Security = []map[string][]string{{bearerScheme: {}}, {}}
		op.Errors = append(op.Errors, http.StatusForbidden, http.StatusTooManyRequests)
	}
	if need == launch {
		op.Errors = append(op.Errors, http.StatusTooManyRequests)
	}
}

// describe adds to the OpenAPI document an operation that a plain route serves, with the
// security its route declared.
func (s *Server) describe(op *huma.Operation) {
	need := s.levels[routeKey{op.Method, fiberPath(op.Path)}]
	if need == undeclared {
		panic("web: describing " + op.Method + " " + op.Path + ", which is no declared route")
	}
	s.secure(op, need)
	s.api.OpenAPI().AddOperation(op)
}

// fiberPath is an OpenAPI path as humafiber registers it: {param} becomes :param.
func fiberPath(p string) string {
	return strings.NewReplacer("{", ":", "}", "").Replace(p)
}

type routeKey struct{ method, path string }

func (s *Server) declare(method, path string, need access) {
	if s.levels == nil {
		s.levels = make(map[routeKey]access)
	}
	k := routeKey{method, path}
	if had, ok := s.levels[k]; ok && had != need {
		panic(fmt.Sprintf("web: %s %s declared both %s and %s", method, path, had, need))
	}
	s.levels[k] = need
}

// undeclaredRoutes lists the routes of the router that declare no access level.
func (s *Server) undeclaredRoutes() []string {
	var missing []string
	for _, r := range s.app.GetRoutes(true) {
		if s.levels[routeKey{r.Method, r.Path}] == undeclared {
			missing = append(missing, r.Method+" "+r.Path)
		}
	}
	return missing
}

// authorize is the first handler of every plain route.
func (s *Server) authorize(need access) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if s.refused(c, need) {
			return nil
		}
		return c.Next()
	}
}

// refused answers the request itself, and reports so, when it may not call a route of
// level need: a cookie-authenticated change from another site, a non-admin where the admin
// is needed, or a launch over the rate limit.
func (s *Server) refused(c *fiber.Ctx, need access) bool {
	if s.cfg.AdminToken == "" {
		return false // everything is open, and there are no sessions to forge
	}
	changes := (need != open && need != restricted) || !safeMethod(c.Method())
	if changes && s.cookieAuthenticated(c) && !s.sameOrigin(c) {
		s.answer(c, newProblem(http.StatusForbidden,
			"this request did not come from a taskrace page (Sec-Fetch-Site, Origin and Referer say another site, or nothing): "+
				"reload the page and try again, or send Authorization: Bearer <ADMIN_TOKEN>"))
		return true
	}
	if need == open || (need == restricted && s.cfg.PublicTasks) {
		return false
	}
	if _, ok := bearer(c); ok && s.guessing(c) {
		c.Set(fiber.HeaderRetryAfter, "60")
		s.answer(c, newProblem(http.StatusTooManyRequests, tooManyGuesses))
		return true
	}
	if s.isAdmin(c) {
		return false
	}
	if need == admin || need == restricted || !s.cfg.PublicLaunch {
		s.unauthorized(c)
		return true
	}
	if wait, ok := s.limits.allow(s.clientIP(c), time.Now()); !ok {
		secs := int(wait.Seconds()) + 1
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
		s.answer(c, newProblem(http.StatusTooManyRequests,
			"too many launches from this address: at most "+strconv.Itoa(s.cfg.LaunchRate)+
				" a minute (LAUNCH_RATE); try again in "+strconv.Itoa(secs)+" s"))
		return true
	}
	return false
}

// permits reports whether the request could read a route of level need: for a page that is
// open but shows, to those who may, what a restricted route serves (the workers page's
// counts of recorded tasks). It decides as refused does, without answering.
func (s *Server) permits(c *fiber.Ctx, need access) bool {
	return s.cfg.AdminToken == "" || need == open || (need == restricted && s.cfg.PublicTasks) || s.isAdmin(c)
}

func (s *Server) answer(c *fiber.Ctx, p *Problem) {
	if err := writeProblem(c, p); err != nil {
		s.logger.Error("writing a refusal", "err", err)
	}
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

// unauthorized answers a request that needs the admin: the sign-in form for a page's form,
// a problem for everyone else.
func (s *Server) unauthorized(c *fiber.Ctx) {
	if isForm(c) || (c.Method() == fiber.MethodGet && wantsPage(c)) {
		back := returnPath(c)
		if !isForm(c) {
			back = safeNext(string(c.Request().URI().RequestURI())) // the page itself, once signed in
		}
		if err := c.Redirect(loginPath+"?next="+url.QueryEscape(back), http.StatusSeeOther); err != nil {
			s.logger.Error("redirecting to sign-in", "err", err)
		}
		return
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="taskrace"`)
	s.answer(c, newProblem(http.StatusUnauthorized,
		"only the admin may do this: send Authorization: Bearer <ADMIN_TOKEN>, or sign in at "+loginPath))
}

// bearer is the request's Bearer credential, if it has one.
func bearer(c *fiber.Ctx) (string, bool) {
	return strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
}

// cookieAuthenticated reports whether the request would be the admin's by its cookie
// alone: the kind of request another site can make a browser send.
func (s *Server) cookieAuthenticated(c *fiber.Ctx) bool {
	if _, ok := bearer(c); ok {
		return false
	}
	return c.Cookies(sessionCookie) != ""
}

// isAdmin reports whether the request is the admin's. The answer is kept for the request.
func (s *Server) isAdmin(c *fiber.Ctx) bool {
	if s.cfg.AdminToken == "" {
		return true
	}
	if v, ok := c.Locals(adminLocal).(bool); ok {
		return v
	}
	var yes bool
	if token, ok := bearer(c); ok {
		yes = subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1
		if !yes {
			s.wrongToken(c, "bearer")
		}
	} else if cookie := c.Cookies(sessionCookie); cookie != "" {
		ctx, cancel := context.WithTimeout(c.UserContext(), sessionCheckTimeout)
		yes = s.core.Sessions.Valid(ctx, s.cfg.AdminToken, cookie)
		cancel()
	}
	c.Locals(adminLocal, yes)
	return yes
}

const (
	adminLocal          = "taskrace.admin"
	sessionCheckTimeout = 2 * time.Second
	// guessesPerMinute is how many wrong admin tokens a client may send a minute, by
	// sign-in or Bearer; past it, it is refused before its token is compared.
	guessesPerMinute = 10
	tooManyGuesses   = "too many wrong admin tokens from this address: try again in a minute"
)

// guessing reports whether the client has sent too many wrong tokens lately.
func (s *Server) guessing(c *fiber.Ctx) bool {
	return s.guesses.exhausted(s.clientIP(c), time.Now())
}

// wrongToken counts a wrong admin token against the client, and logs it with the client.
func (s *Server) wrongToken(c *fiber.Ctx, via string) {
	ip := s.clientIP(c)
	s.guesses.allow(ip, time.Now())
	s.logger.WarnContext(c.UserContext(), "wrong admin token", "via", via, "client", ip)
}

// sameOrigin reports whether the browser says the request came from one of our own pages:
// Sec-Fetch-Site when the browser sends it, else Origin, else Referer. "none" (typed, a
// bookmark, but also a link opened from a chat or mail app) is not enough for a change, and
// a request that says nothing is refused: every browser that can be made to send a forged
// request sends one of the three.
func (s *Server) sameOrigin(c *fiber.Ctx) bool {
	switch c.Get("Sec-Fetch-Site") {
	case "same-origin":
		return true
	case "":
	default:
		return false
	}
	src := c.Get(fiber.HeaderOrigin)
	if src == "" || src == "null" {
		src = c.Get(fiber.HeaderReferer)
	}
	u, err := url.Parse(src)
	return src != "" && err == nil && s.ownOrigin(c, u.Scheme, u.Host)
}

// ownOrigin reports whether scheme://host is where this server is reached: the request's
// own scheme and Host, or PUBLIC_URL's.
func (s *Server) ownOrigin(c *fiber.Ctx, scheme, host string) bool {
	if host == "" {
		return false
	}
	if scheme == c.Protocol() && host == string(c.Request().Host()) {
		return true
	}
	pub, err := url.Parse(s.cfg.PublicURL)
	return err == nil && pub.Host != "" && scheme == pub.Scheme && host == pub.Host
}

// returnPath is where a sign-in sends the admin back to: the page the form was on.
func returnPath(c *fiber.Ctx) string {
	if ref, err := url.Parse(c.Get(fiber.HeaderReferer)); err == nil && ref.Host == string(c.Request().Host()) {
		return safeNext(ref.RequestURI())
	}
	return "/"
}

// safeNext returns next when it is a path on this site, "/" otherwise. It refuses what a
// browser or a redirect could read as another site or another header: a scheme, "//" or
// "\" at the start, control characters, and the percent-encoded forms of these.
func safeNext(next string) string {
	if len(next) > 2048 || !localPath(next) {
		return "/"
	}
	// Decoded once more, in case something between here and the browser decodes it.
	if dec, err := url.PathUnescape(next); err != nil || !localPath(dec) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return "/"
	}
	return next
}

// localPath reports whether p is an absolute path of this site, with nothing a browser
// would strip or reinterpret: no control characters, no backslash, no "//" at the start.
func localPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsRune(p, '\\') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return false
		}
	}
	return true
}

// wantsPage reports whether a GET is a browser's navigation to a page, not a script's call.
func wantsPage(c *fiber.Ctx) bool {
	return c.Get("Sec-Fetch-Mode") == "navigate" || strings.HasPrefix(c.Get(fiber.HeaderAccept), "text/html")
}

func isForm(c *fiber.Ctx) bool {
	ct := string(c.Request().Header.ContentType())
	return strings.HasPrefix(ct, fiber.MIMEApplicationForm) || strings.HasPrefix(ct, fiber.MIMEMultipartForm) ||
		strings.HasPrefix(ct, fiber.MIMETextPlain)
}
