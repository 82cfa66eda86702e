package live_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/taskrace/taskrace/live"
	"github.com/taskrace/taskrace/live/taskstate"
)

// clock is a settable time for a recorder.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestAggregates(t *testing.T) {
	t.Parallel()
	deadline, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	bg := context.Background()
	type attempt struct {
		ctx      context.Context
		err      error
		attempt  int
		maxRetry int
		took     time.Duration
	}
	cases := []struct {
		name       string
		queue, typ string // the series: each case is one, and two share a type
		attempts   []attempt
		want       live.TypeStats // the counters compared
		p50MS      float64
		state      string
	}{
		{"one success", "agg", "agg:0", []attempt{{bg, nil, 1, 3, 3 * time.Millisecond}},
			live.TypeStats{Started: 1, Succeeded: 1, Ended: map[string]int64{live.ExitSuccess: 1}}, 5, taskstate.Done},
		{"error, retried, then success", "agg", "agg:1", []attempt{{bg, errors.New("x"), 1, 3, 40 * time.Millisecond}, {bg, nil, 2, 3, 40 * time.Millisecond}},
			live.TypeStats{Started: 2, Succeeded: 1, Retried: 1, Ended: map[string]int64{live.ExitSuccess: 1, live.ExitError: 1}}, 50, taskstate.Done},
		{"error with no retry left", "agg", "agg:2", []attempt{{bg, errors.New("x"), 1, 0, 2 * time.Second}},
			live.TypeStats{Started: 1, Failed: 1, Ended: map[string]int64{live.ExitError: 1}}, 2500, taskstate.Failed},
		{"skip retry with retries left", "agg", "agg:3", []attempt{{bg, fmt.Errorf("bad: %w", asynq.SkipRetry), 1, 5, time.Millisecond}},
			live.TypeStats{Started: 1, Failed: 1, Ended: map[string]int64{live.ExitSkipRetry: 1}}, 1, taskstate.Failed},
		{"revoked", "agg", "agg:4", []attempt{{bg, asynq.RevokeTask, 1, 5, time.Millisecond}},
			live.TypeStats{Started: 1, Ended: map[string]int64{live.ExitRevoked: 1}}, 1, taskstate.Canceled},
		{"deadline, retried", "agg", "agg:5", []attempt{{deadline, context.DeadlineExceeded, 1, 1, 10 * time.Second}},
			live.TypeStats{Started: 1, Retried: 1, Ended: map[string]int64{live.ExitDeadline: 1}}, 10_000, taskstate.Retrying},
		{"canceled on the last try", "agg", "agg:6", []attempt{{canceled, context.Canceled, 2, 1, time.Minute}},
			live.TypeStats{Started: 1, Failed: 1, Ended: map[string]int64{live.ExitCanceled: 1}}, 60_000, taskstate.Failed},
		{"too long for any bucket", "agg", "agg:7", []attempt{{bg, nil, 1, 0, time.Hour}},
			live.TypeStats{Started: 1, Succeeded: 1, Ended: map[string]int64{live.ExitSuccess: 1}}, 300_000, taskstate.Done},
		// The same type on two queues is two series, each with its own counts.
		{"a type on one queue", "agg:a", "agg:shared", []attempt{{bg, nil, 1, 3, 3 * time.Millisecond}},
			live.TypeStats{Started: 1, Succeeded: 1, Ended: map[string]int64{live.ExitSuccess: 1}}, 5, taskstate.Done},
		{"the same type on another", "agg:b", "agg:shared", []attempt{{bg, errors.New("x"), 1, 1, 40 * time.Millisecond}, {bg, errors.New("x"), 2, 1, 40 * time.Millisecond}},
			live.TypeStats{Started: 2, Retried: 1, Failed: 1, Ended: map[string]int64{live.ExitError: 2}}, 50, taskstate.Failed},
		// Names that hold the field's separators, or look like its queue length.
		{"a queue and a type with separators", "3:x|y|", "a|b|0", []attempt{{bg, nil, 1, 0, 3 * time.Millisecond}},
			live.TypeStats{Started: 1, Succeeded: 1, Ended: map[string]int64{live.ExitSuccess: 1}}, 5, taskstate.Done},
		{"a series a plain queue|type field would merge with the last", "3:x", "y||a|b|0", []attempt{{bg, errors.New("x"), 1, 1, 3 * time.Millisecond}, {bg, nil, 2, 1, 3 * time.Millisecond}},
			live.TypeStats{Started: 2, Succeeded: 1, Retried: 1, Ended: map[string]int64{live.ExitError: 1, live.ExitSuccess: 1}}, 5, taskstate.Done},
	}
	e := newEnv(t)
	clk := &clock{now: time.Now().Add(-time.Minute).Truncate(time.Minute)}
	rec := e.recorder(live.Options{Durable: true, Clock: clk.Now})
	for _, c := range cases {
		for _, a := range c.attempts {
			at := rec.Start(live.Info{Queue: c.queue, ID: c.typ, Type: c.typ, Attempt: a.attempt, MaxRetry: a.maxRetry,
				EnqueuedAt: clk.Now().Add(-20 * time.Millisecond)})
			clk.advance(a.took)
			if err := at.End(a.ctx, a.err); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Aggregates of the layout by type alone are not read, nor fields of no series.
	minute := "taskrace:live:stats:" + strconv.FormatInt(clk.Now().Unix()/60, 10)
	for key, field := range map[string]string{minute: "agg:0|started", "taskrace:live:totals": "agg:0|started",
		"taskrace:live:queue-totals": "3:agg|nothing", "taskrace:live:queue-stats:" + strconv.FormatInt(clk.Now().Unix()/60, 10): "9:agg|x|started"} {
		if err := e.rdb.HIncrBy(t.Context(), key, field, 5).Err(); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := e.reader.Stats(t.Context(), clk.Now().Add(-3*time.Hour), clk.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	totals, err := e.reader.Totals(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reader.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*live.Stats{stats, totals} {
		if len(s.Types) != len(cases) {
			t.Errorf("%d series, want %d: %+v", len(s.Types), len(cases), s.Types)
		}
	}
	for _, c := range cases {
		for _, s := range []*live.Stats{stats, totals} {
			var got *live.TypeStats
			for j := range s.Types {
				if s.Types[j].Type == c.typ && s.Types[j].Queue == c.queue {
					got = &s.Types[j]
				}
			}
			if got == nil {
				t.Errorf("%s: no aggregates", c.name)
				continue
			}
			w := c.want
			if got.Started != w.Started || got.Succeeded != w.Succeeded || got.Retried != w.Retried || got.Failed != w.Failed ||
				fmt.Sprint(got.Ended) != fmt.Sprint(w.Ended) {
				t.Errorf("%s: started %d, succeeded %d, retried %d, failed %d, ended %v; want %d, %d, %d, %d, %v", c.name,
					got.Started, got.Succeeded, got.Retried, got.Failed, got.Ended, w.Started, w.Succeeded, w.Retried, w.Failed, w.Ended)
			}
			if got.Duration.Count != int64(len(c.attempts)) || got.Duration.P50MS != c.p50MS {
				t.Errorf("%s: %d durations, p50 %v ms; want %d, %v ms", c.name, got.Duration.Count, got.Duration.P50MS, len(c.attempts), c.p50MS)
			}
			// Only a first attempt's wait counts: a retry's stamp is its first enqueue.
			if first := c.attempts[0].attempt == 1; first && (got.Wait.Count != 1 || got.Wait.P50MS != 25) {
				t.Errorf("%s: %d waits, p50 %v ms; want one first-attempt wait of 20 ms, in the 25 ms bucket", c.name, got.Wait.Count, got.Wait.P50MS)
			} else if !first && got.Wait.Count != 0 {
				t.Errorf("%s: a retry's wait was counted", c.name)
			}
		}
		task, err := e.reader.Task(t.Context(), c.queue, c.typ, 0)
		if err != nil || task.State != c.state {
			t.Errorf("%s: the task reads %v (%v), want %s", c.name, task, err, c.state)
		}
	}
	var minutes int
	for _, s := range stats.Types {
		minutes += len(s.Minutes)
	}
	if minutes < len(cases) {
		t.Errorf("per-minute series: %d entries, want at least one per type and queue", minutes)
	}
}

// The stream stays within its cap after twice MaxEvents tasks, and so does what a reader holds.
func TestStorageCapped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const maxEvents = 500
	rec := e.recorder(live.Options{MaxEvents: maxEvents})
	for i := range 2 * maxEvents {
		a := rec.Start(live.Info{Queue: "cap", ID: strconv.Itoa(i), Type: "cap:" + strconv.Itoa(i%5)})
		a.End(context.Background(), nil)
	}
	rec.Close()
	n, err := e.rdb.XLen(t.Context(), "taskrace:live:facts").Result()
	if err != nil {
		t.Fatal(err)
	}
	const node = 100 // Redis trims whole stream nodes: stream-node-max-entries
	if n > maxEvents+node {
		t.Errorf("the stream holds %d facts, over its cap of %d (+ one node)", n, maxEvents)
	}
	keys, err := e.rdb.Keys(t.Context(), "taskrace:live:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 4 { // the stream, the totals, and a minute or two of aggregates
		t.Errorf("keys: %v", keys)
	}
	for _, k := range keys {
		ttl, _ := e.rdb.TTL(t.Context(), k).Result()
		if k != "taskrace:live:facts" && k != "taskrace:live:queue-totals" && (ttl <= 0 || ttl > live.StatsRetention+2*time.Minute) {
			t.Errorf("%s expires in %s, want within %s", k, ttl, live.StatsRetention)
		}
	}
	fresh := e.newReader(live.ReaderOptions{})
	if err := fresh.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	p, err := fresh.Tasks(t.Context(), nil, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Total > int(n) || p.Total < maxEvents/2-node {
		t.Errorf("a reader holds %d tasks of a stream of %d facts", p.Total, n)
	}
	totals, _ := fresh.Totals(t.Context())
	var started int64
	for _, s := range totals.Types {
		started += s.Started
	}
	if started != 2*maxEvents {
		t.Errorf("totals count %d starts, want %d: trimming the stream keeps the aggregates", started, 2*maxEvents)
	}
	capped := e.newReader(live.ReaderOptions{MaxTasks: 100})
	capped.Sync(t.Context())
	if p, _ := capped.Tasks(t.Context(), nil, 10, ""); p.Total != 100 {
		t.Errorf("a reader capped at 100 tasks holds %d", p.Total)
	}
}

// A watch sees only what its query selects, and one resumed after an event ID misses nothing.
func TestWatchResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.recorder(live.Options{Durable: true})
	q, _ := live.ParseQuery("state:failed,running type:w:*")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var first []*live.Event
	cut := errors.New("cut")
	got := make(chan error, 1)
	go func() {
		got <- e.reader.Watch(ctx, q, "", func(ev *live.Event) error {
			first = append(first, ev)
			if len(first) == 3 {
				return cut
			}
			return nil
		})
	}()
	waitSubscribed(t, e.reader)
	for i := range 10 {
		typ := "w:a"
		if i%2 == 1 {
			typ = "other"
		}
		a := rec.Start(live.Info{Queue: "w", ID: strconv.Itoa(i), Type: typ})
		rec.Flush(ctx) // the start in a batch of its own: it is stored as a fact of its own
		var err error
		if i%4 == 0 {
			err = errors.New("boom")
		}
		a.End(ctx, err)
	}
	if err := <-got; !errors.Is(err, cut) {
		t.Fatalf("Watch = %v", err)
	}
	var rest []*live.Event
	enough := errors.New("enough")
	err := e.reader.Watch(ctx, q, first[len(first)-1].ID, func(ev *live.Event) error {
		rest = append(rest, ev)
		if len(first)+len(rest) == 8 {
			return enough
		}
		return nil
	})
	if !errors.Is(err, enough) {
		t.Fatalf("resumed Watch = %v after %d events", err, len(rest))
	}
	// w:a tasks are 0, 2, 4, 6, 8: five starts (running), and 0, 4, 8 fail.
	var seen []string
	for _, ev := range append(first, rest...) {
		if ev.Type != "w:a" || (ev.State != taskstate.Running && ev.State != taskstate.Failed) {
			t.Errorf("the query let through %s %s in state %s", ev.Type, ev.TaskID, ev.State)
		}
		seen = append(seen, ev.TaskID+":"+ev.State)
	}
	want := "[0:running 0:failed 2:running 4:running 4:failed 6:running 8:running 8:failed]"
	if fmt.Sprint(seen) != want {
		t.Errorf("watched %v, want %s", seen, want)
	}
}

// waitSubscribed waits until r has a watcher: facts written after it are delivered live.
func waitSubscribed(t *testing.T, r *live.Reader) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.Subscribers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watch did not subscribe")
		}
		time.Sleep(time.Millisecond) // nothing announces a subscription
	}
}

func TestParseQuery(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   string
		want live.Query
	}{
		{"", live.Query{}},
		{"state:failed type:email:* queue:critical worker:host1 retried:yes timeout",
			live.Query{States: []string{"failed"}, Types: []string{"email:*"}, Queues: []string{"critical"},
				Workers: []string{"host1"}, Retried: ptr(true), Words: []string{"timeout"}}},
		{`"dial tcp: refused"  state:done,failed`, live.Query{States: []string{"done", "failed"}, Words: []string{"dial tcp: refused"}}},
		{"retried:no", live.Query{Retried: ptr(false)}},
	}
	for _, g := range good {
		q, err := live.ParseQuery(g.in)
		if err != nil {
			t.Errorf("%q: %v", g.in, err)
			continue
		}
		if fmt.Sprintf("%v %v %v %v %v %v", q.States, q.Types, q.Queues, q.Workers, deref(q.Retried), q.Words) !=
			fmt.Sprintf("%v %v %v %v %v %v", g.want.States, g.want.Types, g.want.Queues, g.want.Workers, deref(g.want.Retried), g.want.Words) {
			t.Errorf("%q parsed as %+v, want %+v", g.in, q, g.want)
		}
	}
	bad := []struct{ in, says string }{
		{"state:succeeded", "state must be one of queued, running, retrying, done, failed, canceled"},
		{"color:red", `unknown key "color"`},
		{"retried:maybe", "retried must be yes or no"},
		{`"open`, "a quote is not closed"},
		{"type:", "no value"},
		{"type:[a", "not a valid pattern"},
	}
	for _, b := range bad {
		_, err := live.ParseQuery(b.in)
		var qe *live.QueryError
		if !errors.As(err, &qe) || !contains(err.Error(), b.says) {
			t.Errorf("%q: error %v, want one saying %q", b.in, err, b.says)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func deref(b *bool) string {
	if b == nil {
		return "nil"
	}
	return strconv.FormatBool(*b)
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// Payloads and results are recorded only up to the limits set, and never by default.
func TestPayloadAndResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.recorder(live.Options{PayloadBytes: 8, ResultBytes: 64, Durable: true})
	e.server(rec, 1, []string{"p"}, map[string]asynq.HandlerFunc{
		"p": func(ctx context.Context, task *asynq.Task) error {
			_, err := live.WriteResult(ctx, task, []byte("resized to 64×64"))
			return err
		},
	})
	e.enqueue("p", "p", "one", asynq.Retention(time.Minute))
	e.await("", 1)
	task, err := e.reader.Task(t.Context(), "p", "one", 0)
	if err != nil {
		t.Fatal(err)
	}
	if task.Payload == nil || task.Payload.Data != `{"to":"a` || !task.Payload.Truncated || task.Payload.Size != 24 {
		t.Errorf("payload %+v, want its first 8 bytes of 24", task.Payload)
	}
	if task.Result == nil || task.Result.Data != "resized to 64×64" || task.Result.Truncated {
		t.Errorf("result %+v", task.Result)
	}
	ins := asynq.NewInspector(e.opt)
	defer ins.Close()
	if info, err := ins.GetTaskInfo("p", "one"); err != nil || string(info.Result) != "resized to 64×64" {
		t.Errorf("asynq's result: %v, %v", info, err)
	}
}

// Slots stay within 0…concurrency−1, and no two attempts at once share one.
func TestSlots(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.recorder(live.Options{Concurrency: 3, Durable: true})
	var mu sync.Mutex
	held := map[int]bool{}
	clash := false
	e.server(rec, 3, []string{"s"}, map[string]asynq.HandlerFunc{
		"s": func(ctx context.Context, _ *asynq.Task) error {
			a, _ := live.AttemptFrom(ctx)
			slot := a.Worker().Slot
			mu.Lock()
			clash = clash || held[slot] || slot > 2
			held[slot] = true
			mu.Unlock()
			time.Sleep(5 * time.Millisecond) // the work of the task
			mu.Lock()
			delete(held, slot)
			mu.Unlock()
			return nil
		},
	})
	for i := range 30 {
		e.enqueue("s", "s", strconv.Itoa(i))
	}
	e.await("", 30)
	mu.Lock()
	defer mu.Unlock()
	if clash {
		t.Error("two attempts at once held the same slot, or a slot was out of 0…2")
	}
}

// A handler's panic is recorded as such, and asynq still recovers it and retries the task.
func TestPanicIsRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.recorder(live.Options{Durable: true})
	e.server(rec, 1, []string{"panics"}, map[string]asynq.HandlerFunc{
		"p": func(ctx context.Context, _ *asynq.Task) error {
			if n, _ := asynq.GetRetryCount(ctx); n == 0 {
				panic("nil map")
			}
			return nil
		},
	})
	e.enqueue("p", "panics", "p1", asynq.MaxRetry(1))
	e.await("", 1)
	task, err := e.reader.Task(t.Context(), "panics", "p1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(task.History) != 2 || task.History[0].Exit != live.ExitPanic || !task.History[0].Retry ||
		task.History[0].Error != "panic: nil map" || task.State != taskstate.Done {
		t.Errorf("p1: %+v", task)
	}
}

// A subscriber that does not keep up is dropped from the live feed and catches up from the
// stream: it still gets every fact once, in order.
func TestSlowSubscriberMissesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.recorder(live.Options{})
	s, err := e.reader.Subscribe(t.Context(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 3000 // past what the feed buffers for a subscriber
	for i := range n {
		rec.Start(live.Info{Queue: "slow", ID: strconv.Itoa(i), Type: "slow"}).End(t.Context(), nil)
	}
	rec.Flush(t.Context())
	if err := e.reader.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []string
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for len(got) < n {
		evs, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("after %d facts: %v", len(got), err)
		}
		for _, ev := range evs {
			if ev.Kind == live.KindEnded {
				got = append(got, ev.TaskID)
			}
		}
		if len(evs) == 0 {
			select {
			case <-s.Ready():
			case <-ctx.Done():
				t.Fatalf("waited for facts after %d", len(got))
			}
		}
	}
	for i, id := range got {
		if id != strconv.Itoa(i) {
			t.Fatalf("fact %d is of task %s: out of order or repeated", i, id)
		}
	}
}

// A reader whose Redis does not answer says so at once, rather than at the caller's deadline.
func TestReaderWithoutRedis(t *testing.T) {
	t.Parallel()
	r, err := live.NewReader(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond}, live.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		start := time.Now()
		_, err := r.Tasks(ctx, nil, 10, "")
		took := time.Since(start)
		cancel()
		if !errors.Is(err, live.ErrUnavailable) {
			t.Fatalf("Tasks without Redis: %v, want ErrUnavailable", err)
		}
		if took < 500*time.Millisecond {
			return // the reader's first read failed: from then on it answers at once
		}
		if time.Now().After(deadline) {
			t.Fatalf("Tasks without Redis still waits %s for its deadline", took)
		}
	}
}

// FuzzParseQuery: any text parses or is refused with a QueryError, and what parses matches
// without a panic.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"state:failed type:email:* queue:critical worker:host retried:yes timeout",
		`"dial tcp" x`, "type:[", "retried:maybe", `"`, "state:done,failed", "worker:h:1/0", "ü:ß"} {
		f.Add(s)
	}
	task := &live.Task{Queue: "critical", ID: "abc", Type: "email:send", State: "failed", Attempts: 2,
		Worker: live.Worker{Host: "host", PID: 1}, Error: "dial tcp: timeout"}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := live.ParseQuery(s)
		if err != nil {
			var qe *live.QueryError
			if !errors.As(err, &qe) {
				t.Fatalf("ParseQuery(%q): %v is no QueryError", s, err)
			}
			return
		}
		q.Match(task)
	})
}

// Canceled stops a task from outside: one that ended for good keeps its state, any other
// reads canceled from then on, whatever attempt of it comes after; one never attempted is
// recorded as canceled.
func TestCanceled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.recorder(live.Options{Durable: true})
	ctx := t.Context()
	info := func(id string, attempt int) live.Info {
		return live.Info{Queue: "c", ID: id, Type: "t", Attempt: attempt, MaxRetry: 3}
	}
	// Each case: its attempts before the cancel (the error each ends with, or still running),
	// and after it.
	type step struct {
		err     error
		running bool
	}
	boom := errors.New("boom")
	cases := []struct {
		id            string
		before, after []step
		want          string
	}{
		{"never-started", nil, nil, taskstate.Canceled},
		{"started-after", nil, []step{{err: nil}}, taskstate.Canceled},
		{"running", []step{{running: true}}, nil, taskstate.Canceled},
		{"running-then-ends", []step{{running: true}}, nil, taskstate.Canceled},
		{"retrying", []step{{err: boom}}, nil, taskstate.Canceled},
		{"retried-after", []step{{err: boom}}, []step{{err: boom}}, taskstate.Canceled},
		{"done", []step{{err: nil}}, nil, taskstate.Done},
		{"failed", []step{{err: fmt.Errorf("no: %w", asynq.SkipRetry)}}, nil, taskstate.Failed},
	}
	open := map[string]*live.Attempt{}
	for _, c := range cases {
		for i, s := range c.before {
			a := rec.Start(info(c.id, i+1))
			if s.running {
				open[c.id] = a
				continue
			}
			if err := a.End(ctx, s.err); err != nil {
				t.Fatal(err)
			}
		}
	}
	var stopped []live.Info
	for _, c := range cases {
		stopped = append(stopped, info(c.id, 0))
	}
	if err := rec.Canceled(ctx, stopped...); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		for i, s := range c.after {
			if err := rec.Start(info(c.id, len(c.before)+i+1)).End(ctx, s.err); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := open["running-then-ends"].End(ctx, errors.New("stopped")); err != nil {
		t.Fatal(err)
	}
	if err := e.reader.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		task, err := e.reader.Task(ctx, "c", c.id, 0)
		if err != nil {
			t.Errorf("%s: %v", c.id, err)
			continue
		}
		if task.State != c.want || task.Execution != 1 {
			t.Errorf("%s: %s (execution %d), want %s (execution 1)", c.id, task.State, task.Execution, c.want)
		}
		if c.want == taskstate.Canceled && task.EndedAt.IsZero() {
			t.Errorf("%s: canceled with no end time", c.id)
		}
	}
	if p := e.page("state:canceled queue:c", 100, ""); p.Total != 6 {
		t.Errorf("state:canceled selects %d tasks, want 6: %v", p.Total, ids(p))
	}
	open["running"].End(ctx, nil)
}

// An application stores a staged end in its own round trip: the attempt is then ended once
// (End does nothing more), counted once, and reads as the staged end says; an end staged and
// never stored leaves End to record it.
func TestStagedEnding(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.recorder(live.Options{Durable: true})
	ctx := t.Context()
	info := func(queue, id string) live.Info {
		return live.Info{Queue: queue, ID: id, Type: "staged", Attempt: 1, MaxRetry: 0}
	}

	a := rec.Start(info("st", "stored"))
	ok := a.Stage(ctx, nil)
	revoked := a.Stage(ctx, fmt.Errorf("gone: %w", asynq.RevokeTask))
	if ok.Stream != revoked.Stream || ok.MaxLen != live.DefaultMaxEvents || ok.Data == revoked.Data {
		t.Fatalf("staged ends: %+v and %+v", ok, revoked)
	}
	// The application's own round trip: its write and the staged end, together.
	p := e.rdb.TxPipeline()
	p.Set(ctx, "app:record", "revoked", 0)
	p.XAdd(ctx, &redis.XAddArgs{Stream: revoked.Stream, MaxLen: revoked.MaxLen, Approx: true, Values: []string{"f", revoked.Data}})
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	revoked.Stored()
	ok.Stored() // the other outcome: too late, the attempt has ended
	if err := a.End(ctx, errors.New("not recorded")); err != nil {
		t.Fatal(err)
	}

	b := rec.Start(info("st2", "left"))
	b.Stage(ctx, nil) // never stored: End records the attempt
	if err := b.End(ctx, errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.reader.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][2]string{"st/stored": {taskstate.Canceled, live.ExitRevoked}, "st2/left": {taskstate.Failed, live.ExitError}} {
		queue, id, _ := strings.Cut(id, "/")
		task, err := e.reader.Task(ctx, queue, id, 0)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if task.State != want[0] || task.Exit != want[1] || len(task.History) != 1 {
			t.Errorf("%s: %s, exit %s, %d attempts; want %s, exit %s, 1 attempt", id, task.State, task.Exit, len(task.History), want[0], want[1])
		}
	}
	n, err := e.rdb.XLen(ctx, revoked.Stream).Result()
	if err != nil || n != 4 { // a start and an end each: Stage waits for the start to be stored
		t.Errorf("%d facts stored (%v), want 4", n, err)
	}
	st, err := e.reader.Totals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Each end counts on its own queue: the one stored by the application as the one End
	// recorded.
	if len(st.Types) != 2 || st.Types[0].Queue != "st" || st.Types[1].Queue != "st2" {
		t.Fatalf("aggregates %+v: want staged on st and on st2", st.Types)
	}
	if s := st.Types[0]; s.Started != 1 || s.Ended[live.ExitRevoked] != 1 || len(s.Ended) != 1 {
		t.Errorf("aggregates on st %+v: want 1 started, 1 revoked", s)
	}
	if s := st.Types[1]; s.Started != 1 || s.Ended[live.ExitError] != 1 || s.Failed != 1 || len(s.Ended) != 1 {
		t.Errorf("aggregates on st2 %+v: want 1 started, 1 error, failed", s)
	}
}

// With StagedStarts the handler stores each start itself; a start it never stored is
// written with the attempt's end. Each start is stored and counted once.
func TestStagedStarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.recorder(live.Options{Durable: true, StagedStarts: true})
	ctx := t.Context()
	info := func(id string) live.Info { return live.Info{Queue: "ss", ID: id, Type: "staged", Attempt: 1} }

	a := rec.Start(info("staged"))
	start := a.StageStart()
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: start.Stream, Values: []string{"f", start.Data}}).Err(); err != nil {
		t.Fatal(err)
	}
	start.Stored()
	start.Stored()
	if err := e.reader.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if task, err := e.reader.Task(ctx, "ss", "staged", 0); err != nil || task.State != taskstate.Running {
		t.Fatalf("after its staged start: %+v, %v; want running", task, err)
	}
	if err := a.End(ctx, nil); err != nil {
		t.Fatal(err)
	}
	b := rec.Start(info("unstaged"))
	b.StageStart() // never stored
	if err := b.End(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.reader.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"staged", "unstaged"} {
		task, err := e.reader.Task(ctx, "ss", id, 0)
		if err != nil || task.State != taskstate.Done || len(task.History) != 1 || task.StartedAt.IsZero() {
			t.Errorf("%s: %+v, %v; want done after one attempt with its start", id, task, err)
		}
	}
	st, err := e.reader.Totals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Types) != 1 || st.Types[0].Started != 2 || st.Types[0].Succeeded != 2 {
		t.Errorf("aggregates %+v: want 2 started, 2 succeeded", st.Types)
	}
}
