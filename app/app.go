package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/taskrace/taskrace/live"
	"github.com/taskrace/taskrace/live/wake"
)

// Redis connection bounds, on every connection: asynq's Inspector takes no context, so these
// are what keeps a call from hanging when Redis is gone.
const (
	DialTimeout  = 2 * time.Second
	ReadTimeout  = 3 * time.Second
	WriteTimeout = 3 * time.Second
)

// ParseRedisURL parses what asynq.ParseRedisURI accepts and sets the connection bounds.
func ParseRedisURL(url string) (asynq.RedisConnOpt, error) {
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = DialTimeout, ReadTimeout, WriteTimeout
		return o, nil
	case asynq.RedisFailoverClientOpt:
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = DialTimeout, ReadTimeout, WriteTimeout
		return o, nil
	case asynq.RedisClusterClientOpt:
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = DialTimeout, ReadTimeout, WriteTimeout
		return o, nil
	}
	return opt, nil
}

// Redis holds the clients of one process: a pooled one for everything, and one for the
// feed's blocking read.
type Redis struct {
	Opt    asynq.RedisConnOpt
	Client redis.UniversalClient
	feed   *redis.Client
}

// OpenRedis makes the clients for url. It does not dial: the first command does.
func OpenRedis(url string) (*Redis, error) {
	opt, err := ParseRedisURL(url)
	if err != nil {
		return nil, err
	}
	c, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("REDIS_URL: unsupported connection type")
	}
	wake.Announce(c) // the tasks this process enqueues wake the idle workers of their queue
	r := &Redis{Opt: opt, Client: c}
	if fc, ok := opt.MakeRedisClient().(*redis.Client); ok {
		fc.Options().PoolSize = 2
		r.feed = fc
	} else {
		return nil, fmt.Errorf("REDIS_URL: a Redis Cluster is not supported; use a single server or Sentinel")
	}
	return r, nil
}

// Close closes both clients.
func (r *Redis) Close() error {
	r.feed.Close()
	return r.Client.Close()
}

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.Client.Ping(ctx).Err(); err != nil {
		return Unavailable("cannot ping Redis", err)
	}
	return nil
}

// Core is the domain of one process: the stores, the executor, and (for a process that
// serves pages) the feed and the launcher. Start and Shutdown order its goroutines.
type Core struct {
	Config   Config
	Redis    *Redis
	ProcID   string
	Host     string
	PID      int
	Log      *EventLog
	Runs     *RunStore
	Sessions *Sessions
	Feed     *Feed
	// Projections are the runs' projections kept between reads (see ReadRun).
	Projections *Projections
	Fetcher     *Fetcher
	Executor    *Executor
	Launcher    *Launcher
	Metrics     *Metrics
	Logger      *slog.Logger
	// Recorder records every attempt of this process's tasks in the live record (GET
	// /api/tasks), durably: the worker through its middleware, local runs directly. The
	// Executor stores each attempt's facts with its run events, in the same round trips.
	Recorder *live.Recorder

	app      *appender
	stopOnce sync.Once
}

// NewCore builds the domain over r. Nothing runs until Start.
func NewCore(cfg Config, r *Redis, logger *slog.Logger) *Core {
	host, _ := os.Hostname()
	c := &Core{Config: cfg, Redis: r, ProcID: NewRunID(), Host: host, PID: os.Getpid(), Logger: logger}
	c.Metrics = newMetrics()
	rec, err := live.NewRecorder(r.Opt, live.Options{Durable: true, StagedStarts: true, Host: host, Logger: logger})
	if err != nil {
		panic("app: " + err.Error()) // OpenRedis made a go-redis client of the same option
	}
	c.Recorder = rec
	c.app = newAppender(r.Client, storeScripts...)
	c.Log = &EventLog{rdb: r.Client, app: c.app}
	c.Runs = &RunStore{rdb: r.Client, app: c.app, retention: cfg.RunRetention, maxActive: cfg.MaxActiveRuns, metrics: c.Metrics,
		ended: c.cancelTasks}
	c.Sessions = NewSessions(r.Client)
	c.Fetcher = NewFetcher(cfg.BuiltinURL, cfg.Limits.Allowlist)
	c.Executor = &Executor{log: c.Log, store: c.Runs, fetch: c.Fetcher, metrics: c.Metrics}
	c.Projections = newProjections(c.Log)
	c.Feed = newFeed(r.feed, c.Log, c.ProcID, logger, c.Metrics.ViewersDropped.WithLabelValues("behind"))
	c.Launcher = newLauncher(c)
	return c
}

// Start starts the feed and the launcher's background work.
func (c *Core) Start(ctx context.Context) error {
	c.Feed.start()
	return c.Launcher.start(ctx)
}

// Shutdown interrupts the runs this process owns, stops the feed and flushes pending writes.
// It is safe to call more than once.
func (c *Core) Shutdown(ctx context.Context) {
	c.stopOnce.Do(func() {
		c.Launcher.shutdown(ctx)
		c.Feed.shutdown()
		c.app.close()
		c.Recorder.Close()
		c.Fetcher.Close()
	})
}

// Worker returns the identity of slot in this process.
func (c *Core) Worker(slot int) Worker {
	return Worker{Host: c.Host, PID: c.PID, Slot: slot, Proc: c.ProcID}
}

// cancelTasks records in the live record that the tasks of run r its end stopped are
// canceled: those its projection reads canceled, which had not ended when it ended.
func (c *Core) cancelTasks(ctx context.Context, r RunRef) {
	run, err := c.Runs.Get(ctx, r.ID)
	var evs []*Event
	if err == nil {
		evs, err = c.Log.ReadAll(ctx, r.ID)
	}
	if err != nil {
		c.Logger.WarnContext(ctx, "cannot record a stopped run's tasks as canceled", "run", r.ID, "err", err)
		return
	}
	p := Project(run, evs, time.Time{}, nil)
	queue := c.Config.TaskQueue(run.Mode)
	var stopped []live.Info
	for _, t := range p.Tasks {
		if t.State == TaskStateCanceled {
			stopped = append(stopped, live.Info{Queue: queue, ID: t.ID, Type: TypeFetch})
		}
	}
	if err := c.Recorder.Canceled(ctx, stopped...); err != nil {
		c.Logger.WarnContext(ctx, "cannot record a stopped run's tasks as canceled", "run", r.ID, "err", err)
	}
}
