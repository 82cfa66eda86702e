package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/web"
	"github.com/taskrace/taskrace/worker"
)

const usage = `taskrace races sequential, concurrent and distributed runs of IO-bound tasks.

Usage:
  taskrace serve       web UI, API and an in-process worker (default)
  taskrace worker      an asynq worker only (needs REDIS_URL)
  taskrace run         run a plan from the command line and print the results table
  taskrace healthcheck check that a local serve (or, with --redis, Redis) answers
  taskrace version     print the version

Run 'taskrace <command> --help' for a command's flags.
`

// run is the whole program: main only adds the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || isHelp(args[0])) {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, getenv, stderr)
	case "worker":
		err = runWorker(ctx, args, getenv, stderr)
	case "run":
		err = runPlan(ctx, args, getenv, stdout, stderr)
	case "healthcheck":
		err = healthcheck(ctx, args, getenv, stderr)
	case "version":
		fmt.Fprintln(stdout, "taskrace", version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "taskrace: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var u usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &u):
		fmt.Fprintf(stderr, "taskrace %s: %v\n", cmd, u.err)
		return 2
	default:
		fmt.Fprintf(stderr, "taskrace %s: %v\n", cmd, err)
		return 1
	}
}

// isHelp reports whether arg asks for help; alone, it means the overview, not serve's flags.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// usageError is a mistake in the command line or environment: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

func newFlags(name, summary string, getenv func(string) string, stderr io.Writer) *envFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: taskrace %s [flags]\n\n%s\n\nFlags (environment variable in brackets):\n", name, summary)
		fs.PrintDefaults()
	}
	return &envFlags{fs: fs, getenv: getenv}
}

func newLogger(format string, w io.Writer) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(w, nil)
	if format == "json" {
		h = slog.NewJSONHandler(w, nil)
	}
	return slog.New(app.LogHandler{Handler: h})
}

// backend is Redis for one process: the configured one, or an embedded one in memory.
type backend struct {
	redis    *app.Redis
	embedded *app.EmbeddedRedis
}

func openBackend(url string, logger *slog.Logger) (*backend, error) {
	b := &backend{}
	if url == "" {
		m, err := app.StartEmbeddedRedis()
		if err != nil {
			return nil, err
		}
		b.embedded = m
		url = m.URL()
		logger.Warn("using embedded Redis: data lives in memory and is lost on exit; set REDIS_URL to keep it")
	}
	r, err := app.OpenRedis(url)
	if err != nil {
		b.close()
		return nil, err
	}
	b.redis = r
	return b, nil
}

func (b *backend) close() {
	if b.redis != nil {
		b.redis.Close()
	}
	if b.embedded != nil {
		b.embedded.Close()
	}
}

// startCore opens Redis (embedded when cfg has no URL), waits for it to answer, and starts
// the domain over it.
func startCore(ctx context.Context, cfg app.Config, logger *slog.Logger) (*backend, *app.Core, error) {
	b, err := openBackend(cfg.RedisURL, logger)
	if err != nil {
		return nil, nil, err
	}
	if err := waitRedis(ctx, b.redis); err != nil {
		b.close()
		return nil, nil, err
	}
	core := app.NewCore(cfg, b.redis, logger)
	if err := core.Start(ctx); err != nil {
		b.close()
		return nil, nil, err
	}
	return b, core, nil
}

// waitRedis pings Redis until it answers or a few seconds pass.
func waitRedis(ctx context.Context, r *app.Redis) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		err := r.Ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot reach Redis: %v", errors.Unwrap(err))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	f := newFlags("serve", "Serves the web UI and the API, with an in-process worker unless --worker=false.", getenv, stderr)
	var cf coreFlags
	cf.register(f)
	var addr, publicURL string
	var withWorker bool
	var wcfg worker.Config
	f.String(&addr, "addr", "ADDR", ":8080", "address to listen on")
	f.String(&publicURL, "public-url", "PUBLIC_URL", "", "base URL for shared links (e.g. a laptop's LAN address)")
	f.Bool(&withWorker, "worker", "WORKER", true, "run an asynq worker in this process")
	f.Int(&wcfg.Concurrency, "concurrency", "CONCURRENCY", 5, "slots of the in-process worker")
	f.Duration(&wcfg.TaskCheckInterval, "task-check-interval", "TASK_CHECK_INTERVAL", worker.DefaultTaskCheckInterval, "how long an idle worker sleeps between waits for a wake signal (a fallback: it does not poll)")
	var ac accessFlags
	ac.register(f)
	var sf streamFlags
	sf.register(f)
	if err := f.parse(args); err != nil {
		return usageOrHelp(err)
	}
	if err := errors.Join(cf.validate(), ac.validate(), sf.validate()); err != nil {
		return usageError{err}
	}
	if wcfg.Concurrency < 1 {
		return usageError{fmt.Errorf("CONCURRENCY must be at least 1; got %d", wcfg.Concurrency)}
	}
	logger := newLogger(cf.logFormat, stderr)
	if ac.web.AdminToken == "" {
		logger.Warn("no ADMIN_TOKEN: anyone who can open this server can launch, cancel and change queues")
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	defer ln.Close()
	if cf.builtinURL == "" {
		cf.builtinURL = fmt.Sprintf("http://127.0.0.1:%d/httpbin", ln.Addr().(*net.TCPAddr).Port)
	}
	cf.cfg.BuiltinURL = cf.builtinURL

	b, core, err := startCore(ctx, cf.cfg, logger)
	if err != nil {
		return err
	}
	defer b.close()
	var w *worker.Worker
	if withWorker {
		wcfg.ShutdownTimeout = cf.shutdownWait / 2
		w = worker.New(core, wcfg)
		if err := w.Start(); err != nil {
			return fmt.Errorf("cannot start the worker: %w", err)
		}
	}
	wc := ac.web
	wc.PublicURL, wc.Embedded, wc.Version = publicURL, b.embedded != nil, version
	wc.MaxDelay, wc.MaxBody = cf.cfg.Limits.MaxDelay, 64<<10
	wc.StreamWriteTimeout, wc.MaxViewers = sf.writeTimeout, sf.maxViewers
	srv := web.New(core, wc, logger)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("taskrace serving", "addr", ln.Addr().String(), "version", version, "worker", withWorker, "embedded_redis", b.embedded != nil)

	select {
	case <-ctx.Done():
	case err = <-served:
		logger.Error("server stopped", "err", err)
	}
	// Bounded shutdown in order: local runs are interrupted while the built-in target they
	// call still answers; then HTTP, then the worker, then the domain, then Redis.
	sctx, cancel := context.WithTimeout(context.Background(), cf.shutdownWait)
	defer cancel()
	logger.Info("shutting down")
	core.Launcher.StopRuns(sctx)
	if serr := srv.Shutdown(sctx); serr != nil {
		logger.Warn("http shutdown", "err", serr)
	}
	if w != nil {
		w.Shutdown()
	}
	core.Shutdown(sctx)
	return err
}

func runWorker(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	f := newFlags("worker", "Runs an asynq worker on the run queue. REDIS_URL is required: the Redis that serve uses.", getenv, stderr)
	var cf coreFlags
	cf.register(f)
	f.fs.Lookup("redis-url").Usage = "Redis URL (redis://, rediss://, redis-socket://, redis-sentinel://); required: the Redis that serve uses"
	var wcfg worker.Config
	f.Int(&wcfg.Concurrency, "concurrency", "CONCURRENCY", 5, "tasks processed at once")
	f.Duration(&wcfg.TaskCheckInterval, "task-check-interval", "TASK_CHECK_INTERVAL", worker.DefaultTaskCheckInterval, "how long an idle worker sleeps between waits for a wake signal (a fallback: it does not poll)")
	var metricsAddr string
	f.String(&metricsAddr, "metrics-addr", "METRICS_ADDR", "", "serve this worker's Prometheus metrics at http://ADDR/metrics (empty: not served)")
	if err := f.parse(args); err != nil {
		return usageOrHelp(err)
	}
	if cf.cfg.RedisURL == "" {
		return usageError{errors.New("REDIS_URL is required: a worker must share Redis with `taskrace serve`")}
	}
	if err := cf.validate(); err != nil {
		return usageError{err}
	}
	if wcfg.Concurrency < 1 {
		return usageError{fmt.Errorf("CONCURRENCY must be at least 1; got %d", wcfg.Concurrency)}
	}
	if cf.builtinURL == "" {
		cf.builtinURL = app.DefaultConfig().BuiltinURL
	}
	cf.cfg.BuiltinURL = cf.builtinURL
	logger := newLogger(cf.logFormat, stderr)
	b, core, err := startCore(ctx, cf.cfg, logger)
	if err != nil {
		return err
	}
	defer b.close()
	wcfg.ShutdownTimeout = cf.shutdownWait
	w := worker.New(core, wcfg)
	if err := w.Start(); err != nil {
		return fmt.Errorf("cannot start the worker: %w", err)
	}
	logger.Info("taskrace worker started", "queue", cf.cfg.Queue, "concurrency", wcfg.Concurrency, "version", version)
	if metricsAddr != "" {
		// A worker has no web server: its task metrics get a listener of their own.
		ln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return fmt.Errorf("cannot listen on METRICS_ADDR %s: %w", metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(core.Metrics.Registry, promhttp.HandlerOpts{}))
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go ms.Serve(ln)
		defer ms.Close()
		logger.Info("serving worker metrics", "addr", ln.Addr().String())
	}
	<-ctx.Done()
	logger.Info("worker shutting down: finishing in-flight tasks")
	w.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), cf.shutdownWait)
	defer cancel()
	core.Shutdown(sctx)
	return nil
}

func healthcheck(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	f := newFlags("healthcheck", "Exits 0 when the local server answers /healthz (or, with --redis, when Redis answers).", getenv, stderr)
	var addr, redisURL string
	var checkRedis bool
	f.String(&addr, "addr", "ADDR", ":8080", "address the server listens on")
	f.String(&redisURL, "redis-url", "REDIS_URL", "", "Redis URL, for --redis")
	f.fs.BoolVar(&checkRedis, "redis", false, "check Redis instead of the web server (for workers)")
	if err := f.parse(args); err != nil {
		return usageOrHelp(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if checkRedis {
		if redisURL == "" {
			return usageError{errors.New("--redis checks the Redis in REDIS_URL (or --redis-url), and none is set")}
		}
		r, err := app.OpenRedis(redisURL)
		if err != nil {
			return usageError{err}
		}
		defer r.Close()
		return r.Ping(ctx)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError{fmt.Errorf("ADDR %q: %w", addr, err)}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz answered %s", resp.Status)
	}
	return nil
}

func usageOrHelp(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err}
}

// report is one line of the results table and of --json: a run's summary, as the API and
// the pages show it.
type report struct {
	Mode        app.Mode `json:"mode"`
	RunID       string   `json:"run_id"`
	Status      string   `json:"status"`
	Tasks       int      `json:"tasks"`
	DelayMS     int64    `json:"delay_ms"`
	Parallelism int      `json:"parallelism"`
	WallMS      float64  `json:"wall_ms"`
	IdealMS     float64  `json:"ideal_ms"`
	Efficiency  float64  `json:"efficiency"`
	Reduction   *float64 `json:"reduction_pct,omitempty"`
	SpeedUp     float64  `json:"speed_up"`
	Baseline    string   `json:"baseline,omitempty"` // the sequential run compared with; none: tasks × delay
	Failed      int      `json:"failed"`
	Retries     int      `json:"retries"`
}

// reportOf is the report of a projected run.
func reportOf(p *app.Projection) report {
	r, s := p.Run, p.Summary
	rep := report{Mode: r.Mode, RunID: r.ID, Status: s.Status, Tasks: r.Tasks, DelayMS: r.DelayMS,
		Parallelism: r.Parallelism, IdealMS: s.IdealMS, Reduction: s.ReductionPct, Baseline: s.Baseline,
		Failed: s.Failed, Retries: s.Retries}
	if s.WallMS != nil {
		rep.WallMS = *s.WallMS
	}
	if s.Efficiency != nil {
		rep.Efficiency = *s.Efficiency
	}
	if s.SpeedUp != nil {
		rep.SpeedUp = *s.SpeedUp
	}
	return rep
}

func runPlan(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newFlags("run", "Runs a plan and prints the results table, like the original demo's.", getenv, stderr)
	var cf coreFlags
	cf.register(f)
	var mode, target string
	var tasks, parallelism, concurrency int
	var delay time.Duration
	var failureRate float64
	var asJSON bool
	f.fs.StringVar(&mode, "mode", "all", "sequential, concurrent, distributed, or all (one after another)")
	f.fs.IntVar(&tasks, "tasks", 10, "tasks in the run")
	f.fs.DurationVar(&delay, "delay", 3*time.Second, "delay of each task (e.g. 3s, 250ms)")
	f.fs.IntVar(&parallelism, "parallelism", 5, "goroutines of a concurrent run")
	f.fs.StringVar(&target, "target", app.BuiltinTarget, "delay target: builtin or an allowlisted base URL")
	f.fs.Float64Var(&failureRate, "failure-rate", 0, "share of tasks whose first attempt fails (0-1)")
	f.fs.BoolVar(&asJSON, "json", false, "print one JSON object per run instead of the table")
	f.Int(&concurrency, "concurrency", "CONCURRENCY", 5, "slots of the in-process worker (embedded Redis only)")
	if err := f.parse(args); err != nil {
		return usageOrHelp(err)
	}
	if err := cf.validate(); err != nil {
		return usageError{err}
	}
	if concurrency < 1 {
		return usageError{fmt.Errorf("CONCURRENCY must be at least 1; got %d", concurrency)}
	}
	modes := []app.Mode{app.Mode(mode)}
	if mode == "all" {
		modes = app.Modes
	} else if !slices.Contains(app.Modes, app.Mode(mode)) {
		return usageError{fmt.Errorf("--mode must be one of sequential, concurrent, distributed, all; got %q", mode)}
	}
	plans := make([]app.Plan, len(modes))
	for i, m := range modes {
		plans[i] = app.Plan{Mode: m, Tasks: tasks, DelayMS: delay.Milliseconds(), Parallelism: parallelism,
			Target: target, FailureRate: failureRate}.Normalize()
		if m == app.Distributed {
			plans[i].Parallelism = 1 // set from the live capacity at launch
		}
		if err := plans[i].Validate(cf.cfg.Limits); err != nil {
			return usageError{errors.New(app.ErrorMessage(err))}
		}
	}
	logger := newLogger(cf.logFormat, io.Discard)

	// A delay target on loopback for the local modes (and the in-process worker).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	if cf.builtinURL == "" || cf.cfg.RedisURL == "" {
		cf.builtinURL = "http://" + ln.Addr().String() + "/httpbin"
	}
	cf.cfg.BuiltinURL = cf.builtinURL
	b, core, err := startCore(ctx, cf.cfg, logger)
	if err != nil {
		return err
	}
	defer b.close()
	srv := web.New(core, web.Config{Embedded: b.embedded != nil, Version: version, MaxDelay: cf.cfg.Limits.MaxDelay, MaxBody: 64 << 10}, logger)
	go srv.Serve(ln)
	var w *worker.Worker
	if b.embedded != nil {
		w = worker.New(core, worker.Config{Concurrency: concurrency, ShutdownTimeout: time.Second})
		if err := w.Start(); err != nil {
			return err
		}
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), cf.shutdownWait)
		defer cancel()
		srv.Shutdown(sctx)
		if w != nil {
			w.Shutdown()
		}
		core.Shutdown(sctx)
	}()

	var reports []report
	for _, p := range plans {
		proj, err := launchAndWait(ctx, core, p)
		if err != nil {
			return fmt.Errorf("%s run: %s", p.Mode, app.ErrorMessage(err))
		}
		rep := reportOf(proj)
		reports = append(reports, rep)
		if asJSON {
			json.NewEncoder(stdout).Encode(rep)
		}
	}
	if !asJSON {
		printTable(stdout, reports)
	}
	return nil
}

// launchAndWait launches p, waits for its terminal event and projects its events, compared
// with the latest sequential run of the plan before it (the one just run, with --mode all).
func launchAndWait(ctx context.Context, core *app.Core, p app.Plan) (*app.Projection, error) {
	r, err := core.Launcher.Launch(ctx, p)
	if err != nil {
		return nil, err
	}
	err = core.Feed.Watch(ctx, r.ID, "", func(*app.Event) error { return nil })
	if err != nil {
		return nil, err
	}
	proj, _, err := core.ReadRun(ctx, r.ID, time.Now())
	return proj, err
}

func printTable(w io.Writer, reports []report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "Method\tTasks\tParallelism\tTime\tReduction\tSpeed-up\tIdeal\tEfficiency\tRetries\tAgainst\t")
	for _, r := range reports {
		red, speed, eff := "—", "—", "—"
		if r.Reduction != nil {
			red = fmt.Sprintf("%.2f %%", *r.Reduction)
		}
		if r.SpeedUp > 0 {
			speed = fmt.Sprintf("×%.1f", r.SpeedUp)
		}
		if r.Status == app.StatusFinished {
			eff = fmt.Sprintf("%.1f %%", r.Efficiency*100)
		}
		against := "—"
		switch {
		case r.Status != app.StatusFinished:
		case r.Baseline != "":
			against = "run " + r.Baseline
		default:
			against = "tasks × delay"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f s\t%s\t%s\t%.2f s\t%s\t%d\t%s\t\n", r.Mode, r.Tasks, r.Parallelism,
			r.WallMS/1000, red, speed, r.IdealMS/1000, eff, r.Retries, against)
	}
	tw.Flush()
}
