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

// MarkOrphans sets Orphaned on the running tasks of a running distributed run whose worker
// process has stopped heartbeating, with when asynq will retry them. It costs one round
// trip, and none for runs that ended or are local (their owner's loss ends them).
func (c *Core) MarkOrphans(ctx context.Context, tl *Timeline) error {
	if tl.Run.Mode != Distributed || tl.Run.Ended() {
		return nil
	}
	var running []*Task
	for _, t := range tl.Tasks {
		if t.State == TaskStateRunning && t.Worker != nil && t.Worker.Proc != "" {
			running = append(running, t)
		}
	}
	if len(running) == 0 {
		return nil
	}
	p := c.Redis.Client.Pipeline()
	alive := make(map[string]*redis.IntCmd)
	leases := make([]*redis.FloatCmd, len(running))
	for i, t := range running {
		if _, ok := alive[t.Worker.Proc]; !ok {
			alive[t.Worker.Proc] = p.Exists(ctx, keyProc(t.Worker.Proc))
		}
		leases[i] = p.ZScore(ctx, asynqLeaseKey(c.Config.Queue), t.ID)
	}
	if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
		return Unavailable("cannot check the workers", err)
	}
	for i, t := range running {
		if alive[t.Worker.Proc].Val() != 0 {
			continue
		}
		o := &Orphan{Worker: t.Worker.Process()}
		if score, err := leases[i].Result(); err == nil {
			exp := time.Unix(int64(score), 0).UTC()
			o.LeaseExpiresAt = &Time{exp}
			o.RetryAfter = &Time{exp.Add(asynqRecoverAfter)}
			o.RetryBy = &Time{exp.Add(asynqRecoverAfter + asynqRecovererPeriod)}
		} else {
			o.Requeued = true
		}
		t.Orphaned = o
	}
	return nil
}
