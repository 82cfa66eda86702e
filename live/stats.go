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

// Counter names in an aggregate hash, whose fields are <type>|<counter>.
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

// count is one counter of one type, before it is named as a hash field.
type count struct {
	typ, counter string
	bucket       int // for the bucket counters; -1 otherwise
}

func (c count) field() string {
	if c.bucket >= 0 {
		return c.typ + fieldSep + c.counter + strconv.Itoa(c.bucket)
	}
	return c.typ + fieldSep + c.counter
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
	t := f.Type
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

// Stats are the aggregates of every task type over a span of time.
type Stats struct {
	From  time.Time   `json:"from" doc:"Start of the span, on a minute boundary; for totals, the zero time"`
	To    time.Time   `json:"to" doc:"End of the span"`
	Types []TypeStats `json:"types" doc:"One entry per task type, by type name"`
}

// TypeStats are the aggregates of one task type.
type TypeStats struct {
	Type      string           `json:"type"`
	Started   int64            `json:"started" doc:"Attempts started"`
	Ended     map[string]int64 `json:"ended" doc:"Attempts ended, by outcome (success, error, skip_retry, revoked, deadline, canceled, panic)"`
	Succeeded int64            `json:"succeeded" doc:"Attempts that succeeded"`
	Retried   int64            `json:"retried" doc:"Failed attempts after which asynq tries the task again"`
	Failed    int64            `json:"failed" doc:"Tasks that ended failed, with no retry left"`
	Duration  Distribution     `json:"duration" doc:"How long ended attempts ran"`
	Wait      Distribution     `json:"wait" doc:"Enqueue to first start, for tasks stamped by live.NewTask"`
	Minutes   []Minute         `json:"minutes,omitempty" doc:"Per minute, oldest first (only when asked for)"`
}

// Minute is one type's aggregates over one minute.
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

// counters is one type's raw counters.
type counters map[string]int64

func parseFields(all map[string]string, into map[string]counters) {
	for field, v := range all {
		i := strings.LastIndex(field, fieldSep)
		if i < 0 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		typ, name := field[:i], field[i+1:]
		c := into[typ]
		if c == nil {
			c = counters{}
			into[typ] = c
		}
		c[name] += n
	}
}

func (c counters) typeStats(typ string) TypeStats {
	t := TypeStats{Type: typ, Started: c[cStarted], Retried: c[cRetried], Failed: c[cFailed], Ended: map[string]int64{}}
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
	sum := map[string]counters{}
	type minuteOf struct {
		at int64
		c  map[string]counters
	}
	var minutes []minuteOf
	for i, cmd := range cmds {
		all := cmd.Val()
		if len(all) == 0 {
			continue
		}
		parseFields(all, sum)
		if perMinute {
			one := map[string]counters{}
			parseFields(all, one)
			minutes = append(minutes, minuteOf{first + int64(i), one})
		}
	}
	s := &Stats{From: time.Unix(first*60, 0).UTC(), To: to, Types: statsOf(sum)}
	for i := range s.Types {
		t := &s.Types[i]
		for _, m := range minutes {
			c, ok := m.c[t.Type]
			if !ok {
				continue
			}
			ts := c.typeStats(t.Type)
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
	sum := map[string]counters{}
	parseFields(all, sum)
	return &Stats{To: time.Now().UTC(), Types: statsOf(sum)}, nil
}

func statsOf(sum map[string]counters) []TypeStats {
	out := make([]TypeStats, 0, len(sum))
	for typ, c := range sum {
		out = append(out, c.typeStats(typ))
	}
	slices.SortFunc(out, func(a, b TypeStats) int { return cmp.Compare(a.Type, b.Type) })
	return out
}
