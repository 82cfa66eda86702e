package app

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Catch-up reads of the log are shared and bounded. Viewers who start together (a crowd
// opening a run's stream from its start, say) read the log at the same boundaries, a page
// at a time: each page is read and decoded once for all of them, and its events, shared,
// are rendered once. Whatever the crowd, at most logReaders reads run at once, so viewers
// never take the whole pool from the rest of the process.
const (
	logReaders = 4
	// A full page stays shared this long after it was read, up to sharedPages of them.
	pageShared  = 2 * time.Second
	sharedPages = 32
	readTimeout = 5 * time.Second
)

type pageKey struct{ run, after string }

// logRead is one read of a page of the log, which the viewers asking for the same page
// wait for.
type logRead struct {
	done chan struct{}
	seq  uint64 // the joins counted when the read was sent
	evs  []*Event
	err  error
	at   time.Time
}

type catchUps struct {
	log   *EventLog
	slots chan struct{}
	// joins counts subscriptions joining the fan-out. A page that ends at the log's end
	// tells a subscription it has caught up only if it was read after the subscription
	// joined: events published before it joined are in no read sent earlier.
	joins atomic.Uint64

	mu    sync.Mutex
	pages map[pageKey]*logRead
}

func newCatchUps(log *EventLog) *catchUps {
	return &catchUps{log: log, slots: make(chan struct{}, logReaders), pages: map[pageKey]*logRead{}}
}

// joined counts a subscription joining the fan-out and returns its number.
func (c *catchUps) joined() uint64 { return c.joins.Add(1) }

// read returns the page of run's events after the entry ID after, for the subscription
// that joined as number joined. The slice is shared: callers must not change it.
func (c *catchUps) read(ctx context.Context, runID, after string, joined uint64) ([]*Event, error) {
	k := pageKey{runID, after}
	c.mu.Lock()
	r, ok := c.pages[k]
	if ok && r.at != (time.Time{}) && time.Since(r.at) > pageShared {
		ok = false
	}
	if !ok {
		r = &logRead{done: make(chan struct{})}
		c.pages[k] = r
	}
	c.mu.Unlock()
	if ok {
		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// A full page is the same whenever it was read; the log's end only if read since.
		if r.err == nil && (len(r.evs) == logPage || r.seq >= joined) {
			return r.evs, nil
		}
		return c.readAlone(ctx, runID, after)
	}

	// This caller reads for all who ask meanwhile: not on its own context, which may end
	// before theirs.
	rctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	select {
	case c.slots <- struct{}{}:
		r.seq = c.joins.Load()
		r.evs, r.err = c.log.Read(rctx, runID, after, logPage)
		<-c.slots
	case <-rctx.Done():
		r.err = Unavailable("cannot read the run's events: too many readers waiting", rctx.Err())
	}
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	r.at = time.Now()
	close(r.done)
	if r.err != nil || len(r.evs) < logPage {
		// Errors are not kept, nor the log's end, which grows.
		delete(c.pages, k)
	}
	n := len(c.pages)
	for k, p := range c.pages {
		if p.at != (time.Time{}) && (n > sharedPages || time.Since(p.at) > pageShared) {
			delete(c.pages, k)
			n--
		}
	}
	return r.evs, r.err
}

// readAlone reads a page for one subscription, in a slot like the others.
func (c *catchUps) readAlone(ctx context.Context, runID, after string) ([]*Event, error) {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
		return c.log.Read(ctx, runID, after, logPage)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
