package app

import (
	"slices"
	"time"
)

// Live is a run's projection kept current one event at a time, for the views that follow
// a run as it happens: an event costs the tasks it touches, not a fold of the whole run.
// After events e1…en, in stream order, it holds what Project(r, e1…en, zero, nil) holds.
// It is not safe for concurrent use.
type Live struct {
	p     *Projection
	last  string   // the stream entry ID of the latest event taken in
	lanes []Worker // the lanes' workers (slot without Proc), in lane order
	procs []liveProc
}

// liveProc is one worker process's tally of a live run, with a worker of it to order by.
type liveProc struct {
	w     Worker
	tally ProcessTally
}

// Change is what one event changed in a live projection.
type Change struct {
	Tasks  []*Task // the tasks it changed, in order of index
	Lane   *Worker // the lane it opened, if any: a worker slot's first attempt
	Next   *Worker // the lane that follows Lane in lane order; nil when Lane is the last
	Before Summary // the summary before the event
	Procs  bool    // the tally of tasks by worker process changed
	Ended  bool    // it ended the run: Tasks are those the end canceled
}

// NewLive is run r before any event of it.
func NewLive(r *Run) *Live {
	p := newProjection(r)
	p.At = p.Created
	p.counts.queued = r.Tasks
	p.Summary = p.summarize(nil)
	return &Live{p: p}
}

// LastID is the stream entry ID of the latest event taken in ("" before any).
func (l *Live) LastID() string { return l.last }

// Ended reports whether the run's terminal event has been taken in.
func (l *Live) Ended() bool { return l.p.Ended }

// Add takes in the next event of the run, in stream order, and says what it changed. An
// event at or before the latest one taken in, and any event after the run's end, change
// nothing.
func (l *Live) Add(e *Event) Change {
	p := l.p
	if p.Ended || (e.ID != "" && l.last != "" && CompareIDs(e.ID, l.last) <= 0) {
		return Change{}
	}
	if e.ID != "" {
		l.last = e.ID
	}
	return l.take(e)
}

// take folds in e, whatever its place in the stream: Add in stream order, Moments in time
// order.
func (l *Live) take(e *Event) Change {
	p := l.p
	if e.Terminal() {
		return l.end(e)
	}
	var t *Task
	before, proc := p.Summary, ""
	if e.Index != nil && *e.Index >= 0 && *e.Index < len(p.Tasks) &&
		(e.Type == TaskStarted || e.Type == TaskFinished || e.Type == TaskFailed) {
		t = p.Tasks[*e.Index]
		p.counts.add(t, -1) // counted again once settled
		l.count(t, -1)
		proc = processOf(t)
	}
	i := p.fold(e)
	p.At = p.instant(time.Time{})
	if t == nil {
		// Only the instant moved.
		p.Summary = p.summarize(nil)
		return Change{}
	}
	p.settleOne(i)
	p.counts.add(t, 1)
	l.count(t, 1)
	p.Summary = p.summarize(nil)
	c := Change{Tasks: []*Task{t}, Before: before, Procs: processOf(t) != proc}
	for _, a := range t.History {
		if a.Worker != nil {
			if lane, next, ok := l.open(*a.Worker); ok {
				c.Lane, c.Next = &lane, next
			}
		}
	}
	return c
}

// end takes in the terminal event: the attempts still open end at the run's end, and
// every task that had not ended is canceled.
func (l *Live) end(e *Event) Change {
	p := l.p
	var open []int
	for i := range p.Tasks {
		if !p.final[i] {
			open = append(open, i)
		}
	}
	before := p.Summary
	p.end = e
	p.settle(time.Time{})
	p.counts = counts{}
	for _, t := range p.Tasks {
		p.counts.add(t, 1)
	}
	p.Summary = p.summarize(nil)
	c := Change{Ended: true, Before: before, Procs: true, Tasks: make([]*Task, len(open))}
	for k, i := range open {
		c.Tasks[k] = p.Tasks[i]
	}
	return c
}

// open adds w's lane if it has none yet, and reports it with the lane after it.
func (l *Live) open(w Worker) (Worker, *Worker, bool) {
	w.Proc = "" // a slot is host, pid and slot
	i, found := slices.BinarySearchFunc(l.lanes, w, func(a, b Worker) int { return CompareWorkers(a, b, true) })
	if found {
		return w, nil, false
	}
	l.lanes = slices.Insert(l.lanes, i, w)
	if i+1 < len(l.lanes) {
		next := l.lanes[i+1]
		return w, &next, true
	}
	return w, nil, true
}

// processOf is the worker process task t is tallied under ("" for none).
func processOf(t *Task) string {
	if t.Worker == nil {
		return ""
	}
	return t.Worker.Process()
}

// count counts task t in its worker process's tally, or out with sign -1.
func (l *Live) count(t *Task, sign int) {
	if t.Worker == nil {
		return
	}
	name := t.Worker.Process()
	i := slices.IndexFunc(l.procs, func(p liveProc) bool { return p.tally.Process == name })
	if i < 0 {
		i, _ = slices.BinarySearchFunc(l.procs, *t.Worker, func(p liveProc, w Worker) int { return CompareWorkers(p.w, w, false) })
		l.procs = slices.Insert(l.procs, i, liveProc{w: *t.Worker, tally: ProcessTally{Process: name}})
	}
	l.procs[i].tally.Tasks += sign
}

// Summary is the run's summary as of the latest event.
func (l *Live) Summary() Summary { return l.p.Summary }

// Run is the run's record as its events tell it so far.
func (l *Live) Run() *Run { return l.p.Run }

// Processes is Projection.Processes as of the latest event.
func (l *Live) Processes() []ProcessTally {
	out := make([]ProcessTally, 0, len(l.procs))
	for _, p := range l.procs {
		if p.tally.Tasks > 0 {
			out = append(out, p.tally)
		}
	}
	return out
}

// Current is the projection as of the latest event, without the pass Projection makes: the
// run, its summary and the tasks the latest event changed are current; another running
// attempt is placed as of the event that last changed its task. It stays Live's, to read
// until the next Add.
func (l *Live) Current() *Projection { return l.p }

// CompareWith sets the summary's comparison against baseline, as Projection.CompareWith.
func (l *Live) CompareWith(baseline *Run) { l.p.CompareWith(baseline) }

// Projection is the whole projection as of the latest event: every running attempt placed
// up to it, and the lanes laid out. It costs a pass over the run; the projection stays
// Live's, to read until the next Add.
func (l *Live) Projection() *Projection {
	p := l.p
	for _, t := range p.Tasks {
		for _, a := range t.History {
			p.place(a)
		}
	}
	p.Lanes = lanesOf(p.Tasks)
	return p
}

// Step is a task's state from an instant on, in milliseconds since the run was created.
type Step struct {
	AtMS  float64 `json:"at_ms"`
	State string  `json:"state"`
}

// Steps are the states task t went through, each from the instant of the event that set
// it: the task's state at any instant t is that of ProjectAt(t). A replay shows them.
func (p *Projection) Steps(t *Task) []Step {
	steps := []Step{{0, TaskStateQueued}}
	add := func(at Time, state string) {
		ms := max(0, p.sinceMS(at))
		if last := steps[len(steps)-1]; last.State == state {
			return
		} else if ms < last.AtMS {
			ms = last.AtMS // a worker's clock behind another's: keep the order
		}
		steps = append(steps, Step{ms, state})
	}
	for _, a := range t.History {
		if a.seen {
			add(a.StartedAt, TaskStateRunning)
		}
		switch {
		case a.Outcome == AttemptDone:
			add(a.EndedAt, TaskStateDone)
		case a.Outcome == AttemptFailed && a.Retry:
			add(a.EndedAt, TaskStateRetrying)
		case a.Outcome == AttemptFailed:
			add(a.EndedAt, TaskStateFailed)
		}
	}
	if t.State == TaskStateCanceled {
		add(p.At, TaskStateCanceled)
	}
	return steps
}

// Snapshot is what Project(r, events, now, nil) gives for the events taken in so far, r being
// the run's record as read now (its pin, say, may have changed since): a copy the caller
// owns, which the live projection's next events leave alone. It costs a copy of the run.
func (l *Live) Snapshot(r *Run, now time.Time) *Projection {
	src := l.p
	run := *r
	n := 0
	for _, t := range src.Tasks {
		n += len(t.History)
	}
	p := &Projection{Run: &run, Tasks: make([]*Task, len(src.Tasks)), Created: src.Created,
		final: slices.Clone(src.final), last: src.last, end: src.end, slab: make([]Attempt, n)}
	tasks, history := make([]Task, len(src.Tasks)), make([]*Attempt, n)
	k := 0
	for i, t := range src.Tasks {
		tasks[i] = *t
		h := history[k : k+len(t.History) : k+len(t.History)]
		for j, a := range t.History {
			p.slab[k+j] = *a
			h[j] = &p.slab[k+j]
		}
		k += len(t.History)
		tasks[i].History = h
		p.Tasks[i] = &tasks[i]
	}
	p.settle(now)
	for _, t := range p.Tasks {
		p.counts.add(t, 1)
	}
	p.Summary = p.summarize(nil)
	p.Lanes = lanesOf(p.Tasks)
	return p
}
