package app

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// appender writes to Redis by group commit: one goroutine takes every write that is pending
// and sends them in one pipeline, so N concurrent task handlers cost about one round trip,
// not N. A caller may wait for its write to be in Redis or not.
type appender struct {
	rdb     redis.UniversalClient
	scripts []*redis.Script
	ops     chan *op
	stop    chan struct{}
	wg      sync.WaitGroup
}

// op is one write: queue adds its commands to a pipeline; done receives the outcome.
type op struct {
	queue func(p redis.Pipeliner) []redis.Cmder
	cmds  []redis.Cmder
	done  chan error // nil for writes nobody waits for
}

const maxBatch = 512

func newAppender(rdb redis.UniversalClient, scripts ...*redis.Script) *appender {
	a := &appender{rdb: rdb, scripts: scripts, ops: make(chan *op, 4*maxBatch), stop: make(chan struct{})}
	a.wg.Add(1)
	go a.loop()
	return a
}

// do queues a write and waits until it is in Redis (or failed).
func (a *appender) do(ctx context.Context, queue func(p redis.Pipeliner) []redis.Cmder) ([]redis.Cmder, error) {
	o := &op{queue: queue, done: make(chan error, 1)}
	select {
	case a.ops <- o:
	case <-a.stop:
		return nil, Unavailable("shutting down", nil)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued, the write happens whatever the caller's context says: waiting for it
	// keeps the order of a task's events and the guarantee that a returned handler's events
	// are stored.
	err := <-o.done
	return o.cmds, err
}

// send queues a write without waiting. Writes are applied in the order they were queued,
// so a later waited-for write also vouches for this one.
func (a *appender) send(queue func(p redis.Pipeliner) []redis.Cmder) {
	select {
	case a.ops <- &op{queue: queue}:
	case <-a.stop:
	}
}

// close stops the appender after writing what is pending.
func (a *appender) close() {
	close(a.stop)
	a.wg.Wait()
}

func (a *appender) loop() {
	defer a.wg.Done()
	batch := make([]*op, 0, maxBatch)
	for {
		select {
		case o := <-a.ops:
			batch = append(batch[:0], o)
		case <-a.stop:
			for { // drain what was queued before stop
				select {
				case o := <-a.ops:
					a.flush([]*op{o})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case o := <-a.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		a.flush(batch)
	}
}

func (a *appender) flush(batch []*op) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.exec(ctx, batch)
	var redo []*op
	for _, o := range batch {
		if e := opErr(o); e != nil && isNoScript(e) {
			redo = append(redo, o)
		}
	}
	if len(redo) > 0 {
		// Redis restarted and forgot the scripts: load them and redo the ops that failed.
		for _, s := range a.scripts {
			s.Load(ctx, a.rdb)
		}
		a.exec(ctx, redo)
	}
	for _, o := range batch {
		if o.done == nil {
			continue
		}
		e := opErr(o)
		if e == nil && err != nil && len(o.cmds) == 0 {
			e = err
		}
		if e != nil {
			e = Unavailable("cannot write to Redis", e)
		}
		o.done <- e
	}
}

func (a *appender) exec(ctx context.Context, batch []*op) error {
	if len(batch) == 0 {
		return nil
	}
	p := a.rdb.Pipeline()
	for _, o := range batch {
		o.cmds = o.queue(p)
	}
	_, err := p.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	return err
}

// opErr is the first error among an op's commands, redis.Nil aside.
func opErr(o *op) error {
	for _, c := range o.cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

func isNoScript(err error) bool { return strings.HasPrefix(err.Error(), "NOSCRIPT") }
