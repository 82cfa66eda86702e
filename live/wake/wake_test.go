package wake

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/taskrace/taskrace/internal/redistest"
)

var redisServer *redistest.Server

func TestMain(m *testing.M) {
	s, err := redistest.StartProcess(redistest.WithDatabases(32))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	redisServer = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// deadline bounds every wait of these tests: long enough for a loaded machine, short
// enough to fail rather than hang when a wake-up is lost.
const deadline = 30 * time.Second

// newClient returns a client on a database of its own.
func newClient(t *testing.T, db int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisServer.Addr(), DB: db})
	t.Cleanup(func() { c.Close() })
	return c
}

// pushOnly returns a server on rdb whose waits end on a signal only: a wake-up that is
// lost makes the test wait for its deadline rather than be covered by the short waits.
func pushOnly(t *testing.T, rdb redis.UniversalClient, cfg asynq.Config) *Server {
	t.Helper()
	cfg.LogLevel = asynq.FatalLevel
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 2 * time.Second
	}
	s := NewServer(rdb, cfg)
	s.waker.shortWait, s.waker.longestWait = time.Hour, time.Hour
	return s
}

// announcing returns an asynq client on a client of database db with Announce's hook.
func announcing(t *testing.T, db int) *asynq.Client {
	t.Helper()
	rdb := newClient(t, db)
	Announce(rdb)
	c := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { c.Close() })
	return c
}

// receive waits for the next value on ch, failing t at the deadline.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("no %s within %s", what, deadline)
	}
	var zero T
	return zero
}

// recorder keeps the asynq scripts a client ran, by SHA-1 (EVALSHA) or by name (EVAL).
type recorder struct {
	mu   sync.Mutex
	cmds []redis.Cmder
}

func (r *recorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (r *recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			r.mu.Lock()
			r.cmds = append(r.cmds, cmd)
			r.mu.Unlock()
		}
		return err
	}
}

// seen returns the scripts run so far that classify as kind, with their replies.
func (r *recorder) seen(kind scriptKind) []redis.Cmder {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []redis.Cmder
	for _, c := range r.cmds {
		if classify(c).kind == kind {
			out = append(out, c)
		}
	}
	return out
}

// TestAsynqScripts pins what the hooks rely on in the asynq of go.mod: the SHA-1 of each
// script they act on, where its keys name the queue, and what it replies. An asynq whose
// scripts changed fails here, before any wake-up silently turns into polling.
func TestAsynqScripts(t *testing.T) {
	t.Parallel()
	db := redisServer.NextDB()
	rec := &recorder{}
	rdb := newClient(t, db)
	rdb.AddHook(rec)
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()

	release := make(chan struct{})
	started := make(chan string, 8)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{"pin": 1},
		TaskCheckInterval: 10 * time.Millisecond, DelayedTaskCheckInterval: 50 * time.Millisecond,
		ShutdownTimeout: 100 * time.Millisecond, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("pin", func(_ context.Context, task *asynq.Task) error {
		started <- string(task.Payload())
		if string(task.Payload()) == "held" {
			<-release // outlives the shutdown timeout: asynq puts it back on the queue
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(asynq.NewTask("pin", []byte("plain")), asynq.Queue("pin")); err != nil {
		t.Fatal(err)
	}
	receive(t, started, "plain task")
	if _, err := client.Enqueue(asynq.NewTask("pin", []byte("unique")), asynq.Queue("pin"), asynq.Unique(time.Minute)); err != nil {
		t.Fatal(err)
	}
	receive(t, started, "unique task")
	if _, err := client.Enqueue(asynq.NewTask("pin", []byte("later")), asynq.Queue("pin"), asynq.ProcessIn(time.Second)); err != nil {
		t.Fatal(err)
	}
	receive(t, started, "scheduled task")
	if _, err := client.Enqueue(asynq.NewTask("pin", []byte("held")), asynq.Queue("pin")); err != nil {
		t.Fatal(err)
	}
	receive(t, started, "held task")
	srv.Shutdown()
	close(release)

	// After SCRIPT FLUSH, go-redis sends the source with EVAL: that must be recognised too.
	if err := rdb.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(asynq.NewTask("pin", []byte("after flush")), asynq.Queue("pin")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		kind  scriptKind
		reply func(*redis.Cmd) error
	}{
		{"dequeue: nil on an empty queue, the task's message otherwise", dequeueScript, func(c *redis.Cmd) error {
			if c.Err() == redis.Nil {
				return nil
			}
			if _, err := c.Text(); err != nil {
				return fmt.Errorf("reply %v: %v", c.Val(), err)
			}
			return nil
		}},
		{"enqueue: 1 when enqueued", enqueueScript, func(c *redis.Cmd) error {
			if n, err := c.Int64(); err != nil || n != 1 {
				return fmt.Errorf("reply %v, %v; want 1", c.Val(), err)
			}
			return nil
		}},
		{"forward: how many it moved", forwardScript, func(c *redis.Cmd) error {
			if _, err := c.Int64(); err != nil {
				return fmt.Errorf("reply %v: %v", c.Val(), err)
			}
			return nil
		}},
		{"requeue: OK", requeueScript, func(c *redis.Cmd) error {
			if s, err := c.Text(); err != nil || s != "OK" {
				return fmt.Errorf("reply %v, %v; want OK", c.Val(), err)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds := rec.seen(tt.kind)
			if len(cmds) == 0 {
				t.Fatalf("asynq ran no script with the SHA-1 the hook knows: asynq's scripts changed; update scripts.go")
			}
			for _, c := range cmds {
				if err := c.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
					continue // go-redis sends the source next
				}
				if q := classify(c).queue; q != "pin" {
					t.Errorf("%s: queue %q from its keys, want pin", c.Name(), q)
				}
				if err := tt.reply(c.(*redis.Cmd)); err != nil {
					t.Errorf("%s: %v", c.Name(), err)
				}
			}
		})
	}
	t.Run("enqueue after SCRIPT FLUSH is recognised by its source", func(t *testing.T) {
		var evals int
		for _, c := range rec.seen(enqueueScript) {
			if c.Name() == "eval" {
				evals++
			}
		}
		if evals == 0 {
			t.Error("the EVAL of asynq's enqueue script was not recognised")
		}
	})
	t.Run("the dequeue's first argument is the lease, a Unix time 30 s on", func(t *testing.T) {
		for _, c := range rec.seen(dequeueScript) {
			args := c.Args()
			lease, ok := args[3+classify(c).keys].(int64)
			if !ok {
				t.Fatalf("lease argument %T %v, want int64", args[3+classify(c).keys], args[3+classify(c).keys])
			}
			if d := time.Until(time.Unix(lease, 0)); d < 20*time.Second || d > 31*time.Second {
				t.Fatalf("lease %s on, want about 30 s", d)
			}
		}
	})
}

func TestClassifyIgnoresOtherCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		cmd  redis.Cmder
	}{
		{"get", redis.NewCmd(ctx, "get", "asynq:{q}:pending")},
		{"other script", redis.NewCmd(ctx, "evalsha", "0123456789abcdef0123456789abcdef01234567", 1, "asynq:{q}:pending")},
		{"eval of a script as long as one of asynq's", redis.NewCmd(ctx, "eval", strings.Repeat("x", 328), 4, "asynq:{q}:pending", "b", "c", "d", 1, "p")},
		{"dequeue with too few keys", redis.NewCmd(ctx, "evalsha", dequeueSHA, 0)},
		{"dequeue with a key count larger than its keys", redis.NewCmd(ctx, "evalsha", dequeueSHA, 9, "asynq:{q}:pending")},
		{"dequeue on a key that is not a pending list", redis.NewCmd(ctx, "evalsha", dequeueSHA, 4, "asynq:{q}:active", "b", "c", "d", 1, "p")},
		{"dequeue with a key count of the wrong type", redis.NewCmd(ctx, "evalsha", dequeueSHA, "4", "asynq:{q}:pending", "b", "c", "d", 1, "p")},
		{"too short", redis.NewCmd(ctx, "evalsha")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s := classify(tt.cmd); s.kind != otherScript {
				t.Errorf("classified as %d on %q", s.kind, s.queue)
			}
		})
	}
	if s := classify(redis.NewCmd(ctx, "evalsha", dequeueSHA, 4, "asynq:{a:b}:pending", "b", "c", "d", int64(1), "p")); s.kind != dequeueScript || s.queue != "a:b" {
		t.Errorf("a queue with a colon: %+v", s)
	}
}

func TestRefreshLease(t *testing.T) {
	t.Parallel()
	e := emptyQueue{args: []any{"evalsha", dequeueSHA, 4, "k1", "k2", "k3", "k4", int64(1000), "prefix"}, sent: time.Now().Add(-3500 * time.Millisecond)}
	got := refreshLease(e)
	if got[7] != int64(1003) {
		t.Errorf("lease %v after 3.5 s, want 1003", got[7])
	}
	if e.args[7] != int64(1000) {
		t.Errorf("the kept arguments changed: %v", e.args[7])
	}
	e.args[7] = "1000" // as a string, should a caller pass one
	if got := refreshLease(e); got[7] != int64(1003) {
		t.Errorf("lease %v from a string, want 1003", got[7])
	}
}

// TestRaceEnqueueAndEmptyDequeue races an enqueue with the dequeue that finds the queue
// empty, many times: half of the tasks are enqueued inside the window between the empty
// dequeue and the wait (their signal received before the wait starts), the others at a
// random moment. Waits end on signals only, so a lost wake-up hangs until the deadline.
func TestRaceEnqueueAndEmptyDequeue(t *testing.T) {
	t.Parallel()
	db := redisServer.NextDB()
	client := announcing(t, db)
	srv := pushOnly(t, newClient(t, db), asynq.Config{Concurrency: 1, Queues: map[string]int{"race": 1}})
	got := make(chan int, 1)
	mux := asynq.NewServeMux()
	mux.HandleFunc("race", func(_ context.Context, task *asynq.Task) error {
		var i int
		fmt.Sscan(string(task.Payload()), &i)
		got <- i
		return nil
	})

	const n = 300
	var (
		mu      sync.Mutex
		inside  = -1 // the task to enqueue inside the window, or -1
		windows int  // how many were
	)
	enqueue := func(i int) {
		if _, err := client.Enqueue(asynq.NewTask("race", fmt.Appendf(nil, "%d", i)), asynq.Queue("race")); err != nil {
			t.Error(err)
		}
	}
	srv.waker.beforeWait = func() {
		mu.Lock()
		i := inside
		inside = -1
		if i >= 0 {
			windows++
		}
		mu.Unlock()
		if i < 0 {
			return
		}
		srv.waker.mu.Lock()
		sig := srv.waker.signal
		srv.waker.mu.Unlock()
		enqueue(i)
		select { // the signal has come before the wait starts
		case <-sig:
		case <-time.After(deadline):
			t.Errorf("task %d: its signal never came", i)
		}
	}
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	for i := range n {
		if i%2 == 0 {
			mu.Lock()
			inside = i
			mu.Unlock()
			// The processor is idle or about to be: its next empty dequeue enqueues i. Wake it
			// if it already waits, with a task of its own.
			enqueue(-1 - i)
			a, b := receive(t, got, fmt.Sprintf("task %d", -1-i)), receive(t, got, fmt.Sprintf("task %d", i))
			if min(a, b) != -1-i || max(a, b) != i {
				t.Fatalf("got tasks %d and %d, want %d and %d", a, b, -1-i, i)
			}
			continue
		}
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond) // a random moment in the processor's cycle, not a wait for an event
		enqueue(i)
		if v := receive(t, got, fmt.Sprintf("task %d", i)); v != i {
			t.Fatalf("got task %d, want %d", v, i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if windows != n/2 {
		t.Errorf("%d tasks enqueued inside the window, want %d", windows, n/2)
	}
}

// TestShutdownWhileWaiting: Shutdown returns while the hook waits, rather than after its
// wait (asynq's processor cannot stop during a dequeue).
func TestShutdownWhileWaiting(t *testing.T) {
	t.Parallel()
	for _, stop := range []string{"Shutdown", "Stop"} {
		t.Run(stop, func(t *testing.T) {
			t.Parallel()
			srv := pushOnly(t, newClient(t, redisServer.NextDB()), asynq.Config{Concurrency: 2, Queues: map[string]int{"idle": 1}})
			waiting := make(chan struct{}, 1)
			srv.waker.beforeWait = func() {
				select {
				case waiting <- struct{}{}:
				default:
				}
			}
			mux := asynq.NewServeMux()
			mux.HandleFunc("idle", func(context.Context, *asynq.Task) error { return nil })
			if err := srv.Start(mux); err != nil {
				t.Fatal(err)
			}
			receive(t, waiting, "wait")
			done := make(chan struct{})
			go func() {
				if stop == "Stop" {
					srv.Stop()
				}
				srv.Shutdown()
				close(done)
			}()
			receive(t, done, stop+" return")
		})
	}
}

// TestRetryWakes: a task that fails is retried after its delay without a poll: the
// forwarder's move to pending wakes the server.
func TestRetryWakes(t *testing.T) {
	t.Parallel()
	db := redisServer.NextDB()
	client := announcing(t, db)
	srv := pushOnly(t, newClient(t, db), asynq.Config{Concurrency: 2, Queues: map[string]int{"retry": 1},
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return time.Second }})
	attempts := make(chan int, 4)
	mux := asynq.NewServeMux()
	mux.HandleFunc("retry", func(ctx context.Context, _ *asynq.Task) error {
		n, _ := asynq.GetRetryCount(ctx)
		attempts <- n
		if n == 0 {
			return errors.New("the first attempt fails")
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	if _, err := client.Enqueue(asynq.NewTask("retry", nil), asynq.Queue("retry"), asynq.MaxRetry(2)); err != nil {
		t.Fatal(err)
	}
	if n := receive(t, attempts, "first attempt"); n != 0 {
		t.Fatalf("first attempt has retry count %d", n)
	}
	if n := receive(t, attempts, "retry"); n != 1 {
		t.Fatalf("retry has retry count %d", n)
	}
	// And a task scheduled for later, enqueued while the server waits.
	if _, err := client.Enqueue(asynq.NewTask("retry", nil), asynq.Queue("retry"), asynq.ProcessIn(time.Second), asynq.MaxRetry(0)); err != nil {
		t.Fatal(err)
	}
	receive(t, attempts, "scheduled task")
}

// TestQueuesWake: a server of several queues is woken by a task on any of them, and takes
// a task whichever queue it is waiting in.
func TestQueuesWake(t *testing.T) {
	t.Parallel()
	db := redisServer.NextDB()
	client := announcing(t, db)
	queues := map[string]int{"low": 1, "mid": 2, "high": 3}
	srv := pushOnly(t, newClient(t, db), asynq.Config{Concurrency: 1, Queues: queues})
	got := make(chan string, 1)
	mux := asynq.NewServeMux()
	mux.HandleFunc("q", func(_ context.Context, task *asynq.Task) error {
		got <- string(task.Payload())
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	for round := range 20 {
		for q := range queues {
			if _, err := client.Enqueue(asynq.NewTask("q", []byte(q)), asynq.Queue(q)); err != nil {
				t.Fatal(err)
			}
			if v := receive(t, got, fmt.Sprintf("round %d: task on %s", round, q)); v != q {
				t.Fatalf("got the task of %s, want %s", v, q)
			}
		}
	}
}

// TestEmbeddedRedis: miniredis has what the wake-up needs (EVALSHA, pub/sub).
func TestEmbeddedRedis(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	enq := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer enq.Close()
	Announce(enq)
	client := asynq.NewClientFromRedisClient(enq)
	defer client.Close()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	srv := pushOnly(t, rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{"mini": 1}})
	got := make(chan struct{}, 1)
	mux := asynq.NewServeMux()
	mux.HandleFunc("mini", func(context.Context, *asynq.Task) error {
		got <- struct{}{}
		return nil
	})
	waiting := make(chan struct{}, 1)
	srv.waker.beforeWait = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	for i := range 10 {
		receive(t, waiting, "wait")
		if _, err := client.Enqueue(asynq.NewTask("mini", nil), asynq.Queue("mini")); err != nil {
			t.Fatal(err)
		}
		receive(t, got, fmt.Sprintf("task %d", i))
	}
}

// TestStartWithoutRedis: a server whose Redis does not answer says so from Start.
func TestStartWithoutRedis(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	srv := NewServer(rdb, asynq.Config{LogLevel: asynq.FatalLevel})
	err = srv.Start(asynq.NewServeMux())
	if err == nil {
		srv.Shutdown()
		t.Fatal("Start succeeded without Redis")
	}
	if !strings.Contains(err.Error(), "wake signals") {
		t.Errorf("error %q does not say what failed", err)
	}
	srv.Shutdown() // safe after a failed Start
}

// TestWakesAfterRedisRestart: the subscription comes back with Redis, and the signals
// with it.
func TestWakesAfterRedisRestart(t *testing.T) {
	t.Parallel()
	own := redistest.Start(t)
	opt := &redis.Options{Addr: own.Addr(), MaxRetries: -1, DialTimeout: time.Second}
	enq := redis.NewClient(opt)
	defer enq.Close()
	Announce(enq)
	client := asynq.NewClientFromRedisClient(enq)
	defer client.Close()
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	srv := pushOnly(t, rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{"restart": 1}})
	got := make(chan struct{}, 1)
	mux := asynq.NewServeMux()
	mux.HandleFunc("restart", func(context.Context, *asynq.Task) error {
		got <- struct{}{}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	enqueue := func() {
		t.Helper()
		if _, err := client.Enqueue(asynq.NewTask("restart", nil), asynq.Queue("restart")); err != nil {
			t.Fatal(err)
		}
	}
	enqueue()
	receive(t, got, "task before the restart")

	own.Kill()
	own.Restart(t)
	// Wait for the subscription to be back (go-redis subscribes again on its next read).
	ch := Channel(0, "restart")
	end := time.Now().Add(deadline)
	for {
		n, err := enq.PubSubNumSub(t.Context(), ch).Result()
		if err == nil && n[ch] > 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no subscriber on %s after the restart: %v", ch, err)
		}
		time.Sleep(20 * time.Millisecond) // polling Redis: nothing to wait on
	}
	enqueue()
	receive(t, got, "task after the restart")
}
