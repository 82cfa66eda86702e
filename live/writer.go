package live

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// writer stores facts by group commit: one goroutine takes every fact that is pending and
// writes them, with the aggregates they count, in one pipeline. So N handlers at once cost
// about one round trip, not N, and facts reach the stream in the order they were sent.
type writer struct {
	rdb       redis.UniversalClient
	keys      keys
	maxEvents int64
	logger    *slog.Logger
	in        chan *pending
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
	dropped   atomic.Int64
	warned    atomic.Int64 // unix seconds of the last warning
}

type pending struct {
	fact   *Fact
	stored chan error // nil: nobody waits
}

var errClosed = errors.New("live: the recorder is closed")

func newWriter(rdb redis.UniversalClient, k keys, maxEvents int64, buffer int, logger *slog.Logger) *writer {
	w := &writer{rdb: rdb, keys: k, maxEvents: maxEvents, logger: logger,
		in: make(chan *pending, buffer), stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// send queues f; with wait it returns once f (and every fact sent before it) is stored.
func (w *writer) send(f *Fact, wait bool) error {
	p := &pending{fact: f}
	if !wait {
		select {
		case w.in <- p:
		default:
			w.dropped.Add(1) // full: the handler does not wait for Redis
		}
		return nil
	}
	p.stored = make(chan error, 1)
	select {
	case w.in <- p:
	case <-w.stop:
		return errClosed
	}
	return <-p.stored
}

// close writes what is pending and stops the writer.
func (w *writer) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

func (w *writer) loop() {
	defer close(w.done)
	batch := make([]*pending, 0, maxBatch)
	for {
		select {
		case p := <-w.in:
			batch = append(batch[:0], p)
		case <-w.stop:
			// Write what was queued before the stop, then end.
			for {
				batch = batch[:0]
				for len(batch) < maxBatch {
					select {
					case p := <-w.in:
						batch = append(batch, p)
						continue
					default:
					}
					break
				}
				if len(batch) == 0 {
					return
				}
				w.write(batch)
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case p := <-w.in:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		w.write(batch)
	}
}

// write stores a batch: each fact on the capped stream, and what they count in the
// aggregates of their minutes (kept StatsRetention) and in the totals.
func (w *writer) write(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	byMinute := map[int64]map[string]int64{}
	pipe := w.rdb.Pipeline()
	for _, p := range batch {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: w.keys.facts(), MaxLen: w.maxEvents, Approx: true,
			Values: []string{"f", string(encodeFact(p.fact))}})
		m := p.fact.At.Unix() / 60
		c := byMinute[m]
		if c == nil {
			c = map[string]int64{}
			byMinute[m] = c
		}
		tally(c, p.fact)
	}
	totals := map[string]int64{}
	for m, c := range byMinute {
		key := w.keys.minute(m)
		for field, n := range c {
			pipe.HIncrBy(ctx, key, field, n)
			totals[field] += n
		}
		pipe.ExpireAt(ctx, key, time.Unix((m+1)*60, 0).Add(StatsRetention))
	}
	for field, n := range totals {
		pipe.HIncrBy(ctx, w.keys.totals(), field, n)
	}
	_, err := pipe.Exec(ctx)
	for _, p := range batch {
		if p.stored != nil {
			p.stored <- err
		}
	}
	if err != nil {
		lost := 0
		for _, p := range batch {
			if p.stored == nil {
				lost++
			}
		}
		w.dropped.Add(int64(lost))
		if now := time.Now().Unix(); w.warned.Swap(now) != now {
			w.logger.Warn("live: cannot store task facts", "facts", len(batch), "err", err)
		}
	}
}
