package app_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// This process's worker counts as live while it runs, whether Redis lists it or not (after
// Redis comes back empty, asynq lists it again only at its next heartbeat), and not once it
// is shut down.
func TestOwnWorkerCountsWhileItRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	opt, _ := redis.ParseURL(e.url)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.FlushDB(t.Context()).Err(); err != nil { // as a Redis restarted without AOF is
		t.Fatal(err)
	}
	if n, err := e.core.Launcher.Capacity(t.Context()); err != nil || n != 5 {
		t.Errorf("capacity with the worker unlisted = %d (%v), want its 5 slots", n, err)
	}
	servers, err := e.core.Launcher.Servers(t.Context())
	if err != nil || len(servers) != 1 || servers[0].PID != e.core.PID || servers[0].Status != "active" {
		t.Errorf("servers with the worker unlisted = %+v (%v), want this process's", servers, err)
	}
	e.worker.Shutdown()
	e.worker = nil // shut down here, not again at cleanup
	if n, err := e.core.Launcher.Capacity(t.Context()); err != nil || n != 0 {
		t.Errorf("capacity after the worker shut down = %d (%v), want 0", n, err)
	}
}
