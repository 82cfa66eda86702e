package wake

import (
	"context"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Channel is the pub/sub channel that wakes the servers of queue in database db (pub/sub
// channels are shared by every database of a Redis, queues are not). Any message on it
// wakes them: an enqueuer without Announce's hook, in any language, can PUBLISH there.
func Channel(db int, queue string) string {
	return "live:wake:" + strconv.Itoa(db) + ":" + queue
}

// dbOf returns the database rdb works on (0 for a cluster).
func dbOf(rdb redis.UniversalClient) int {
	if c, ok := rdb.(interface{ Options() *redis.Options }); ok {
		return c.Options().DB
	}
	return 0
}

// announcer publishes the wake signals of queues that have new pending tasks. Signals that
// come while one is being published are sent together after it, so a burst of enqueues
// costs a few PUBLISHes, not one each; no goroutine of its own: the caller that finds none
// in flight sends them.
type announcer struct {
	rdb redis.UniversalClient
	db  int

	mu      sync.Mutex
	pending map[string]struct{} // queues to signal
	busy    bool                // a caller is publishing
}

func newAnnouncer(rdb redis.UniversalClient) *announcer {
	return &announcer{rdb: rdb, db: dbOf(rdb), pending: make(map[string]struct{})}
}

// announce signals queue's servers, now or right after the signals in flight.
func (a *announcer) announce(ctx context.Context, queue string) {
	ctx = context.WithoutCancel(ctx) // the task is enqueued: its signal is owed whatever the caller's context
	a.mu.Lock()
	a.pending[queue] = struct{}{}
	if a.busy {
		a.mu.Unlock()
		return
	}
	a.busy = true
	for len(a.pending) > 0 {
		queues := make([]string, 0, len(a.pending))
		for q := range a.pending {
			queues = append(queues, q)
		}
		clear(a.pending)
		a.mu.Unlock()
		a.publish(ctx, queues)
		a.mu.Lock()
	}
	a.busy = false
	a.mu.Unlock()
}

// publish sends one signal per queue. A signal that fails is not retried: the servers run
// their dequeue again within a second anyway.
func (a *announcer) publish(ctx context.Context, queues []string) {
	if len(queues) == 1 {
		a.rdb.Publish(ctx, Channel(a.db, queues[0]), "")
		return
	}
	_, _ = a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, q := range queues {
			p.Publish(ctx, Channel(a.db, q), "")
		}
		return nil
	})
}

// Announce adds to rdb a hook that wakes the servers of a queue after each task enqueued
// on it through rdb (by an asynq.Client from asynq.NewClientFromRedisClient(rdb)). Tasks
// enqueued to run later wake them when their time comes, through the server's forwarder.
func Announce(rdb redis.UniversalClient) {
	rdb.AddHook(announceHook{newAnnouncer(rdb)})
}

type announceHook struct{ a *announcer }

func (announceHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (announceHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next // asynq runs its scripts one by one
}

func (h announceHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		s := classify(cmd)
		err := next(ctx, cmd)
		if s.kind == enqueueScript && err == nil && intResult(cmd) == 1 {
			h.a.announce(ctx, s.queue)
		}
		return err
	}
}

// intResult is cmd's integer reply, or 0.
func intResult(cmd redis.Cmder) int64 {
	c, ok := cmd.(*redis.Cmd)
	if !ok {
		return 0
	}
	n, _ := c.Int64()
	return n
}
