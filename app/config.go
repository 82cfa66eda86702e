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
	RetryDelay    time.Duration // wait before a retry
	BuiltinURL    string        // base URL of the built-in delay target, as this process reaches it
}

// DefaultConfig returns the configuration with every default applied.
func DefaultConfig() Config {
	return Config{
		Queue:         "taskrace",
		Limits:        DefaultLimits,
		MaxActiveRuns: 20,
		RunRetention:  7 * 24 * time.Hour,
		MaxRetry:      3,
		RetryDelay:    250 * time.Millisecond,
		BuiltinURL:    "http://127.0.0.1:8080/httpbin",
	}
}
