package live_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/taskrace/taskrace/internal/redistest"
	"github.com/taskrace/taskrace/live"
	"github.com/taskrace/taskrace/live/taskstate"
)

var (
	redisServer  *redistest.Server
	exampleRedis string // the Example's Redis: database 0
)

func TestMain(m *testing.M) {
	if url := os.Getenv(workerEnv); url != "" {
		os.Exit(runWorker(url)) // the test binary re-executed as a worker (TestDurableSurvivesSIGKILL)
	}
	s, err := redistest.StartProcess(redistest.WithDatabases(64))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	redisServer = s
	exampleRedis = s.Addr()
	s.NextDB() // database 0 is the Example's
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// env is one test's Redis database with a reader on it.
type env struct {
	t      *testing.T
	opt    asynq.RedisClientOpt
	rdb    *redis.Client // for looking at storage
	reader *live.Reader
}

func newEnv(t *testing.T) *env {
	t.Helper()
	opt := asynq.RedisClientOpt{Addr: redisServer.Addr(), DB: redisServer.NextDB()}
	e := &env{t: t, opt: opt, rdb: redis.NewClient(&redis.Options{Addr: opt.Addr, DB: opt.DB})}
	t.Cleanup(func() { e.rdb.Close() })
	e.reader = e.newReader(live.ReaderOptions{})
	return e
}

func (e *env) newReader(opts live.ReaderOptions) *live.Reader {
	e.t.Helper()
	r, err := live.NewReader(e.opt, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.Close() })
	return r
}

func (e *env) recorder(opts live.Options) *live.Recorder {
	e.t.Helper()
	rec, err := live.NewRecorder(e.opt, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { rec.Close() })
	return rec
}

// server starts an asynq server on queues whose handlers rec records; retries come at once
// (at the next whole second, as asynq stores retry times).
func (e *env) server(rec *live.Recorder, concurrency int, queues []string, handlers map[string]asynq.HandlerFunc) {
	e.t.Helper()
	qs := map[string]int{}
	for _, q := range queues {
		qs[q] = 1
	}
	srv := asynq.NewServer(e.opt, asynq.Config{Concurrency: concurrency, Queues: qs,
		TaskCheckInterval: 5 * time.Millisecond, DelayedTaskCheckInterval: 50 * time.Millisecond,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return 0 },
		LogLevel:       asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.Use(rec.Middleware)
	for typ, h := range handlers {
		mux.HandleFunc(typ, h)
	}
	if err := srv.Start(mux); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(srv.Shutdown)
}

func (e *env) enqueue(typ, queue, id string, opts ...asynq.Option) {
	e.t.Helper()
	c := asynq.NewClient(e.opt)
	defer c.Close()
	if _, err := c.Enqueue(live.NewTask(typ, []byte(`{"to":"ana@example.com"}`)), append([]asynq.Option{asynq.Queue(queue), asynq.TaskID(id)}, opts...)...); err != nil {
		e.t.Fatal(err)
	}
}

// await watches the facts from the start until n tasks the query selects have ended for
// good, and returns them all.
func (e *env) await(query string, n int) []*live.Event {
	e.t.Helper()
	q, err := live.ParseQuery(query)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(e.t.Context(), 20*time.Second)
	defer cancel()
	var seen []*live.Event
	ended := 0
	enough := errors.New("enough")
	err = e.reader.Watch(ctx, q, "0-0", func(ev *live.Event) error {
		seen = append(seen, ev)
		if taskstate.Ended(ev.State) {
			if ended++; ended == n {
				return enough
			}
		}
		return nil
	})
	if !errors.Is(err, enough) {
		e.t.Fatalf("waiting for %d tasks of %q to end: %v (%d ended, %d facts)", n, query, err, ended, len(seen))
	}
	if err := e.reader.Sync(ctx); err != nil {
		e.t.Fatal(err)
	}
	return seen
}

func (e *env) page(query string, limit int, cursor string) *live.Page {
	e.t.Helper()
	q, err := live.ParseQuery(query)
	if err != nil {
		e.t.Fatalf("ParseQuery(%q): %v", query, err)
	}
	p, err := e.reader.Tasks(e.t.Context(), q, limit, cursor)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func ids(p *live.Page) []string {
	var out []string
	for _, t := range p.Tasks {
		out = append(out, t.Queue+"/"+t.ID)
	}
	return out
}

var errNoSMTP = errors.New("dial tcp 10.0.0.1:25: connection refused")

// Two foreign types on their own queue: one always fails, one fails once and then succeeds.
func TestForeignTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.recorder(live.Options{Concurrency: 3})
	const queue = "foreign"
	e.server(rec, 3, []string{queue}, map[string]asynq.HandlerFunc{
		"email:send": func(context.Context, *asynq.Task) error { return errNoSMTP },
		"image:resize": func(ctx context.Context, _ *asynq.Task) error {
			if n, _ := asynq.GetRetryCount(ctx); n == 0 {
				return errors.New("cache cold")
			}
			return nil
		},
	})
	for i := range 3 {
		e.enqueue("email:send", queue, fmt.Sprintf("mail-%d", i), asynq.MaxRetry(1))
		e.enqueue("image:resize", queue, fmt.Sprintf("img-%d", i), asynq.MaxRetry(3))
	}
	e.await("queue:"+queue, 6)

	all := e.page("", 100, "")
	if all.Total != 6 || all.Counts[taskstate.Failed] != 3 || all.Counts[taskstate.Done] != 3 {
		t.Fatalf("all tasks: total %d, counts %v; want 6, 3 failed and 3 done", all.Total, all.Counts)
	}
	for _, task := range all.Tasks {
		switch task.Type {
		case "email:send":
			if task.State != taskstate.Failed || task.Attempts != 2 || task.Exit != live.ExitError ||
				task.Error != errNoSMTP.Error() || task.MaxRetry != 1 {
				t.Errorf("%s: state %s, %d attempts, exit %s, error %q, max retry %d; want failed after 2 attempts with the SMTP error",
					task.ID, task.State, task.Attempts, task.Exit, task.Error, task.MaxRetry)
			}
		case "image:resize":
			if task.State != taskstate.Done || task.Attempts != 2 || task.Exit != live.ExitSuccess || task.DurationMS == nil {
				t.Errorf("%s: state %s, %d attempts, exit %s; want done after 2 attempts", task.ID, task.State, task.Attempts, task.Exit)
			}
		}
		if task.Worker.Host == "" || task.Worker.PID != os.Getpid() || task.Worker.Slot < 0 || task.Worker.Slot > 2 {
			t.Errorf("%s: worker %+v, want this process with a slot in 0…2", task.ID, task.Worker)
		}
		if task.WaitMS == nil || task.EnqueuedAt.IsZero() {
			t.Errorf("%s: no wait recorded, though NewTask stamped it", task.ID)
		}
		if task.Payload != nil {
			t.Errorf("%s: payload recorded without PayloadBytes", task.ID)
		}
	}

	filters := []struct {
		query string
		want  int
	}{
		{"state:failed", 3},
		{"state:done", 3},
		{"state:failed,done", 6},
		{"type:email:*", 3},
		{"type:image:resize state:done", 3},
		{"type:image:* state:failed", 0},
		{"queue:foreign", 6},
		{"queue:other", 0},
		{"retried:yes", 6},
		{"retried:no", 0},
		{"refused", 3}, // free text in the error
		{"REFUSED", 3}, // any case
		{`"connection refused"`, 3},
		{"cold", 3},  // an earlier attempt's error
		{"img-1", 1}, // free text in the ID
		{"mail", 3},
		{"worker:" + all.Tasks[0].Worker.Host, 6},
		{"worker:nohost", 0},
	}
	for _, f := range filters {
		if got := e.page(f.query, 100, ""); got.Total != f.want || len(got.Tasks) != f.want {
			t.Errorf("%q: %d tasks (total %d), want %d: %v", f.query, len(got.Tasks), got.Total, f.want, ids(got))
		}
	}

	// Pages, newest first, cover every task once.
	var paged []string
	cursor := ""
	for range 10 {
		p := e.page("", 4, cursor)
		paged = append(paged, ids(p)...)
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if !slices.Equal(paged, ids(all)) {
		t.Errorf("paged %v, want %v", paged, ids(all))
	}

	d, err := e.reader.Task(t.Context(), queue, "mail-0", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.History) != 2 || d.History[0].Outcome != taskstate.AttemptFailed || !d.History[0].Retry ||
		d.History[1].Outcome != taskstate.AttemptFailed || d.History[1].Retry {
		t.Errorf("mail-0's attempts: %+v; want failed and retried, then failed for good", d.History)
	}
	if _, err := e.reader.Task(t.Context(), "other", "mail-0", 0); !errors.Is(err, live.ErrNotFound) {
		t.Errorf("a task on another queue: %v, want ErrNotFound", err)
	}

	if err := rec.Flush(t.Context()); err != nil { // the aggregates are written every 100 ms or so
		t.Fatal(err)
	}
	stats, err := e.reader.Stats(t.Context(), time.Now().Add(-time.Hour), time.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]live.TypeStats{}
	for _, s := range stats.Types {
		got[s.Type] = s
	}
	if s := got["email:send"]; s.Started != 6 || s.Ended[live.ExitError] != 6 || s.Retried != 3 || s.Failed != 3 || s.Succeeded != 0 {
		t.Errorf("email:send aggregates: %+v", s)
	}
	if s := got["image:resize"]; s.Started != 6 || s.Succeeded != 3 || s.Retried != 3 || s.Failed != 0 || s.Wait.Count != 3 {
		t.Errorf("image:resize aggregates: %+v", s)
	}
}

// asynq IDs are unique per queue only: the same ID on two queues is two tasks, and an ID
// enqueued again once its task is gone is a new execution.
func TestTaskKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.recorder(live.Options{})
	e.server(rec, 2, []string{"a", "b"}, map[string]asynq.HandlerFunc{
		"ok":   func(context.Context, *asynq.Task) error { return nil },
		"fail": func(context.Context, *asynq.Task) error { return fmt.Errorf("bad input: %w", asynq.SkipRetry) },
	})
	e.enqueue("ok", "a", "same")
	e.enqueue("fail", "b", "same")
	e.await("", 2)
	// b's first task is archived, which keeps its ID: delete it, and the ID is free again.
	ins := asynq.NewInspector(e.opt)
	defer ins.Close()
	if err := ins.DeleteTask("b", "same"); err != nil {
		t.Fatal(err)
	}
	e.enqueue("ok", "b", "same")
	e.await("", 3)
	p := e.page("", 10, "")
	if p.Total != 3 {
		t.Fatalf("%d tasks, want 3: %v", p.Total, ids(p))
	}
	a, err := e.reader.Task(t.Context(), "a", "same", 0)
	if err != nil || a.Type != "ok" || a.State != taskstate.Done || a.Execution != 1 {
		t.Errorf("a/same: %+v, %v; want the ok task, done", a, err)
	}
	b, err := e.reader.Task(t.Context(), "b", "same", 0)
	if err != nil || b.Type != "ok" || b.State != taskstate.Done || b.Execution != 2 {
		t.Errorf("b/same latest: %+v, %v; want the second execution, done", b, err)
	}
	b1, err := e.reader.Task(t.Context(), "b", "same", 1)
	if err != nil || b1.Type != "fail" || b1.State != taskstate.Failed || b1.Exit != live.ExitSkipRetry || b1.Attempts != 1 {
		t.Errorf("b/same execution 1: %+v, %v; want the failed task, skip_retry after one attempt", b1, err)
	}
	// The aggregates are kept by type and queue too: ok on a and on b are two series.
	if err := rec.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err := e.reader.Stats(t.Context(), time.Now().Add(-time.Hour), time.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range st.Types {
		got = append(got, fmt.Sprintf("%s on %s: %d started, %d succeeded, %d failed", s.Type, s.Queue, s.Started, s.Succeeded, s.Failed))
	}
	if want := []string{"fail on b: 1 started, 0 succeeded, 1 failed", "ok on a: 1 started, 1 succeeded, 0 failed",
		"ok on b: 1 started, 1 succeeded, 0 failed"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("aggregates:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
