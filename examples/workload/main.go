// Command workload is an asynq application of its own, watched live by taskrace: it
// enqueues a mix of fast, slow, CPU-bound and flaky tasks and works them off, recording every
// attempt with package live. Point it and `taskrace serve` at the same Redis:
//
//	REDIS_URL=redis://localhost:6379 go run ./examples/workload
//	REDIS_URL=redis://localhost:6379 taskrace serve --worker=false
//
// and open http://localhost:8080/tasks. It uses asynq and taskrace's public package live only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/examples/workload/tasks"
	"github.com/taskrace/taskrace/live"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// run is the whole program, testable without a process boundary.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("workload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	redisURL := fs.String("redis-url", envOr(getenv, "REDIS_URL", "redis://localhost:6379"), "the Redis taskrace serve uses (env REDIS_URL)")
	queue := fs.String("queue", envOr(getenv, "QUEUE", "workload"), "the asynq queue of the tasks (env QUEUE)")
	rate := fs.Float64("rate", 10, "tasks enqueued a second")
	count := fs.Int("tasks", 0, "tasks to enqueue (0: until stopped)")
	concurrency := fs.Int("concurrency", 8, "tasks worked at once")
	enqueue := fs.Bool("enqueue", true, "enqueue tasks (false: only work them)")
	work := fs.Bool("work", true, "work tasks off (false: only enqueue)")
	slow := fs.Duration("slow", 2*time.Second, "mean duration of video:transcode")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	opt, err := asynq.ParseRedisURI(*redisURL)
	if err != nil {
		fmt.Fprintf(stderr, "workload: REDIS_URL: %v\n", err)
		return 2
	}
	if *concurrency < 1 || *rate <= 0 {
		fmt.Fprintln(stderr, "workload: -concurrency must be at least 1 and -rate above 0")
		return 2
	}
	var wg sync.WaitGroup
	var srv *asynq.Server
	var rec *live.Recorder
	if *work {
		// The one line that makes an asynq application watchable, and its Close.
		rec, err = live.NewRecorder(opt, live.Options{Concurrency: *concurrency, PayloadBytes: 256, ResultBytes: 256, Logger: logger})
		if err != nil {
			fmt.Fprintf(stderr, "workload: %v\n", err)
			return 1
		}
		srv = asynq.NewServer(opt, asynq.Config{
			Concurrency:              *concurrency,
			Queues:                   map[string]int{*queue: 1},
			TaskCheckInterval:        20 * time.Millisecond,
			DelayedTaskCheckInterval: 500 * time.Millisecond,
			RetryDelayFunc:           tasks.RetryDelay,
			LogLevel:                 asynq.WarnLevel,
		})
		mux := asynq.NewServeMux()
		mux.Use(rec.Middleware)
		tasks.Register(mux, tasks.Config{Slow: *slow})
		if err := srv.Start(mux); err != nil {
			fmt.Fprintf(stderr, "workload: cannot start the asynq server: %v\n", err)
			rec.Close()
			return 1
		}
		logger.Info("working", "queue", *queue, "concurrency", *concurrency)
	}
	code := 0
	if *enqueue {
		client := asynq.NewClient(opt)
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := tasks.Enqueue(ctx, client, *queue, *rate, *count)
			if err != nil {
				logger.Error("enqueue stopped", "err", err, "enqueued", n)
				code = 1
			}
			logger.Info("enqueued", "tasks", n)
		}()
		logger.Info("enqueueing", "queue", *queue, "rate", *rate, "tasks", *count)
		wg.Wait()
		client.Close()
	}
	if *work {
		<-ctx.Done() // work until stopped, even once every task is enqueued
		srv.Shutdown()
		rec.Close() // after the server: writes what is pending
	}
	return code
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
