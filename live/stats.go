package live

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskrace/taskrace/live/taskstate"
)

// StatsRetention is how long the per-minute aggregates are kept.
const StatsRetention = 24 * time.Hour

// BucketBounds are the upper bounds, in seconds, of the buckets that count durations and
// waits (a last bucket counts everything longer). They are part of the stored format.
var BucketBounds = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// Counter names in an aggregate hash. A field names its series and counter as
// <len(queue)>:<queue>|<type>|<counter>: queue and type may hold any byte, and the queue's
// length and the counter's name (which never holds a |) keep the three apart.
const (
	cStarted  = "started"
	cEnded    = "ended."  // + outcome
	cRetried  = "retried" // failed attempts after which asynq tries again
	cFailed   = "failed"  // tasks that ended failed: archived, no retry left
	cDurSum   = "dur.sum_us"
	cDur      = "dur.b" // + bucket index
	cWaitSum  = "wait.sum_us"
	cWait     = "wait.b"
	fieldSep  = "|"
	nBuckets  = 16 // len(BucketBounds) + 1
	maxMinute = int64(StatsRetention/time.Minute) + 1
)

// series is what the aggregates are kept by: a task type on a queue.
type series struct{ queue, typ string }

// count is one counter of one series, before it is named as a hash field.
type count struct {
	series
	counter string
	bucket  int // for the bucket counters; -1 otherwise
}

func (c count) field() string {
	f := strconv.Itoa(len(c.queue)) + ":" + c.queue + fieldSep + c.typ + fieldSep + c.counter
	if c.bucket >= 0 {
		f += strconv.Itoa(c.bucket)
	}
	return f
}

// parseField splits a hash field into its series and counter; ok is false for a field
// of no series (of the old layout, keyed by type only, say).
func parseField(field string) (s series, counter string, ok bool) {
	colon := strings.IndexByte(field, ':')
	if colon < 1 {
		return s, "", false
	}
	n, err := strconv.Atoi(field[:colon])
	rest := field[colon+1:]
	if err != nil || n < 0 || n >= len(rest) || rest[n:n+1] != fieldSep {
		return s, "", false
	}
	s.queue, rest = rest[:n], rest[n+1:]
	i := strings.LastIndex(rest, fieldSep)
	if i < 0 {
		return s, "", false
	}
	s.typ, counter = rest[:i], rest[i+1:]
	return s, counter, true
}

// exitCounters are the counter names of the exits, made once.
var exitCounters = func() map[string]string {
	m := make(map[string]string, len(Exits))
	for _, e := range Exits {
		m[e] = cEnded + e
	}
	return m
}()

// tally adds what fact f counts to the counters c.
func tally(c map[count]int64, f *Fact) {
	t := series{f.Queue, f.Type}
	switch f.Kind {
	case KindStarted:
		c[count{t, cStarted, -1}]++
		if !f.EnqueuedAt.IsZero() && f.Attempt <= 1 {
			w := max(0, f.At.Sub(f.EnqueuedAt))
			c[count{t, cWaitSum, -1}] += w.Microseconds()
			c[count{t, cWait, bucketOf(w)}]++
		}
	case KindEnded:
		name, ok := exitCounters[f.Exit]
		if !ok {
			name = cEnded + f.Exit
		}
		c[count{t, name, -1}]++
		switch {
		case f.Retry:
			c[count{t, cRetried, -1}]++
		case attemptOutcome(f.Exit) == taskstate.AttemptFailed:
			c[count{t, cFailed, -1}]++
		}
		d := time.Duration(f.DurationMS * float64(time.Millisecond))
		c[count{t, cDurSum, -1}] += d.Microseconds()
		c[count{t, cDur, bucketOf(d)}]++
	}
}

func bucketOf(d time.Duration) int {
	s := d.Seconds()
	for i, b := range BucketBounds {
		if s <= b {
			return i
		}
	}
	return len(BucketBounds)
}

// Stats are the aggregates of every task type on every queue over a span of time.
type Stats struct {
	From  time.Time   `json:"from" doc:"Start of the span, on a minute boundary; for totals, the zero time"`
	To    time.Time   `json:"to" doc:"End of the span"`
	Types []TypeStats `json:"types" doc:"One entry per task type and queue, by type, then queue: the same type on two queues is two entries"`
}

// TypeStats are the aggregates of one task type on one queue.
type TypeStats struct {
	Type      string           `json:"type"`
	Queue     string           `json:"queue" doc:"The queue the type's tasks ran on"`
	Started   int64            `json:"started" doc:"Attempts started"`
	Ended     map[string]int64 `json:"ended" doc:"Attempts ended, by outcome (success, error, skip_retry, revoked, deadline, canceled, panic)"`
	Succeeded int64            `json:"succeeded" doc:"Attempts that succeeded"`
	Retried   int64            `json:"retried" doc:"Failed attempts after which asynq tries the task again"`
	Failed    int64            `json:"failed" doc:"Tasks that ended failed, with no retry left"`
	Duration  Distribution     `json:"duration" doc:"How long ended attempts ran"`
	Wait      Distribution     `json:"wait" doc:"Enqueue to first start, for tasks stamped by live.NewTask"`
	Minutes   []Minute         `json:"minutes,omitempty" doc:"Per minute, oldest first (only when asked for)"`
}

// Minute is one type's aggregates on one queue over one minute.
type Minute struct {
	At        time.Time `json:"at"`
	Started   int64     `json:"started"`
	Succeeded int64     `json:"succeeded"`
	Retried   int64     `json:"retried"`
	Failed    int64     `json:"failed"`
	MeanMS    float64   `json:"mean_ms" doc:"Mean duration of the attempts that ended"`
}

// Distribution summarizes durations counted in buckets.
type Distribution struct {
	Count   int64    `json:"count"`
	SumMS   float64  `json:"sum_ms"`
	MeanMS  float64  `json:"mean_ms"`
	P50MS   float64  `json:"p50_ms" doc:"Upper bound of the bucket holding the median"`
	P95MS   float64  `json:"p95_ms" doc:"Upper bound of the bucket holding the 95th percentile"`
	P99MS   float64  `json:"p99_ms" doc:"Upper bound of the bucket holding the 99th percentile"`
	Buckets []Bucket `json:"buckets" doc:"Cumulative counts"`
}

// Bucket is a cumulative count of durations up to a bound.
type Bucket struct {
	LeMS  *float64 `json:"le_ms" doc:"Upper bound in milliseconds; null for the last, unbounded one"`
	Count int64    `json:"count"`
}

// counters is one series' raw counters.
type counters map[string]int64

func parseFields(all map[string]string, into map[series]counters) {
	for field, v := range all {
		s, name, ok := parseField(field)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		c := into[s]
		if c == nil {
			c = counters{}
			into[s] = c
		}
		c[name] += n
	}
}

func (c counters) typeStats(s series) TypeStats {
	t := TypeStats{Type: s.typ, Queue: s.queue, Started: c[cStarted], Retried: c[cRetried], Failed: c[cFailed], Ended: map[string]int64{}}
	for _, o := range Exits {
		if n := c[cEnded+o]; n > 0 {
			t.Ended[o] = n
		}
	}
	t.Succeeded = c[cEnded+ExitSuccess]
	t.Duration = c.distribution(cDur, cDurSum)
	t.Wait = c.distribution(cWait, cWaitSum)
	return t
}

func (c counters) distribution(bucket, sum string) Distribution {
	var d Distribution
	counts := make([]int64, nBuckets)
	for i := range counts {
		counts[i] = c[bucket+strconv.Itoa(i)]
		d.Count += counts[i]
	}
	d.SumMS = float64(c[sum]) / 1000
	if d.Count > 0 {
		d.MeanMS = d.SumMS / float64(d.Count)
	}
	var cum int64
	d.Buckets = make([]Bucket, nBuckets)
	for i, n := range counts {
		cum += n
		d.Buckets[i].Count = cum
		if i < len(BucketBounds) {
			le := BucketBounds[i] * 1000
			d.Buckets[i].LeMS = &le
		}
	}
	d.P50MS, d.P95MS, d.P99MS = d.quantile(0.5), d.quantile(0.95), d.quantile(0.99)
	return d
}

// quantile is the upper bound of the bucket that holds quantile q (the largest bound for
// the last bucket).
func (d Distribution) quantile(q float64) float64 {
	if d.Count == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(d.Count)))
	for _, b := range d.Buckets {
		if b.Count >= rank && b.LeMS != nil {
			return *b.LeMS
		}
	}
	return BucketBounds[len(BucketBounds)-1] * 1000
}

// readStats reads the aggregates of the minutes from..to (inclusive) from Redis.
func readStats(ctx context.Context, rdb redis.UniversalClient, k keys, from, to time.Time, perMinute bool) (*Stats, error) {
	from, to = from.UTC().Truncate(time.Minute), to.UTC()
	first, last := from.Unix()/60, to.Unix()/60
	if last-first >= maxMinute {
		first = last - maxMinute + 1
	}
	p := rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, 0, last-first+1)
	for m := first; m <= last; m++ {
		cmds = append(cmds, p.HGetAll(ctx, k.minute(m)))
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	sum := map[series]counters{}
	type minuteOf struct {
		at int64
		c  map[series]counters
	}
	var minutes []minuteOf
	for i, cmd := range cmds {
		all := cmd.Val()
		if len(all) == 0 {
			continue
		}
		parseFields(all, sum)
		if perMinute {
			one := map[series]counters{}
			parseFields(all, one)
			minutes = append(minutes, minuteOf{first + int64(i), one})
		}
	}
	s := &Stats{From: time.Unix(first*60, 0).UTC(), To: to, Types: statsOf(sum)}
	for i := range s.Types {
		t := &s.Types[i]
		for _, m := range minutes {
			se := series{t.Queue, t.Type}
			c, ok := m.c[se]
			if !ok {
				continue
			}
			ts := c.typeStats(se)
			t.Minutes = append(t.Minutes, Minute{At: time.Unix(m.at*60, 0).UTC(), Started: ts.Started,
				Succeeded: ts.Succeeded, Retried: ts.Retried, Failed: ts.Failed, MeanMS: ts.Duration.MeanMS})
		}
	}
	return s, nil
}

// readTotals reads the totals since the first fact was recorded.
func readTotals(ctx context.Context, rdb redis.UniversalClient, k keys) (*Stats, error) {
	all, err := rdb.HGetAll(ctx, k.totals()).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	sum := map[series]counters{}
	parseFields(all, sum)
	return &Stats{To: time.Now().UTC(), Types: statsOf(sum)}, nil
}

func statsOf(sum map[series]counters) []TypeStats {
	out := make([]TypeStats, 0, len(sum))
	for s, c := range sum {
		out = append(out, c.typeStats(s))
	}
	slices.SortFunc(out, func(a, b TypeStats) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Queue, b.Queue))
	})
	return out
}
