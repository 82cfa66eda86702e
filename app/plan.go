package app

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Mode is how a run executes its tasks.
type Mode string

// The three run modes.
const (
	Sequential  Mode = "sequential"  // one task after another, in the launching process
	Concurrent  Mode = "concurrent"  // up to Parallelism goroutines in the launching process
	Distributed Mode = "distributed" // asynq tasks on Redis, executed by any worker process
)

// Modes lists the valid modes in the order the pages show them.
var Modes = []Mode{Sequential, Concurrent, Distributed}

// Local reports whether runs of this mode execute in the process that launched them.
func (m Mode) Local() bool { return m == Sequential || m == Concurrent }

// BuiltinTarget names the serving process's own /httpbin delay endpoint.
const BuiltinTarget = "builtin"

// Plan is what a run will do: Tasks calls of Delay each against Target.
type Plan struct {
	Mode        Mode    `json:"mode"`
	Tasks       int     `json:"tasks"`
	DelayMS     int64   `json:"delay_ms"`
	Parallelism int     `json:"parallelism"`
	Target      string  `json:"target"`
	FailureRate float64 `json:"failure_rate"`
}

// Limits bound what a plan may ask for.
type Limits struct {
	MaxTasks       int
	MaxDelay       time.Duration
	MaxParallelism int
	Allowlist      []string // base URLs, scheme://host[:port]
}

// DefaultLimits are the limits when nothing else is configured.
var DefaultLimits = Limits{MaxTasks: 10_000, MaxDelay: 30 * time.Second, MaxParallelism: 100}

// Delay returns the plan's per-task delay.
func (p Plan) Delay() time.Duration { return time.Duration(p.DelayMS) * time.Millisecond }

// Normalize fills the defaults that depend on the mode: sequential runs have parallelism 1,
// an empty target means the built-in one.
func (p Plan) Normalize() Plan {
	if p.Target == "" {
		p.Target = BuiltinTarget
	}
	p.Target = strings.TrimRight(p.Target, "/")
	switch p.Mode {
	case Sequential:
		p.Parallelism = 1
	case Concurrent:
		if p.Parallelism == 0 {
			p.Parallelism = 5
		}
	}
	return p
}

// Validate checks p against the limits. Parallelism of a distributed plan is set at launch
// from the live capacity, so it is not checked here.
func (p Plan) Validate(l Limits) error {
	if !slices.Contains(Modes, p.Mode) {
		return Invalid("mode", "must be one of sequential, concurrent, distributed; got %q", p.Mode)
	}
	if p.Tasks < 1 || p.Tasks > l.MaxTasks {
		return Invalid("tasks", "must be between 1 and %d; got %d", l.MaxTasks, p.Tasks)
	}
	if max := l.MaxDelay.Milliseconds(); p.DelayMS < 0 || p.DelayMS > max {
		return Invalid("delay_ms", "must be between 0 and %d; got %d", max, p.DelayMS)
	}
	if p.Mode == Concurrent && (p.Parallelism < 1 || p.Parallelism > l.MaxParallelism) {
		return Invalid("parallelism", "must be between 1 and %d; got %d", l.MaxParallelism, p.Parallelism)
	}
	if !(p.FailureRate >= 0 && p.FailureRate <= 1) { // also catches NaN
		return Invalid("failure_rate", "must be between 0 and 1; got %v", p.FailureRate)
	}
	if p.Target != BuiltinTarget && !slices.Contains(l.Allowlist, p.Target) {
		allowed := append([]string{BuiltinTarget}, l.Allowlist...)
		return Invalid("target", "must be one of %s; got %q", strings.Join(allowed, ", "), p.Target)
	}
	return nil
}

// IdealMS is the physical limit of the plan: ceil(tasks/parallelism) × delay.
func (p Plan) IdealMS() float64 {
	par := max(p.Parallelism, 1)
	rounds := (p.Tasks + par - 1) / par
	return float64(rounds) * float64(p.DelayMS)
}

// FailsFirstAttempt reports whether task index of run fails its first attempt under rate.
// It hashes run and index, so a repeated run fails the same tasks.
func FailsFirstAttempt(runID string, index int, rate float64) bool {
	if rate <= 0 {
		return false
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", runID, index)
	return float64(h.Sum64()%1_000_000)/1_000_000 < rate
}

// ParseBaseURL checks that s is a base URL of the form scheme://host[:port].
func ParseBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%q is not a base URL of the form http[s]://host[:port]", s)
	}
	return u.Scheme + "://" + u.Host, nil
}
