package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Feed follows the streams of the runs somebody is watching with one multi-stream
// XREAD BLOCK loop on its own connection, and fans each event out to every subscription
// of its run. A publisher never waits: a subscription with more than maxQueued events
// waiting is dropped from the fan-out and catches up from the log. A subscription makes no
// Redis call of its own but short reads of the log (and, the first to follow its run, a
// wake-up of the loop), so no viewer holds a connection while it waits, however long it
// takes to read.
type Feed struct {
	rdb     *redis.Client // its own client: the blocking read holds a connection
	wake    string        // this process's wake-up stream
	logger  *slog.Logger
	dropped prometheus.Counter // subscriptions dropped for falling behind

	mu   sync.Mutex
	runs map[string]*follow

	open     atomic.Int64 // subscriptions not yet closed
	catchUps *catchUps    // the subscriptions' reads of the log
	stop     chan struct{}
	wg       sync.WaitGroup
}

// follow is one run the loop reads.
type follow struct {
	// pos is the last entry ID read from the run's stream, "" until the loop has looked up
	// where the stream ended; start is that first position. A subscription that joined
	// before it was known has caught up once it has read the log up to start.
	pos, start string
	subs       map[*Subscription]struct{}
}

// Bounds of the fan-out.
const (
	// maxQueued is how many live events may wait for one subscription: twice what one
	// read of a stream brings, so that a viewer who keeps up is never dropped by one burst.
	maxQueued = 2 * readCount
	readCount = 512 // entries one XREAD takes from each stream
	logPage   = 256 // events one catch-up read takes from the log
	// goneEvery is how often the loop checks that the runs it follows still exist.
	goneEvery = 2 * time.Second
)

// ReasonGone is the reason of the run.interrupted event that ends the streams of a run whose
// data vanished from Redis. That event is not in the log (there is no log any more), so it
// has no ID.
const ReasonGone = "the run's data is gone from Redis (restarted without persistence, flushed, or expired)"

func newFeed(rdb *redis.Client, log *EventLog, procID string, logger *slog.Logger, dropped prometheus.Counter) *Feed {
	return &Feed{rdb: rdb, wake: keyWake(procID), logger: logger, dropped: dropped,
		runs: make(map[string]*follow), catchUps: newCatchUps(log), stop: make(chan struct{})}
}

func (f *Feed) start() {
	f.wg.Add(1)
	go f.loop()
}

func (f *Feed) shutdown() {
	close(f.stop)
	// Wake the blocking read so the loop sees stop at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: f.wake, MaxLen: 10, Approx: true, Values: []string{"w", "stop"}})
	cancel()
	f.wg.Wait()
	f.mu.Lock()
	for _, fl := range f.runs {
		for s := range fl.subs {
			s.signal() // Next reports the shutdown
		}
	}
	f.mu.Unlock()
}

// Subscription is one viewer's place in a run's events. Next hands out every event after
// the position it started from, in order and each once: from the log while the viewer is
// behind, from the live feed once it has caught up. It is used by one goroutine.
type Subscription struct {
	feed  *Feed
	runID string
	after string // the last event handed out
	live  bool   // caught up: events come from the fan-out
	done  bool   // the terminal event was handed out
	spare []*Event
	ready chan struct{}

	joinedAs uint64 // the number of its last joining, for the shared reads of the log

	// Guarded by mu, which the publisher takes for this subscription alone: viewers do not
	// wait on one another for their events. joined and gone change with feed.mu held too,
	// so either lock lets them be read.
	mu     sync.Mutex
	queue  []*Event // live events not handed out yet
	joined bool     // in the fan-out; false once dropped for falling behind
	gone   bool     // the run's data vanished
	closed bool     // guarded by feed.mu
}

// Subscribe starts a subscription to run's events after the entry ID after ("" for all of
// them). Close it when done.
func (f *Feed) Subscribe(runID, after string) *Subscription {
	s := &Subscription{feed: f, runID: runID, after: after, ready: make(chan struct{}, 1)}
	f.open.Add(1)
	f.mu.Lock()
	wake := f.join(s)
	f.mu.Unlock()
	if wake {
		f.wakeUp(runID)
	}
	s.signal() // there is the log to read
	return s
}

// join adds s to its run's fan-out, with f.mu held. It reports whether the run is new to
// the loop, which must then be woken to look where its stream ends.
func (f *Feed) join(s *Subscription) bool {
	fl, ok := f.runs[s.runID]
	if !ok {
		fl = &follow{subs: make(map[*Subscription]struct{})}
		f.runs[s.runID] = fl
	}
	fl.subs[s] = struct{}{}
	s.mu.Lock()
	s.joined = true
	s.mu.Unlock()
	s.live = false
	s.joinedAs = f.catchUps.joined()
	return !ok
}

// wakeUp interrupts the loop's blocking read, so a new run is followed at once.
func (f *Feed) wakeUp(runID string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p := f.rdb.Pipeline()
	p.XAdd(ctx, &redis.XAddArgs{Stream: f.wake, MaxLen: 10, Approx: true, Values: []string{"w", runID}})
	p.Expire(ctx, f.wake, time.Hour) // a process that is gone leaves no wake-up stream for long
	p.Exec(ctx)
}

// Ready is signalled when Next may have events to hand out.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Next returns the events ready to hand out, in order, none twice, ending with the run's
// terminal event; none when nothing is ready (wait on Ready, then call again). While the
// subscription is behind it reads one page of the log; otherwise it makes no Redis call.
// The slice is valid until the next call. A run whose data vanished ends with a
// run.interrupted event whose reason is ReasonGone.
func (s *Subscription) Next(ctx context.Context) ([]*Event, error) {
	if s.done {
		return nil, nil
	}
	f := s.feed
	select {
	case <-f.stop:
		return nil, Unavailable("shutting down", nil)
	default:
	}
	s.mu.Lock()
	dropped := !s.joined && !s.gone
	s.mu.Unlock()
	if dropped {
		// Dropped for falling behind: join again first, so that nothing appended while it
		// reads the log can fall between the two.
		f.mu.Lock()
		wake := !s.gone && f.join(s)
		f.mu.Unlock()
		if wake {
			f.wakeUp(s.runID)
		}
	}
	if !s.live {
		return s.catchUp(ctx)
	}
	// The events returned last time are handed out: reuse their slice, without keeping them.
	clear(s.spare)
	s.mu.Lock()
	q := s.queue
	s.queue, s.spare = s.spare[:0], q
	gone := s.gone
	s.mu.Unlock()
	out := s.take(q)
	switch {
	case !gone || s.done:
	case len(out) > 0:
		s.signal() // the end comes next
	default:
		s.done = true
		return []*Event{{Type: RunInterrupted, RunID: s.runID, At: Now(), Reason: ReasonGone}}, nil
	}
	return out, nil
}

// catchUp reads the next page of the log, and turns s live once it has read up to where
// the fan-out started.
func (s *Subscription) catchUp(ctx context.Context) ([]*Event, error) {
	f := s.feed
	evs, err := f.catchUps.read(ctx, s.runID, s.after, s.joinedAs)
	if err != nil {
		return nil, err
	}
	out := s.take(evs)
	if s.done {
		return out, nil
	}
	if len(evs) < logPage {
		f.mu.Lock()
		fl := f.runs[s.runID]
		switch {
		case s.gone:
			s.live = true // nothing comes after the log but the end
		case !s.joined || fl == nil:
			// Dropped while reading: join again and read on.
		case fl.pos == "":
			// The loop has not looked where the stream ends yet: it signals s when it has.
			f.mu.Unlock()
			return out, nil
		case CompareIDs(s.after, fl.start) >= 0:
			s.live = true
		}
		f.mu.Unlock()
	}
	s.signal()
	return out, nil
}

// take returns the events of evs after s.after, up to the terminal one, and moves s.after.
// evs are in order, so they are a window of it.
func (s *Subscription) take(evs []*Event) []*Event {
	i := 0
	for i < len(evs) && s.after != "" && CompareIDs(evs[i].ID, s.after) <= 0 {
		i++ // already handed out, from the log
	}
	evs = evs[i:]
	for j, e := range evs {
		s.after = e.ID
		if e.Terminal() {
			s.done = true
			return evs[:j+1]
		}
	}
	return evs
}

// Close ends the subscription.
func (s *Subscription) Close() {
	f := s.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	f.open.Add(-1)
	f.leave(s)
}

// leave removes s from the fan-out, with f.mu held.
func (f *Feed) leave(s *Subscription) {
	if !s.joined {
		return
	}
	s.mu.Lock()
	s.joined, s.queue = false, nil
	s.mu.Unlock()
	fl := f.runs[s.runID]
	delete(fl.subs, s)
	if len(fl.subs) == 0 {
		delete(f.runs, s.runID)
	}
}

// Watch calls yield with every event of run after the entry ID after, in order, until the
// run's terminal event (included), ctx ends, or yield returns an error. Nothing is missed:
// the log covers what happened before, the live feed what happens after.
func (f *Feed) Watch(ctx context.Context, runID, after string, yield func(*Event) error) error {
	s := f.Subscribe(runID, after)
	defer s.Close()
	for {
		evs, err := s.Next(ctx)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := yield(e); err != nil {
				return err
			}
			if e.Terminal() {
				return nil
			}
		}
		select {
		case <-s.Ready():
		case <-ctx.Done():
			return ctx.Err()
		case <-f.stop:
			return Unavailable("shutting down", nil)
		}
	}
}

// Subscribers returns how many subscriptions are open, for metrics.
func (f *Feed) Subscribers() int { return int(f.open.Load()) }

func (f *Feed) loop() {
	defer f.wg.Done()
	wakePos := "$"
	backoff := 100 * time.Millisecond
	checked := time.Now()
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		err := f.locate()
		if err == nil && time.Since(checked) >= goneEvery {
			err = f.checkGone()
			checked = time.Now()
		}
		var res []redis.XStream
		if err == nil {
			f.mu.Lock()
			streams := []string{f.wake}
			ids := []string{wakePos}
			for id, fl := range f.runs {
				if fl.pos != "" {
					streams = append(streams, keyEvents(id))
					ids = append(ids, fl.pos)
				}
			}
			f.mu.Unlock()
			// Blocking no longer than goneEvery keeps the check above on time.
			res, err = f.rdb.XRead(context.Background(), &redis.XReadArgs{
				Streams: append(streams, ids...), Block: goneEvery, Count: readCount,
			}).Result()
			if errors.Is(err, redis.Nil) {
				continue
			}
		}
		if err != nil {
			f.logger.Warn("feed: cannot read run events", "err", err)
			select {
			case <-f.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for _, st := range res {
			if st.Stream == f.wake {
				if n := len(st.Messages); n > 0 {
					wakePos = st.Messages[n-1].ID
				}
				continue
			}
			f.publish(st.Stream, st.Messages)
		}
	}
}

// locate looks up where the streams of newly followed runs end: the fan-out of each starts
// there, and its subscriptions read the log up to there.
func (f *Feed) locate() error {
	f.mu.Lock()
	var ids []string
	for id, fl := range f.runs {
		if fl.pos == "" {
			ids = append(ids, id)
		}
	}
	f.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p := f.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.XRevRangeN(ctx, keyEvents(id), "+", "-", 1)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, id := range ids {
		fl, ok := f.runs[id]
		if !ok || fl.pos != "" {
			continue
		}
		fl.pos = "0-0"
		if last := cmds[i].Val(); len(last) == 1 {
			fl.pos = last[0].ID
		}
		fl.start = fl.pos
		for s := range fl.subs {
			s.signal()
		}
	}
	return nil
}

// checkGone ends the subscriptions of every followed run whose record is no longer in
// Redis: a Redis restarted without persistence, a flush, an expiry. The stream of such a
// run would otherwise stay silent for ever.
func (f *Feed) checkGone() error {
	f.mu.Lock()
	ids := make([]string, 0, len(f.runs))
	for id := range f.runs {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p := f.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.Exists(ctx, keyRun(id))
	}
	if _, err := p.Exec(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, id := range ids {
		fl, ok := f.runs[id]
		if !ok || cmds[i].Val() != 0 {
			continue
		}
		for s := range fl.subs {
			s.mu.Lock()
			s.gone, s.joined = true, false
			s.mu.Unlock()
			s.signal()
		}
		delete(f.runs, id)
	}
	return nil
}

func (f *Feed) publish(stream string, msgs []redis.XMessage) {
	if len(msgs) == 0 {
		return
	}
	evs := decodeMessages(msgs)
	runID := stream[len(keyPrefix+"run:") : len(stream)-len(":events")]
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.runs[runID]
	if !ok {
		return
	}
	fl.pos = msgs[len(msgs)-1].ID
	for s := range fl.subs {
		s.mu.Lock()
		if len(s.queue)+len(evs) > maxQueued {
			// Too far behind: drop it from the fan-out; it catches up from the log.
			delete(fl.subs, s)
			s.joined, s.queue = false, nil
			f.dropped.Inc()
		} else {
			s.queue = append(s.queue, evs...)
		}
		s.mu.Unlock()
		s.signal()
	}
	if len(fl.subs) == 0 {
		delete(f.runs, runID)
	}
}
