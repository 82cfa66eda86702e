package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Feed follows the streams of the runs somebody is watching with one multi-stream
// XREAD BLOCK loop on its own connection, and fans each event out to every subscriber of its
// run. Subscribers that fall behind are dropped and catch up from the log.
type Feed struct {
	rdb    *redis.Client // its own client: the blocking read holds a connection
	log    *EventLog
	wake   string // this process's wake-up stream
	logger *slog.Logger

	mu   sync.Mutex
	runs map[string]*follow

	stop chan struct{}
	wg   sync.WaitGroup
}

type follow struct {
	pos  string // last entry ID read from the run's stream
	subs map[*subscription]struct{}
}

type subscription struct {
	runID string
	c     chan *Event
}

const subBuffer = 256

func newFeed(rdb *redis.Client, log *EventLog, procID string, logger *slog.Logger) *Feed {
	return &Feed{rdb: rdb, log: log, wake: keyWake(procID), logger: logger,
		runs: make(map[string]*follow), stop: make(chan struct{})}
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
			close(s.c)
		}
	}
	f.runs = map[string]*follow{}
	f.mu.Unlock()
}

// Watch calls yield with every event of run after the entry ID after, in order, until the
// run's terminal event (included), ctx ends, or yield returns an error. Nothing is missed:
// the log covers what happened before, the live feed what happens after.
func (f *Feed) Watch(ctx context.Context, runID, after string, yield func(*Event) error) error {
	for {
		s := f.subscribe(runID)
		done, err := f.drain(ctx, s, &after, yield)
		f.unsubscribe(s)
		if done || err != nil {
			return err
		}
		// Dropped for being slow: catch up from the log and subscribe again.
	}
}

// drain delivers the log after *after, then live events. It returns done once the run ended.
func (f *Feed) drain(ctx context.Context, s *subscription, after *string, yield func(*Event) error) (bool, error) {
	for {
		evs, err := f.log.Read(ctx, s.runID, *after, 1000)
		if err != nil {
			return false, err
		}
		for _, e := range evs {
			if err := yield(e); err != nil {
				return true, err
			}
			*after = e.ID
			if e.Terminal() {
				return true, nil
			}
		}
		if len(evs) < 1000 {
			break
		}
	}
	for {
		select {
		case e, ok := <-s.c:
			if !ok {
				select {
				case <-f.stop:
					return true, Unavailable("shutting down", nil)
				default:
					return false, nil
				}
			}
			if CompareIDs(e.ID, *after) <= 0 {
				continue // already delivered from the log
			}
			if err := yield(e); err != nil {
				return true, err
			}
			*after = e.ID
			if e.Terminal() {
				return true, nil
			}
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}

func (f *Feed) subscribe(runID string) *subscription {
	s := &subscription{runID: runID, c: make(chan *Event, subBuffer)}
	// A new follow starts at the stream's end: the subscriber reads everything up to there
	// from the log after subscribing, so nothing falls between the two.
	pos := "0-0"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if last, err := f.rdb.XRevRangeN(ctx, keyEvents(runID), "+", "-", 1).Result(); err == nil && len(last) == 1 {
		pos = last[0].ID
	}
	cancel()
	f.mu.Lock()
	fl, ok := f.runs[runID]
	if !ok {
		fl = &follow{pos: pos, subs: make(map[*subscription]struct{})}
		f.runs[runID] = fl
	}
	fl.subs[s] = struct{}{}
	f.mu.Unlock()
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		p := f.rdb.Pipeline()
		p.XAdd(ctx, &redis.XAddArgs{Stream: f.wake, MaxLen: 10, Approx: true, Values: []string{"w", runID}})
		p.Expire(ctx, f.wake, time.Hour) // a process that is gone leaves no wake-up stream for long
		p.Exec(ctx)
		cancel()
	}
	return s
}

func (f *Feed) unsubscribe(s *subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.runs[s.runID]
	if !ok {
		return
	}
	if _, ok := fl.subs[s]; !ok {
		return
	}
	delete(fl.subs, s)
	if len(fl.subs) == 0 {
		delete(f.runs, s.runID)
	}
}

// Subscribers returns how many subscriptions are open, for metrics.
func (f *Feed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, fl := range f.runs {
		n += len(fl.subs)
	}
	return n
}

func (f *Feed) loop() {
	defer f.wg.Done()
	wakePos := "$"
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		f.mu.Lock()
		streams := []string{f.wake}
		ids := []string{wakePos}
		for id, fl := range f.runs {
			streams = append(streams, keyEvents(id))
			ids = append(ids, fl.pos)
		}
		f.mu.Unlock()
		res, err := f.rdb.XRead(context.Background(), &redis.XReadArgs{
			Streams: append(streams, ids...), Block: 2 * time.Second, Count: 1000,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
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

func (f *Feed) publish(stream string, msgs []redis.XMessage) {
	evs := decodeMessages(msgs)
	if len(msgs) == 0 {
		return
	}
	runID := stream[len(keyPrefix+"run:") : len(stream)-len(":events")]
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.runs[runID]
	if !ok {
		return
	}
	fl.pos = msgs[len(msgs)-1].ID
	for _, e := range evs {
		for s := range fl.subs {
			select {
			case s.c <- e:
			default:
				// Too slow: drop it; it catches up from the log.
				delete(fl.subs, s)
				close(s.c)
			}
		}
	}
	if len(fl.subs) == 0 {
		delete(f.runs, runID)
	}
}
