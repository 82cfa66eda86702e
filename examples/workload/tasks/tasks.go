// Package tasks is the example application's work: four task types that behave the way
// real ones do (fast, slow, CPU-bound, flaky), their handlers, and an enqueuer that keeps
// a mix of them coming. The example's main and taskrace's "Mixed workload" launch both run
// them; it uses asynq and the public package live only.
package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/live"
)

// The task types.
const (
	TypeEmail   = "email:send"      // fast: a few milliseconds
	TypeVideo   = "video:transcode" // slow: seconds
	TypeHash    = "hash:compute"    // CPU-bound: hashing rounds
	TypeWebhook = "webhook:deliver" // flaky: fails often, succeeds on a retry
)

// Types lists the task types, in the order of the mix.
var Types = []string{TypeEmail, TypeVideo, TypeHash, TypeWebhook}

// Config is how the work behaves; the zero value is the example's defaults.
type Config struct {
	Slow        time.Duration // the slow task's mean duration (default 2 s)
	HashRounds  int           // SHA-256 rounds of the CPU-bound task (default 200,000)
	FailureRate float64       // chance a flaky attempt fails (default 0.4)
}

func (c Config) withDefaults() Config {
	if c.Slow <= 0 {
		c.Slow = 2 * time.Second
	}
	if c.HashRounds <= 0 {
		c.HashRounds = 200_000
	}
	if c.FailureRate <= 0 {
		c.FailureRate = 0.4
	}
	return c
}

// Payload is what every task carries.
type Payload struct {
	N int `json:"n"` // the task's number in its enqueuer's sequence
}

// Register adds the handlers of every type to mux.
func Register(mux *asynq.ServeMux, cfg Config) {
	cfg = cfg.withDefaults()
	mux.HandleFunc(TypeEmail, func(ctx context.Context, _ *asynq.Task) error {
		return sleep(ctx, time.Duration(2+rand.IntN(10))*time.Millisecond)
	})
	mux.HandleFunc(TypeVideo, func(ctx context.Context, _ *asynq.Task) error {
		d := cfg.Slow/2 + time.Duration(rand.Int64N(int64(cfg.Slow)))
		return sleep(ctx, d)
	})
	mux.HandleFunc(TypeHash, func(ctx context.Context, t *asynq.Task) error {
		sum := sha256.Sum256(t.Payload())
		for i := 0; i < cfg.HashRounds; i++ {
			if i%10_000 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			sum = sha256.Sum256(sum[:])
		}
		_, err := live.WriteResult(ctx, t, fmt.Appendf(nil, `{"digest":"%x"}`, sum[:8]))
		return err
	})
	mux.HandleFunc(TypeWebhook, func(ctx context.Context, _ *asynq.Task) error {
		if err := sleep(ctx, time.Duration(20+rand.IntN(80))*time.Millisecond); err != nil {
			return err
		}
		if rand.Float64() < cfg.FailureRate {
			return errors.New("POST https://hooks.example.com/orders: 503 Service Unavailable")
		}
		return nil
	})
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// New makes task n of the mix of the batch named batch: the types in turn, each with its
// own retry policy, stamped for the recorder to know its wait (live.NewTask). Its ID is
// batch.n: no "-", which asynqmon would cut the ID at.
func New(batch string, n int, queue string) (*asynq.Task, []asynq.Option) {
	typ := Types[n%len(Types)]
	payload, _ := json.Marshal(Payload{N: n})
	opts := []asynq.Option{asynq.Queue(queue), asynq.TaskID(batch + "." + strconv.Itoa(n)), asynq.Retention(time.Hour)}
	switch typ {
	case TypeWebhook:
		opts = append(opts, asynq.MaxRetry(3))
	case TypeVideo:
		opts = append(opts, asynq.MaxRetry(1), asynq.Timeout(time.Minute))
	default:
		opts = append(opts, asynq.MaxRetry(2))
	}
	return live.NewTask(typ, payload), opts
}

// Enqueue enqueues the mix at rate tasks a second (n of them; 0 for no end) until ctx ends.
// It returns the number enqueued.
func Enqueue(ctx context.Context, c *asynq.Client, queue string, rate float64, n int) (int, error) {
	if rate <= 0 {
		rate = 10
	}
	every := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(every)
	defer tick.Stop()
	sent := 0
	batch := Batch()
	for n == 0 || sent < n {
		t, opts := New(batch, sent, queue)
		if _, err := c.EnqueueContext(ctx, t, opts...); err != nil {
			if ctx.Err() != nil {
				return sent, nil
			}
			return sent, fmt.Errorf("enqueue %s: %w", t.Type(), err)
		}
		sent++
		select {
		case <-tick.C:
		case <-ctx.Done():
			return sent, nil
		}
	}
	return sent, nil
}

// Batch names a new batch of tasks: the time in base 36, so that IDs sort by time.
func Batch() string { return strconv.FormatInt(time.Now().UnixMilli(), 36) }

// RetryDelay is a short retry delay, so that a flaky task's retry shows within seconds
// (asynq's default waits at least 15 s).
func RetryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	return time.Duration(1+n) * time.Second
}
