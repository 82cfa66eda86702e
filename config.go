package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/web"
)

// envFlags registers flags whose defaults come from environment variables, so that every
// setting has one name on the command line and one in the environment.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

func (f *envFlags) env(name string) (string, bool) {
	v := f.getenv(name)
	return v, v != ""
}

func (f *envFlags) String(p *string, name, env, def, usage string) {
	if v, ok := f.env(env); ok {
		def = v
	}
	f.fs.StringVar(p, name, def, usage+" ($"+env+")")
}

func (f *envFlags) Int(p *int, name, env string, def int, usage string) {
	if v, ok := f.env(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %q is not a whole number", env, v))
		}
		def = n
	}
	f.fs.IntVar(p, name, def, usage+" ($"+env+")")
}

func (f *envFlags) Bool(p *bool, name, env string, def bool, usage string) {
	if v, ok := f.env(env); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %q is not true or false", env, v))
		}
		def = b
	}
	f.fs.BoolVar(p, name, def, usage+" ($"+env+")")
}

func (f *envFlags) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	if v, ok := f.env(env); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %q is not a duration like 30s or 5m", env, v))
		}
		def = d
	}
	f.fs.DurationVar(p, name, def, usage+" ($"+env+")")
}

// isSet reports whether a flag was given on the command line or in the environment.
func (f *envFlags) isSet(name, env string) bool {
	if _, ok := f.env(env); ok {
		return true
	}
	set := false
	f.fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

func (f *envFlags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		f.errs = append(f.errs, fmt.Errorf("unexpected argument %q", f.fs.Arg(0)))
	}
	return errors.Join(f.errs...)
}

// coreFlags are the settings of the domain, shared by every subcommand that touches Redis.
type coreFlags struct {
	cfg          app.Config
	allowlist    string
	builtinURL   string
	logFormat    string
	shutdownWait time.Duration
}

func (c *coreFlags) register(f *envFlags) {
	d := app.DefaultConfig()
	f.String(&c.cfg.RedisURL, "redis-url", "REDIS_URL", "", "Redis URL (redis://, rediss://, redis-socket://, redis-sentinel://); empty: embedded, in memory")
	f.String(&c.cfg.Queue, "queue", "QUEUE", d.Queue, "asynq queue of distributed tasks")
	f.Int(&c.cfg.Limits.MaxTasks, "max-tasks", "MAX_TASKS", d.Limits.MaxTasks, "most tasks in a run")
	f.Duration(&c.cfg.Limits.MaxDelay, "max-delay", "MAX_DELAY", d.Limits.MaxDelay, "longest delay of a task")
	f.Int(&c.cfg.Limits.MaxParallelism, "max-parallelism", "MAX_PARALLELISM", d.Limits.MaxParallelism, "most goroutines of a concurrent run")
	f.Int(&c.cfg.MaxActiveRuns, "max-active-runs", "MAX_ACTIVE_RUNS", d.MaxActiveRuns, "most runs running at once, across all processes")
	f.Duration(&c.cfg.RunRetention, "run-retention", "RUN_RETENTION", d.RunRetention, "how long runs and their events are kept")
	f.Int(&c.cfg.MaxRetry, "max-retry", "MAX_RETRY", d.MaxRetry, "retries of a failed task")
	f.Duration(&c.cfg.RetryDelay, "retry-delay", "RETRY_DELAY", d.RetryDelay, "wait before a task's first retry, in whole seconds; each next retry waits twice as long")
	f.String(&c.allowlist, "target-allowlist", "TARGET_ALLOWLIST", "", "comma-separated base URLs allowed as targets besides the built-in one")
	f.String(&c.builtinURL, "httpbin-url", "HTTPBIN_URL", "", "base URL of the built-in delay target as this process reaches it")
	f.String(&c.logFormat, "log-format", "LOG_FORMAT", "text", "log format: text or json")
	f.Duration(&c.shutdownWait, "shutdown-timeout", "SHUTDOWN_TIMEOUT", 10*time.Second, "how long a shutdown may take")
}

// validate checks the values and completes the config.
func (c *coreFlags) validate() error {
	var errs []error
	l := c.cfg.Limits
	if l.MaxTasks < 1 {
		errs = append(errs, fmt.Errorf("MAX_TASKS must be at least 1; got %d", l.MaxTasks))
	}
	if l.MaxDelay < 0 {
		errs = append(errs, fmt.Errorf("MAX_DELAY must not be negative; got %s", l.MaxDelay))
	}
	if l.MaxParallelism < 1 {
		errs = append(errs, fmt.Errorf("MAX_PARALLELISM must be at least 1; got %d", l.MaxParallelism))
	}
	if c.cfg.MaxActiveRuns < 1 {
		errs = append(errs, fmt.Errorf("MAX_ACTIVE_RUNS must be at least 1; got %d", c.cfg.MaxActiveRuns))
	}
	if c.cfg.RunRetention < time.Minute {
		errs = append(errs, fmt.Errorf("RUN_RETENTION must be at least 1m; got %s", c.cfg.RunRetention))
	}
	if c.cfg.MaxRetry < 0 {
		errs = append(errs, fmt.Errorf("MAX_RETRY must not be negative; got %d", c.cfg.MaxRetry))
	}
	if d := c.cfg.RetryDelay; d < time.Second || d%time.Second != 0 || d > app.MaxRetryWait {
		errs = append(errs, fmt.Errorf("RETRY_DELAY must be whole seconds from 1s to %s (the queue keeps retry times in whole seconds); got %s", app.MaxRetryWait, d))
	}
	if c.cfg.Queue == "" {
		errs = append(errs, fmt.Errorf("QUEUE must not be empty"))
	}
	c.cfg.Limits.Allowlist = nil
	for _, s := range strings.Split(c.allowlist, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		u, err := app.ParseBaseURL(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("TARGET_ALLOWLIST: %w", err))
			continue
		}
		c.cfg.Limits.Allowlist = append(c.cfg.Limits.Allowlist, u)
	}
	if c.cfg.RedisURL != "" {
		if _, err := app.ParseRedisURL(c.cfg.RedisURL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.shutdownWait <= 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_TIMEOUT must be positive; got %s", c.shutdownWait))
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT must be text or json; got %q", c.logFormat))
	}
	return errors.Join(errs...)
}

// accessFlags are the access-control settings of serve.
type accessFlags struct {
	web     web.Config
	proxies string
	hosts   string
}

func (a *accessFlags) register(f *envFlags) {
	f.String(&a.web.AdminToken, "admin-token", "ADMIN_TOKEN", "", "token of the admin, who alone may launch, cancel and change queues; empty: everything is open")
	f.Bool(&a.web.PublicLaunch, "public-launch", "PUBLIC_LAUNCH", false, "with ADMIN_TOKEN: let anyone launch runs (rate-limited)")
	f.Bool(&a.web.PublicTasks, "public-tasks", "PUBLIC_TASKS", false, "with ADMIN_TOKEN: let anyone read the tasks other asynq applications record with package live")
	f.Duration(&a.web.SessionTTL, "session-ttl", "SESSION_TTL", 12*time.Hour, "how long an admin sign-in lasts")
	f.Int(&a.web.LaunchRate, "launch-rate", "LAUNCH_RATE", 10, "launches a minute per client (the admin is exempt)")
	f.String(&a.proxies, "trusted-proxies", "TRUSTED_PROXIES", "", "comma-separated addresses or CIDRs whose X-Forwarded-For is believed")
	f.String(&a.hosts, "allowed-hosts", "ALLOWED_HOSTS", "", "comma-separated host[:port] names that share links may use when PUBLIC_URL is unset")
}

func (a *accessFlags) validate() error {
	var errs []error
	if a.web.SessionTTL < time.Minute {
		errs = append(errs, fmt.Errorf("SESSION_TTL must be at least 1m; got %s", a.web.SessionTTL))
	}
	if a.web.LaunchRate < 1 {
		errs = append(errs, fmt.Errorf("LAUNCH_RATE must be at least 1; got %d", a.web.LaunchRate))
	}
	for _, s := range strings.Split(a.proxies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			if ip, err := netip.ParseAddr(s); err == nil {
				s = netip.PrefixFrom(ip, ip.BitLen()).String()
			}
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %q is not an address or CIDR", s))
			continue
		}
		a.web.TrustedProxies = append(a.web.TrustedProxies, p.Masked())
	}
	for _, h := range strings.Split(a.hosts, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if u, err := url.Parse("http://" + h); err != nil || u.Host != h || u.Path != "" {
			errs = append(errs, fmt.Errorf("ALLOWED_HOSTS: %q is not a host or host:port", h))
			continue
		}
		a.web.AllowedHosts = append(a.web.AllowedHosts, strings.ToLower(h))
	}
	return errors.Join(errs...)
}

// streamFlags bound the event streams of serve.
type streamFlags struct {
	writeTimeout time.Duration
	maxViewers   int
}

func (s *streamFlags) register(f *envFlags) {
	f.Duration(&s.writeTimeout, "stream-write-timeout", "STREAM_WRITE_TIMEOUT", web.DefaultStreamWriteTimeout,
		"an event-stream viewer that accepts nothing for this long is dropped (it resumes with Last-Event-ID)")
	f.Int(&s.maxViewers, "max-viewers", "MAX_VIEWERS", web.DefaultMaxViewers, "most open event streams; past it, new ones get 503")
}

func (s *streamFlags) validate() error {
	var errs []error
	if s.writeTimeout < time.Second {
		errs = append(errs, fmt.Errorf("STREAM_WRITE_TIMEOUT must be at least 1s; got %s", s.writeTimeout))
	}
	if s.maxViewers < 1 {
		errs = append(errs, fmt.Errorf("MAX_VIEWERS must be at least 1; got %d", s.maxViewers))
	}
	return errors.Join(errs...)
}
