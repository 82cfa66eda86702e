package app

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// asynq's recovery of tasks whose worker died (v0.26, constants in its source): an active
// task holds a lease that its server extends every few seconds to 30 s ahead; a recoverer
// in every live server runs at start and then once a minute, and retries only tasks whose
// lease expired at least 30 s before.
const (
	asynqRecoverAfter    = 30 * time.Second
	asynqRecovererPeriod = time.Minute
)

// Orphan says that the worker process running a task is gone, and when asynq will run the
// task again. Nothing is lost meanwhile: finishing is idempotent, so the retry counts once.
type Orphan struct {
	Worker         string `json:"worker" doc:"The lost worker process, host:pid"`
	LeaseExpiresAt *Time  `json:"lease_expires_at,omitempty" doc:"When asynq's lease on the task runs out"`
	RetryAfter     *Time  `json:"retry_after,omitempty" doc:"The earliest time asynq's recoverer retries it"`
	RetryBy        *Time  `json:"retry_by,omitempty" doc:"The latest time, given a live worker"`
	Requeued       bool   `json:"requeued" doc:"asynq has already put it back on the queue"`
}

// asynqLeaseKey is asynq's sorted set of the leases of a queue's active tasks, scored by
// expiry in Unix seconds (base.LeaseKey).
func asynqLeaseKey(queue string) string { return "asynq:{" + queue + "}:lease" }

// MarkOrphans marks the running tasks of a running distributed run whose worker process
// has stopped heartbeating (see Projection.MarkLost). It costs one round trip, and none for
// runs that ended or are local (their owner's loss ends them).
func (c *Core) MarkOrphans(ctx context.Context, p *Projection) error {
	held := p.held()
	if len(held) == 0 {
		return nil
	}
	pipe := c.Redis.Client.Pipeline()
	alive := make(map[string]*redis.IntCmd)
	leases := make([]*redis.FloatCmd, len(held))
	for i, t := range held {
		if _, ok := alive[t.Worker.Proc]; !ok {
			alive[t.Worker.Proc] = pipe.Exists(ctx, keyProc(t.Worker.Proc))
		}
		leases[i] = pipe.ZScore(ctx, asynqLeaseKey(c.Config.Queue), t.ID)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return Unavailable("cannot check the workers", err)
	}
	expiry := make(map[string]time.Time, len(held))
	for i, t := range held {
		if score, err := leases[i].Result(); err == nil {
			expiry[t.ID] = time.Unix(int64(score), 0)
		}
	}
	p.MarkLost(func(proc string) bool { return alive[proc].Val() == 0 }, expiry)
	return nil
}
