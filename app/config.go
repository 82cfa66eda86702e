package app

import (
	"time"
)

// Config is the validated configuration every part is built from.
type Config struct {
	RedisURL      string        // empty: embedded Redis, set up by the caller
	Queue         string        // the asynq queue distributed tasks go to
	Limits        Limits        // what a plan may ask for
	MaxActiveRuns int           // runs running at once, across all processes
	RunRetention  time.Duration // how long a run and its events are kept
	MaxRetry      int           // retries of a failed task
	RetryDelay    time.Duration // wait before a task's first retry; each next one waits twice as long
	BuiltinURL    string        // base URL of the built-in delay target, as this process reaches it
}

// MaxRetryWait caps the wait before any one retry, however many retries are allowed.
const MaxRetryWait = time.Minute

// DefaultConfig returns the configuration with every default applied.
//
// Four retries 1, 2, 4 and 8 s apart carry a task over an outage of its target (or of the
// `serve` that workers reach the built-in target through) of up to 15 s, while a
// failure_rate run still shows its retries a second after the failures.
func DefaultConfig() Config {
	return Config{
		Queue:         "taskrace",
		Limits:        DefaultLimits,
		MaxActiveRuns: 20,
		RunRetention:  7 * 24 * time.Hour,
		MaxRetry:      4,
		RetryDelay:    time.Second,
		BuiltinURL:    "http://127.0.0.1:8080/httpbin",
	}
}

// RetryWait is how long a task that has been retried retried times waits before its next
// attempt: RetryDelay, doubled for each retry before, up to MaxRetryWait.
func (c Config) RetryWait(retried int) time.Duration {
	d := c.RetryDelay
	for range retried {
		if d >= MaxRetryWait/2 {
			return MaxRetryWait
		}
		d *= 2
	}
	return min(d, MaxRetryWait)
}
