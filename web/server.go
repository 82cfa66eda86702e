// Package web serves taskrace over HTTP: the JSON API (documented as OpenAPI 3.1), the
// server-sent event streams of runs, the seed-compatible routes, the API docs, the static
// assets and the built-in /httpbin delay target.
package web

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/mccutchen/go-httpbin/v2/httpbin"

	"github.com/taskrace/taskrace/app"
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
	SessionTTL     time.Duration  // how long an admin sign-in lasts
	LaunchRate     int            // launches a minute per client, for everyone but the admin
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For names the client

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

	viewers    viewerCount    // open event streams
	monitor    *monitor       // asynqmon, closed on Shutdown
	workerSnap workerSnapshot // the last read of the live workers
	limits     *launchLimits  // per-client launch rate
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
		limits: newLaunchLimits(cfg.LaunchRate)}
	s.viewers.max = int64(cfg.MaxViewers)
	s.base, s.stop = context.WithCancel(context.Background())
	s.app = fiber.New(fiber.Config{
		AppName:               "taskrace",
		BodyLimit:             hardBodyLimit(cfg.MaxBody),
		ErrorHandler:          s.handleError,
		DisableStartupMessage: true,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           2 * time.Minute,
	})
	s.app.Use(recover.New(recover.Config{
		EnableStackTrace:  true,
		StackTraceHandler: s.logPanic,
	}), s.requestID, s.limitBody, securityHeaders, s.guard)
	s.routes()
	return s
}

// Handler returns the Fiber app, for tests.
func (s *Server) Handler() *fiber.App { return s.app }

// Serve serves HTTP on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown ends the event streams and the seed routes' waits, then stops the HTTP server,
// waiting for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	err := s.app.ShutdownWithContext(ctx)
	for _, closeMonitor := range s.monitor.closers {
		closeMonitor()
	}
	return err
}

func (s *Server) routes() {
	// Plain Fiber handlers first: Fiber matches routes in the order they are added.
	s.app.Post("/api/runs", s.requireJSON)
	s.app.Get("/api/runs/:id/events", s.events)
	s.app.Get("/docs", s.docs)
	s.app.Get("/static/*", s.static)
	s.registerPages()
	s.registerMonitor()
	s.registerMetrics()

	bin := adaptor.HTTPHandler(s.httpbin())
	s.app.All("/httpbin", bin)
	s.app.All("/httpbin/*", bin)

	s.api = s.newAPI()
	s.registerRuns()
	s.registerSeed()
	s.registerHealth()
	s.registerWorkers()
	s.registerAuth()
	s.describeByHand()
}

// httpbin is the built-in delay target, under /httpbin.
func (s *Server) httpbin() http.Handler {
	opts := []httpbin.OptionFunc{httpbin.WithPrefix("/httpbin")}
	if s.cfg.MaxDelay > 0 {
		opts = append(opts, httpbin.WithMaxDuration(s.cfg.MaxDelay))
	}
	return httpbin.New(opts...)
}

// hardBodyLimit is the body size past which fasthttp refuses a request before reading it.
// It answers 413 then, but closes the connection on the unread body, and the client may see
// a reset instead of the answer; limitBody answers every body up to this size cleanly.
func hardBodyLimit(limit int) int { return max(16*limit, 1<<20) }

// limitBody answers 413 to a body over the configured limit, once fasthttp has read it
// (so the connection stays usable and the client reads the answer).
func (s *Server) limitBody(c *fiber.Ctx) error {
	if len(c.Request().Body()) > s.cfg.MaxBody {
		return fiber.ErrRequestEntityTooLarge
	}
	return c.Next()
}

// link returns the URL of path, absolute when a public URL is configured.
func (s *Server) link(path string) string { return s.cfg.PublicURL + path }

func (s *Server) logPanic(c *fiber.Ctx, e any) {
	s.logger.Error("panic serving a request", "method", c.Method(), "path", c.Path(), "panic", e, "stack", stack())
}
