package live_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/live"
)

// BenchmarkRecorder runs the same batch of tasks through the same asynq server (same Redis,
// concurrency 5, as the engine's throughput benchmark) bare, recorded best-effort and recorded Durable, in interleaved rounds, and
// reports each one's median throughput and the median of the per-round ratios to bare.
//
//	go test ./live -run '^$' -bench Recorder -benchtime 1x
func BenchmarkRecorder(b *testing.B) {
	rounds, concurrency := *benchRounds, *benchConcurrency
	for _, h := range []struct {
		name  string
		work  time.Duration
		tasks int
	}{{"noop", 0, 10_000}, {"1ms", time.Millisecond, 10_000}} {
		b.Run(h.name, func(b *testing.B) {
			opt := asynq.RedisClientOpt{Addr: redisServer.Addr(), DB: redisServer.NextDB()}
			modes := []string{"bare", "best-effort", "durable"}
			rates := map[string][]float64{}
			for b.Loop() {
				for round := range rounds {
					for _, mode := range modes {
						queue := fmt.Sprintf("%s-%s-%d", h.name, mode, round)
						rates[mode] = append(rates[mode], throughput(b, opt, mode, queue, concurrency, h.tasks, h.work))
					}
				}
			}
			for _, mode := range modes {
				b.Logf("%s %s: %.0f tasks/s", h.name, mode, rates[mode])
				b.ReportMetric(median(rates[mode]), mode+"-tasks/s")
				if mode == "bare" {
					continue
				}
				ratios := make([]float64, len(rates[mode]))
				for i := range ratios {
					ratios[i] = rates[mode][i] / rates["bare"][i] * 100
				}
				b.ReportMetric(median(ratios), mode+"-%-of-bare")
			}
		})
	}
}

// throughput enqueues tasks on queue, then serves them and returns tasks per second from the
// server's start to the last handler's return.
func throughput(b *testing.B, opt asynq.RedisClientOpt, mode, queue string, concurrency, tasks int, work time.Duration) float64 {
	b.Helper()
	c := asynq.NewClient(opt)
	for i := range tasks {
		if _, err := c.Enqueue(live.NewTask("bench:"+strconv.Itoa(i%5), nil), asynq.Queue(queue)); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	var done atomic.Int64
	all := make(chan struct{})
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: concurrency, Queues: map[string]int{queue: 1},
		TaskCheckInterval: 3 * time.Millisecond, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.Use(func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			err := next.ProcessTask(ctx, t)
			if done.Add(1) == int64(tasks) {
				close(all)
			}
			return err
		})
	})
	var rec *live.Recorder
	if mode != "bare" {
		var err error
		rec, err = live.NewRecorder(opt, live.Options{Concurrency: concurrency, Durable: mode == "durable"})
		if err != nil {
			b.Fatal(err)
		}
		mux.Use(rec.Middleware)
	}
	mux.HandleFunc("bench:", func(context.Context, *asynq.Task) error { // every bench:N type
		if work > 0 {
			time.Sleep(work) // the handler's work
		}
		return nil
	})
	start := time.Now()
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%s: %d of %d tasks done", mode, done.Load(), tasks)
	}
	rate := float64(tasks) / time.Since(start).Seconds()
	srv.Shutdown()
	if rec != nil {
		rec.Close()
		if n := rec.Dropped(); n > 0 {
			b.Logf("%s: %d facts dropped", mode, n)
		}
	}
	return rate
}

var (
	benchRounds      = flag.Int("live.rounds", 7, "interleaved rounds of BenchmarkRecorder")
	benchConcurrency = flag.Int("live.concurrency", 5, "the asynq server's concurrency in BenchmarkRecorder")
)

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
