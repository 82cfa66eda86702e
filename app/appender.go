package app

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// appender writes to Redis by group commit: a few flusher goroutines each take every write
// that is pending and send them in one pipeline, so N concurrent task handlers cost about
// one round trip, not N. A caller may wait for its write to be stored, or not; a write that
// must follow another names it, and is not sent before that one is stored.
type appender struct {
	rdb     redis.UniversalClient
	scripts []*redis.Script
	ops     chan *op
	batches chan []*op
	stop    chan struct{}
	wg      sync.WaitGroup
}

// op is one write: queue adds its commands to a pipeline.
type op struct {
	queue  func(p redis.Pipeliner) []redis.Cmder
	after  *op // stored before this one is sent
	cmds   []redis.Cmder
	err    error
	stored chan struct{} // closed once the write is done (or failed)
	batch  uint64        // which batch it went out in
}

const (
	maxBatch = 512
	flushers = 4 // pipelines in flight at once
)

func newAppender(rdb redis.UniversalClient, scripts ...*redis.Script) *appender {
	a := &appender{rdb: rdb, scripts: scripts, ops: make(chan *op, 4*maxBatch),
		batches: make(chan []*op), stop: make(chan struct{})}
	a.wg.Add(1 + flushers)
	go a.collect()
	for range flushers {
		go a.flushLoop()
	}
	return a
}

// do queues a write after the write after (nil for none) and waits until it is stored.
func (a *appender) do(ctx context.Context, after *op, queue func(p redis.Pipeliner) []redis.Cmder) ([]redis.Cmder, error) {
	o := &op{queue: queue, after: after, stored: make(chan struct{})}
	select {
	case a.ops <- o:
	case <-a.stop:
		return nil, Unavailable("shutting down", nil)
	case <-ctx.Done():
		return nil, Unavailable("cannot write to Redis", ctx.Err())
	}
	// Once queued, the write happens whatever the caller's context says: waiting for it
	// keeps the guarantee that a returned handler's events are stored.
	<-o.stored
	return o.cmds, o.err
}

// send queues a write without waiting. The returned op can be named as another's after.
func (a *appender) send(queue func(p redis.Pipeliner) []redis.Cmder) *op {
	o := &op{queue: queue, stored: make(chan struct{})}
	select {
	case a.ops <- o:
	case <-a.stop:
		o.err = Unavailable("shutting down", nil)
		close(o.stored)
	}
	return o
}

// close stops the appender after writing what is pending.
func (a *appender) close() {
	close(a.stop)
	a.wg.Wait()
}

// collect forms batches from the queue, one after another, so that a batch holds a
// contiguous run of writes: a write's after is then in its own batch (and ordered by the
// pipeline) or in an earlier one, and flushers never wait on each other in a cycle.
func (a *appender) collect() {
	defer a.wg.Done()
	defer close(a.batches)
	var seq uint64
	for {
		var batch []*op
		select {
		case o := <-a.ops:
			batch = append(make([]*op, 0, 16), o)
		case <-a.stop:
			for { // write what was queued before stop
				select {
				case o := <-a.ops:
					seq++
					o.batch = seq
					a.batches <- []*op{o}
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
		seq++
		for _, o := range batch {
			o.batch = seq
		}
		a.batches <- batch
	}
}

func (a *appender) flushLoop() {
	defer a.wg.Done()
	for batch := range a.batches {
		a.flush(batch)
	}
}

func (a *appender) flush(batch []*op) {
	for _, o := range batch {
		if o.after != nil && o.after.batch != o.batch {
			<-o.after.stored // in an earlier batch, almost always stored already
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.exec(ctx, batch)
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
		if e := opErr(o); e != nil {
			o.err = Unavailable("cannot write to Redis", e)
		}
		close(o.stored)
	}
}

func (a *appender) exec(ctx context.Context, batch []*op) {
	p := a.rdb.Pipeline()
	for _, o := range batch {
		o.cmds = o.queue(p)
	}
	p.Exec(ctx) // errors are read per command
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
