package app

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Bounds of the projections a process keeps between reads.
const (
	// keptTasks is how many tasks the kept projections hold in all: three MAX_TASKS runs,
	// some 20 MB (see docs/benchmarks.md). A run with more tasks is projected afresh.
	keptTasks = 30_000
	// keptRuns is how many runs they hold.
	keptRuns = 256
	// foldRead is how many events one read of the log takes: small enough that a busy
	// Redis answers each within its read timeout, and that a read cut short by its
	// deadline leaves what it folded for the next.
	foldRead = 1000
)

// Projections keeps, between reads, the live projection of each run this process reads: a
// read folds in only the events appended since the one before (none, once the run has
// ended), where projecting afresh reads and decodes every event of the run again. The least
// recently read runs leave first, beyond keptTasks tasks or keptRuns runs; a run that is
// deleted or expires leaves at its next read. What a read gives is what Project gives for
// the run's events at that moment.
type Projections struct {
	log               *EventLog
	maxTasks, maxRuns int

	mu    sync.Mutex
	byID  map[string]*list.Element // of *keptRun
	order *list.List               // most recently read first
	tasks int                      // held in all
}

// keptRun is one run's projection between reads.
type keptRun struct {
	id    string
	tasks int

	mu   sync.Mutex // one read folds at a time
	live *Live
}

func newProjections(log *EventLog) *Projections {
	return &Projections{log: log, maxTasks: keptTasks, maxRuns: keptRuns, byID: map[string]*list.Element{}, order: list.New()}
}

// Read projects run r's events as of now, r being its record as just read, and returns the
// stream entry ID of the latest event in the projection ("" for none). The projection is the
// caller's.
func (ps *Projections) Read(ctx context.Context, r *Run, now time.Time) (*Projection, string, error) {
	k := ps.keep(r)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.live == nil {
		k.live = NewLive(r)
	}
	if !k.live.Ended() {
		if err := ps.catchUp(ctx, k.live, r.ID); err != nil {
			return nil, "", err
		}
	}
	return k.live.Snapshot(r, now), k.live.LastID(), nil
}

// catchUp folds into live the events of run id after the latest it holds.
func (ps *Projections) catchUp(ctx context.Context, live *Live, id string) error {
	for {
		evs, err := ps.log.Read(ctx, id, live.LastID(), foldRead)
		if err != nil {
			return err
		}
		for _, e := range evs {
			live.Add(e)
		}
		if len(evs) < foldRead || live.Ended() {
			return nil
		}
	}
}

// keep returns run r's kept projection, most recently read now, making room for it. A run
// too big to keep gets one of its own, kept by nobody.
func (ps *Projections) keep(r *Run) *keptRun {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if el, ok := ps.byID[r.ID]; ok {
		ps.order.MoveToFront(el)
		return el.Value.(*keptRun)
	}
	k := &keptRun{id: r.ID, tasks: max(1, r.Tasks)}
	if k.tasks > ps.maxTasks {
		return k
	}
	for ps.order.Len() > 0 && (ps.tasks+k.tasks > ps.maxTasks || ps.order.Len() >= ps.maxRuns) {
		ps.drop(ps.order.Back())
	}
	ps.byID[r.ID] = ps.order.PushFront(k)
	ps.tasks += k.tasks
	return k
}

// Forget drops run id's projection: the run was deleted, or is gone.
func (ps *Projections) Forget(id string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if el, ok := ps.byID[id]; ok {
		ps.drop(el)
	}
}

// drop removes a kept run, with ps.mu held. A read under way finishes with it.
func (ps *Projections) drop(el *list.Element) {
	k := ps.order.Remove(el).(*keptRun)
	delete(ps.byID, k.id)
	ps.tasks -= k.tasks
}

// Held reports how many runs and tasks are kept, for tests and metrics.
func (ps *Projections) Held() (runs, tasks int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.order.Len(), ps.tasks
}
