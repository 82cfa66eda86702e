package app_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/internal/redistest"
)

// newEmbeddedEnv is newEnv on an embedded Redis of its own, as `serve` without REDIS_URL has.
func newEmbeddedEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	m, err := app.StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close) // after the env's own cleanup, registered next
	return newEnvOn(t, m.URL(), opts...)
}

// A launch of MAX_TASKS tasks on embedded Redis is accepted and every task is on the queue.
// Embedded Redis once aged its TTLs by walking and sorting all keys on every command, which
// made this launch take over a minute and fail on its deadline.
func TestMaxTasksLaunchOnEmbeddedRedis(t *testing.T) {
	t.Parallel()
	e := newEmbeddedEnv(t)
	n := e.core.Config.Limits.MaxTasks
	// Long tasks: few complete while the queue is counted (on a loaded machine the launch
	// itself can outlast one), and every task is pending, active or completed.
	r, err := e.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Distributed, Tasks: n, DelayMS: 30_000})
	if err != nil {
		t.Fatalf("launch of %d tasks: %v", n, err)
	}
	info, err := e.core.Launcher.Inspector().GetQueueInfo(e.core.Config.Queue)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Pending + info.Active + info.Completed; got != n || info.Retry+info.Archived != 0 {
		t.Errorf("queue after the launch: %d pending, %d active, %d completed, %d retry, %d archived; want %d pending, active or completed",
			info.Pending, info.Active, info.Completed, info.Retry, info.Archived, n)
	}
	evs, err := e.core.Log.ReadAll(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	// One event queues them all, in the round trip that creates the run.
	var queued []*app.Event
	for _, ev := range evs {
		if ev.Type == app.TasksQueued || ev.Type == app.TaskQueued {
			queued = append(queued, ev)
		}
	}
	if len(queued) != 1 || queued[0].Type != app.TasksQueued || queued[0].Tasks != n || evs[1] != queued[0] {
		t.Errorf("queued events %v, want one tasks.queued of %d tasks right after run.created", queued, n)
	}
	if got := e.get(t, r.ID); got.Status != app.StatusRunning {
		t.Errorf("run %s after the launch, want running", got.Status)
	}
}

// Embedded Redis expires keys without ClockTTL, on its own ticker.
func TestEmbeddedRedisExpiresKeys(t *testing.T) {
	t.Parallel()
	m, err := app.StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	opt, _ := redis.ParseURL(m.URL())
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Set(t.Context(), "short", "1", 1500*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Set(t.Context(), "long", "1", time.Hour)
	if n, _ := rdb.Exists(t.Context(), "short").Result(); n != 1 {
		t.Fatal("the key is gone at once")
	}
	waitFor(t, "the key with a 1.5 s TTL to expire", func() bool {
		n, err := rdb.Exists(t.Context(), "short").Result()
		return err == nil && n == 0
	})
	if ttl, _ := rdb.TTL(t.Context(), "long").Result(); ttl <= 58*time.Minute || ttl > time.Hour {
		t.Errorf("TTL of the hour-long key = %s, want just under an hour", ttl)
	}
}

// Errors say what the cause is: a deadline is not an unreachable Redis.
func TestUnavailableNamesTheCause(t *testing.T) {
	t.Parallel()
	refused := func() error {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, err = net.DialTimeout("tcp", addr, time.Second)
		return err
	}()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"context deadline", context.DeadlineExceeded, "did not answer in time"},
		{"read deadline", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, "did not answer in time"},
		{"connection refused", refused, "unreachable"},
		{"pool exhausted", redis.ErrPoolTimeout, "no Redis connection came free"},
		{"client closed", redis.ErrClosed, "shutting down"},
		{"canceled", fmt.Errorf("wrapped: %w", context.Canceled), "canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := app.Unavailable("cannot do it", tt.err)
			if !strings.HasPrefix(err.Message, "cannot do it: ") || !strings.Contains(err.Message, tt.want) {
				t.Errorf("message %q, want what was done and %q", err.Message, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("the cause is not kept for the logs")
			}
		})
	}

	// The same, from a real Redis: one that does not answer in time, then one that is gone.
	srv := redistest.Start(t)
	e := newEnvOn(t, srv.URL(0), withoutWorker())
	opt, _ := redis.ParseURL(srv.URL(0))
	admin := redis.NewClient(opt)
	defer admin.Close()
	if err := admin.Do(t.Context(), "CLIENT", "PAUSE", "2000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err := e.core.Launcher.Launch(ctx, app.Plan{Mode: app.Sequential, Tasks: 1})
	cancel()
	if msg := app.ErrorMessage(err); app.ErrorCode(err) != app.EUnavailable || !strings.Contains(msg, "did not answer in time") {
		t.Errorf("launch while Redis is paused: %q (%v), want unavailable: did not answer in time", msg, err)
	}
	admin.Do(t.Context(), "CLIENT", "UNPAUSE")
	srv.Kill()
	_, err = e.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Sequential, Tasks: 1})
	if msg := app.ErrorMessage(err); app.ErrorCode(err) != app.EUnavailable || !strings.Contains(msg, "unreachable") {
		t.Errorf("launch with Redis gone: %q (%v), want unavailable: unreachable", msg, err)
	}
}
