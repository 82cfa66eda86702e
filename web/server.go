// Package web serves taskrace over HTTP: the JSON API (documented as OpenAPI 3.1), the
// server-sent event streams of runs, the seed-compatible routes, the API docs, the static
// assets and the built-in /httpbin delay target.
package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/compress"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/valyala/fasthttp"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/live"
)

// Config is what the web layer needs beyond the domain's own configuration.
type Config struct {
	PublicURL      string         // optional base URL, for absolute links in responses
	Embedded       bool           // Redis is embedded: data lives in memory only, and we say so
	Version        string         // shown in the API document
	MaxDelay       time.Duration  // longest delay /httpbin/delay/{n} serves
	MaxBody        int            // largest request body accepted, in bytes
	AdminToken     string         // when set, launching, canceling and queue changes are the admin's
	PublicLaunch   bool           // with AdminToken: anyone may launch (rate-limited)
	PublicTasks    bool           // with AdminToken: anyone may read the tasks recorded with package live
	SessionTTL     time.Duration  // how long an admin sign-in lasts
	LaunchRate     int            // launches a minute per client, for everyone but the admin
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For names the client
	AllowedHosts   []string       // Host headers that share links may use when PublicURL is unset

	StreamWriteTimeout time.Duration // an event-stream viewer that accepts nothing for this long is dropped
	MaxViewers         int           // most open event streams; past it, 503
}

// DefaultMaxBody is the request body limit when Config.MaxBody is not set.
const DefaultMaxBody = 64 << 10

// Timing of the web layer. Fields of Server so tests can shorten them.
const (
	defaultPingEvery  = 15 * time.Second // SSE keep-alive comment: how a gone client is noticed
	defaultAPITimeout = 10 * time.Second // bound of one JSON API call
	readyTimeout      = 2 * time.Second  // bound of the Redis ping behind /readyz
	queueInfoTimeout  = 2 * time.Second  // bound of asynq's GetTaskInfo, which takes no context
	maxSeedWait       = 10 * time.Minute // longest a seed-compatible route waits for its run
	seedWaitSlack     = 30 * time.Second // added to tasks × delay for that wait
)

// Server is the HTTP side of one taskrace process.
type Server struct {
	core   *app.Core
	cfg    Config
	logger *slog.Logger
	app    *fiber.App
	api    huma.API

	// base ends on Shutdown: every stream and every waiting seed route selects on it, or
	// the HTTP shutdown would wait for them until its deadline.
	base context.Context
	stop context.CancelFunc

	pingEvery  time.Duration
	apiTimeout time.Duration

	etags sync.Map // asset name → quoted ETag, for unhashed /static URLs

	live       liveRuns       // the projections the HTML streams follow
	viewers    viewerCount    // open event streams
	monitor    *monitor       // asynqmon, closed on Shutdown
	workerSnap workerSnapshot // the last read of the live workers
	limits     *launchLimits  // per-client launch rate
	guesses    *launchLimits  // per-client wrong admin tokens

	levels map[routeKey]access // each route's access level, as it was registered

	recorded  *live.Reader   // the tasks recorded with package live, closed on Shutdown
	taskViews taskViews      // the queries the tasks pages follow live
	workload  workload       // the in-process mixed workload, started by its first launch
	bg        sync.WaitGroup // background goroutines, ended by Shutdown
}

// New builds the server's routes over core. Nothing listens until Serve.
func New(core *app.Core, cfg Config, logger *slog.Logger) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if logger == nil {
		logger = slog.Default()
	}
	if _, ok := logger.Handler().(app.LogHandler); !ok {
		logger = slog.New(app.LogHandler{Handler: logger.Handler()})
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if cfg.MaxViewers <= 0 {
		cfg.MaxViewers = DefaultMaxViewers
	}
	s := &Server{core: core, cfg: cfg, logger: logger, pingEvery: defaultPingEvery, apiTimeout: defaultAPITimeout,
		limits: newLaunchLimits(cfg.LaunchRate), guesses: newLaunchLimits(guessesPerMinute)}
	s.viewers.max = int64(cfg.MaxViewers)
	s.base, s.stop = context.WithCancel(context.Background())
	s.app = fiber.New(fiber.Config{
		AppName: "taskrace",
		// Strict: /API/RUNS or /runs/ is no route at all, never a route whose check was
		// decided for another spelling.
		CaseSensitive: true,
		StrictRouting: true,
		// Bodies are read by limitBody, which answers 413 past MaxBody and reads the rest
		// away, so the client reads the answer rather than a reset connection.
		StreamRequestBody: true,
		// What a handler reads of a request (form values, parameters, queries) is a copy:
		// fasthttp reuses its buffers once the handler returns, and a launch's plan, a
		// stream's run ID and the like live on in goroutines after it.
		Immutable: true,
		// X-Forwarded-Proto and its kin are believed from TRUSTED_PROXIES only (for
		// c.Protocol: share links, the cookie's Secure flag, the origin check).
		EnableTrustedProxyCheck: true,
		TrustedProxies:          prefixStrings(cfg.TrustedProxies),
		BodyLimit:               cfg.MaxBody,
		ErrorHandler:            s.handleError,
		DisableStartupMessage:   true,
		ReadTimeout:             30 * time.Second,
		IdleTimeout:             2 * time.Minute,
	})
	s.app.Use(recover.New(recover.Config{
		EnableStackTrace:  true,
		StackTraceHandler: s.logPanic,
	}), s.requestID, securityHeaders, compressed, s.limitBody)
	// A client that asks before sending a body over the limit is told no at once (417).
	s.app.Server().ContinueHandler = func(h *fasthttp.RequestHeader) bool { return h.ContentLength() <= cfg.MaxBody }
	s.routes()
	if missing := s.undeclaredRoutes(); len(missing) > 0 {
		panic("web: routes without an access level: " + strings.Join(missing, ", "))
	}
	return s
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// Handler returns the Fiber app, for tests.
func (s *Server) Handler() *fiber.App { return s.app }

// Serve serves HTTP on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.bg.Add(1)
	go s.markServe()
	return s.app.Listener(ln)
}

// Shutdown ends the event streams and the seed routes' waits, then stops the HTTP server,
// waiting for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	err := s.app.ShutdownWithContext(ctx)
	s.taskViews.wg.Wait()
	s.bg.Wait()
	s.workload.shutdown()
	s.recorded.Close()
	for _, closeMonitor := range s.monitor.closers {
		closeMonitor()
	}
	return err
}

func (s *Server) routes() {
	// Plain Fiber handlers first: Fiber matches routes in the order they are added.
	s.route(fiber.MethodGet, "/api/runs/:id/events", open, s.events)
	s.route(fiber.MethodGet, "/docs", open, s.docs)
	s.route(fiber.MethodGet, "/static/*", open, s.static)
	s.registerPages()
	s.registerMonitor()
	s.registerMetrics()
	s.route(fiber.MethodGet, "/httpbin/delay/:seconds", open, s.delay)

	s.api = s.newAPI()
	s.registerTasks() // before registerRuns: its /api/tasks/events is no /api/tasks/{task_id}
	s.registerTaskPages()
	s.registerStatsPages()
	s.registerWorkload()
	s.registerRuns()
	s.registerSeed()
	s.registerHealth()
	s.registerWorkers()
	s.registerAuth()
	s.describeByHand()
}

// compressed compresses answers for clients that accept it: pages, JSON and the monitor's
// scripts. Static assets come compressed already. Event streams are left alone: they take
// over the connection and leave the response body empty, which is never compressed.
var compressed = compress.New(compress.Config{Level: compress.LevelBestSpeed})

// limitBody reads the request's body, up to MaxBody: past it, it answers 413 and reads the
// rest away (up to drainLimit), so that the client reads the answer instead of a reset.
func (s *Server) limitBody(c *fiber.Ctx) error {
	req := c.Request()
	if !req.IsBodyStream() {
		return c.Next()
	}
	if n := req.Header.ContentLength(); n > s.cfg.MaxBody {
		return s.tooLarge(c)
	}
	body, err := io.ReadAll(io.LimitReader(req.BodyStream(), int64(s.cfg.MaxBody)+1))
	if err != nil {
		return app.Errorf(app.EMalformed, "the request body could not be read")
	}
	if len(body) > s.cfg.MaxBody {
		return s.tooLarge(c)
	}
	// Handed on as a stream again: with StreamRequestBody, huma reads the stream, not Body.
	req.SetBodyStream(bytes.NewReader(body), len(body))
	return c.Next()
}

// What limitBody reads away of an oversized body, at most; past either the connection is
// closed unread.
const (
	drainLimit   = 64 << 20
	drainTimeout = 2 * time.Second
)

func (s *Server) tooLarge(c *fiber.Ctx) error {
	req := c.Request()
	drained := false
	if req.Header.ContentLength() <= drainLimit {
		// Bounded in time too: a client may announce a body it never sends.
		if conn := c.Context().Conn(); conn != nil {
			conn.SetReadDeadline(time.Now().Add(drainTimeout))
		}
		n, err := io.Copy(io.Discard, io.LimitReader(req.BodyStream(), drainLimit))
		drained = err == nil && n < drainLimit
	}
	if !drained {
		c.Set(fiber.HeaderConnection, "close")
	}
	req.ResetBody()
	return newProblem(http.StatusRequestEntityTooLarge,
		"the request body is larger than "+strconv.Itoa(s.cfg.MaxBody)+" bytes")
}

// link returns the URL of path, absolute when a public URL is configured.
func (s *Server) link(path string) string { return s.cfg.PublicURL + path }

func (s *Server) logPanic(c *fiber.Ctx, e any) {
	s.logger.Error("panic serving a request", "method", c.Method(), "path", c.Path(), "panic", e, "stack", stack())
}
