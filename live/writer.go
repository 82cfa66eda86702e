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
	linger    time.Duration // how long a batch gathers before it is written, best-effort
	logger    *slog.Logger
	in        chan *pending
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
	dropped   atomic.Int64
	warned    atomic.Int64 // unix seconds of the last warning

	// Aggregates counted and not yet written, by minute and field; written with a batch of
	// facts at most every aggregateEvery, so that their cost does not grow with the rate.
	// Under countsMu: the facts an application stores itself are counted by its handlers.
	countsMu  sync.Mutex
	counts    map[int64]map[count]int64
	countedAt time.Time
	// counting tells the loop that counts an application stored began to gather, so that
	// it writes them within aggregateEvery; with nothing counted the loop sleeps.
	counting chan struct{}
}

type pending struct {
	fact   *Fact      // nil: a flush of the aggregates
	stored chan error // nil: nobody waits
}

// What best-effort batches gather before they go (a bound on what a crash loses), and how
// often the aggregates are written.
const (
	bestEffortLinger = 5 * time.Millisecond
	aggregateEvery   = 100 * time.Millisecond
)

var errClosed = errors.New("live: the recorder is closed")

func newWriter(rdb redis.UniversalClient, k keys, maxEvents int64, buffer int, linger time.Duration, logger *slog.Logger) *writer {
	w := &writer{rdb: rdb, keys: k, maxEvents: maxEvents, linger: linger, logger: logger,
		in: make(chan *pending, buffer), stop: make(chan struct{}), done: make(chan struct{}),
		counts: map[int64]map[count]int64{}, countedAt: time.Now(), counting: make(chan struct{}, 1)}
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

// start queues a started fact without waiting; stored, if not nil, gets the write's outcome.
// Best-effort (no stored), a full buffer drops it.
func (w *writer) start(f *Fact, stored chan error) {
	if stored == nil {
		w.send(f, false)
		return
	}
	select {
	case w.in <- &pending{fact: f, stored: stored}:
	case <-w.stop:
		stored <- errClosed
	}
}

// counted counts the aggregates of a fact the application stored (see Ending), to be
// written with the next batch: it wakes no writer.
func (w *writer) counted(f *Fact) {
	w.countsMu.Lock()
	first := len(w.counts) == 0
	w.tally(f)
	w.countsMu.Unlock()
	if first {
		select {
		case w.counting <- struct{}{}:
		default: // the loop has been told already
		}
	}
}

// hasCounts reports whether aggregates are counted and not yet written.
func (w *writer) hasCounts() bool {
	w.countsMu.Lock()
	defer w.countsMu.Unlock()
	return len(w.counts) > 0
}

func (w *writer) countedSince() time.Duration {
	w.countsMu.Lock()
	defer w.countsMu.Unlock()
	return time.Since(w.countedAt)
}

// tally counts f in the aggregates of its minute; under countsMu.
func (w *writer) tally(f *Fact) {
	m := f.At.Unix() / 60
	c := w.counts[m]
	if c == nil {
		c = map[count]int64{}
		w.counts[m] = c
	}
	tally(c, f)
}

// queue queues f, waiting for room rather than dropping it, without waiting for it to be
// stored.
func (w *writer) queue(ctx context.Context, f *Fact) error {
	select {
	case w.in <- &pending{fact: f}:
		return nil
	case <-w.stop:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush returns once every fact sent before it and every aggregate counted are stored.
func (w *writer) flush(ctx context.Context) error {
	p := &pending{stored: make(chan error, 1)}
	select {
	case w.in <- p:
	case <-w.stop:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.stored:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close writes what is pending and stops the writer.
func (w *writer) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

func (w *writer) loop() {
	defer close(w.done)
	batch := make([]*pending, 0, maxBatch)
	// The aggregates are written aggregateEvery after they began to gather; an idle writer,
	// with nothing counted, has no timer running and does not wake.
	idle := time.NewTimer(aggregateEvery)
	idle.Stop()
	defer idle.Stop()
	armed := false
	arm := func() {
		if !armed && w.hasCounts() {
			idle.Reset(aggregateEvery)
			armed = true
		}
	}
	var gather *time.Timer
	for {
		batch = batch[:0]
		select {
		case p := <-w.in:
			batch = append(batch, p)
		case <-w.counting:
			arm()
			continue
		case <-idle.C:
			// No facts for a while: write the aggregates counted so far.
			armed = false
			w.write(nil, true)
			arm() // counted meanwhile
			continue
		case <-w.stop:
			// Write what was queued before the stop, then end.
			for {
				batch = batch[:0]
				w.fill(&batch)
				if len(batch) == 0 {
					w.write(nil, true)
					return
				}
				w.write(batch, false)
			}
		}
		if w.linger > 0 && !batch[0].waited() {
			// Let the batch gather without taking each fact as it comes: a receive would
			// wake this goroutine once a fact, on the cores the handlers need.
			if gather == nil {
				gather = time.NewTimer(w.linger)
			} else {
				gather.Reset(w.linger)
			}
			select {
			case <-gather.C:
			case <-w.stop:
				gather.Stop()
			}
		}
		w.fill(&batch)
		flush := false
		for _, p := range batch {
			flush = flush || p.fact == nil
		}
		w.write(batch, flush || w.countedSince() >= aggregateEvery)
		arm()
	}
}

func (p *pending) waited() bool { return p.stored != nil }

// fill adds to the batch whatever is queued now, up to maxBatch.
func (w *writer) fill(batch *[]*pending) {
	for len(*batch) < maxBatch {
		select {
		case p := <-w.in:
			*batch = append(*batch, p)
		default:
			return
		}
	}
}

// attemptID names one attempt, to pair its started and ended facts.
type attemptID struct {
	queue, id string
	attempt   int
	worker    Worker
	started   time.Time
}

// write stores a batch: each fact on the capped stream, and (with aggregates) what the facts
// counted so far in the aggregates of their minutes (kept StatsRetention) and the totals. An
// attempt that started and ended within the batch is written as its ended fact alone, which
// carries its start.
func (w *writer) write(batch []*pending, aggregates bool) {
	facts := 0
	w.countsMu.Lock()
	for _, p := range batch {
		if p.fact == nil {
			continue
		}
		facts++
		w.tally(p.fact)
	}
	var counts map[int64]map[count]int64
	if aggregates && len(w.counts) > 0 {
		counts, w.counts, w.countedAt = w.counts, map[int64]map[count]int64{}, time.Now()
	}
	w.countsMu.Unlock()
	var endedHere map[attemptID]*Fact
	for _, p := range batch {
		if f := p.fact; f != nil && f.Kind == KindEnded {
			if endedHere == nil {
				endedHere = map[attemptID]*Fact{}
			}
			endedHere[attemptID{f.Queue, f.TaskID, f.Attempt, f.Worker, f.StartedAt}] = f
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	pipe := w.rdb.Pipeline()
	for _, p := range batch {
		f := p.fact
		if f == nil {
			continue
		}
		if f.Kind == KindStarted {
			if end := endedHere[attemptID{f.Queue, f.TaskID, f.Attempt, f.Worker, f.At}]; end != nil {
				end.Payload = f.Payload // the writer's own copy: the handler is done with it
				continue
			}
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: w.keys.facts(), MaxLen: w.maxEvents, Approx: true,
			Values: []string{"f", string(encodeFact(f))}})
	}
	if counts != nil {
		totals := map[string]int64{}
		for m, c := range counts {
			key := w.keys.minute(m)
			for k, n := range c {
				field := k.field()
				pipe.HIncrBy(ctx, key, field, n)
				totals[field] += n
			}
			pipe.ExpireAt(ctx, key, time.Unix((m+1)*60, 0).Add(StatsRetention))
		}
		for field, n := range totals {
			pipe.HIncrBy(ctx, w.keys.totals(), field, n)
		}
	}
	var err error
	if pipe.Len() > 0 {
		_, err = pipe.Exec(ctx)
	}
	for _, p := range batch {
		if p.stored != nil {
			p.stored <- err
		}
	}
	if err != nil {
		lost := 0
		for _, p := range batch {
			if p.stored == nil && p.fact != nil {
				lost++
			}
		}
		w.dropped.Add(int64(lost))
		if now := time.Now().Unix(); w.warned.Swap(now) != now {
			w.logger.Warn("live: cannot store task facts", "facts", facts, "err", err)
		}
	}
}
