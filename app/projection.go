package app

import (
	"cmp"
	"slices"
	"time"

	"github.com/taskrace/taskrace/live/taskstate"
)

// Attempt outcomes: how one execution of a task ended, or that it has not (see taskstate).
const (
	AttemptRunning  = taskstate.AttemptRunning
	AttemptDone     = taskstate.AttemptDone
	AttemptFailed   = taskstate.AttemptFailed
	AttemptCanceled = taskstate.AttemptCanceled // in flight when the run ended
	AttemptLost     = taskstate.AttemptLost     // its worker never reported an end, and the task was delivered again
)

// Attempt is one execution of a task by a worker, placed on the run's time axis.
type Attempt struct {
	Index      int     `json:"-"` // the task's index
	Number     int     `json:"number" doc:"1 for a task's first attempt"`
	Worker     *Worker `json:"worker,omitempty"`
	Outcome    string  `json:"outcome" enum:"running,done,failed,canceled,lost"`
	Retry      bool    `json:"retry,omitempty" doc:"A failed attempt after which the task is tried again"`
	StartedAt  Time    `json:"started_at"`
	EndedAt    Time    `json:"ended_at" doc:"null while it runs; the run's end for an attempt the run's end stopped"`
	StartMS    float64 `json:"start_ms" doc:"When it started, in milliseconds since the run was created"`
	DurMS      float64 `json:"dur_ms" doc:"From its start to its end; while it runs, to the instant projected"`
	HTTPStatus int     `json:"http_status,omitempty"`
	Error      string  `json:"error,omitempty"`

	seen bool // its task.started is in the projection
}

// Ended reports whether the attempt is over.
func (a *Attempt) Ended() bool { return a.Outcome != AttemptRunning }

// Lane is one worker slot of a run's timeline, with the attempts it executed in order of start.
type Lane struct {
	Worker   Worker
	Attempts []*Attempt
}

// Summary is a run's result: its timing against the physical limit and against a baseline,
// and its tasks counted by state.
type Summary struct {
	Status         string   `json:"status" enum:"running,finished,canceled,interrupted"`
	ElapsedMS      float64  `json:"elapsed_ms" doc:"From run.created to the run's end, or to the instant projected while it runs"`
	WallMS         *float64 `json:"wall_ms" doc:"From run.created to the run's end, from event times; null while it runs"`
	IdealMS        float64  `json:"ideal_ms" doc:"ceil(tasks / parallelism) × delay"`
	Efficiency     *float64 `json:"efficiency" doc:"ideal ÷ wall, for a finished run"`
	SpeedUp        *float64 `json:"speed_up" doc:"The compared wall time ÷ this run's, for a finished run"`
	ReductionPct   *float64 `json:"reduction_pct" doc:"The time saved against the compared wall time, in percent"`
	Baseline       string   `json:"baseline,omitempty" doc:"The sequential run compared with: the latest of the same plan before this one"`
	ComparedMS     float64  `json:"compared_ms" doc:"The wall time compared with: the baseline's, or tasks × delay without one"`
	Retries        int      `json:"retries" doc:"Attempts after a task's first"`
	FailedAttempts int      `json:"failed_attempts" doc:"Attempts that failed, retried or not"`
	Queued         int      `json:"queued"`
	Running        int      `json:"running"`
	Retrying       int      `json:"retrying"`
	Done           int      `json:"done"`
	Failed         int      `json:"failed"`
	Canceled       int      `json:"canceled"`
}

// Projection is everything any view shows of a run, folded from its events: as of now for
// a live view, or as of an instant for a replay. It is computed, never stored.
type Projection struct {
	Run      *Run    `json:"run"`
	Tasks    []*Task `json:"tasks"`
	Summary  Summary `json:"summary"`
	At       Time    `json:"at" doc:"The instant projected: the run's end once it has ended"`
	Lanes    []Lane  `json:"-"`
	Compared *Run    `json:"-"` // the baseline compared with, if any
	Created  Time    `json:"-"` // run.created, the origin of every offset
	Ended    bool    `json:"-"` // the terminal event is in the projection
	final    []bool  // by task: its end was recorded (done, or failed for good)
	last     Time    // the latest time of a task event
	end      *Event  // the terminal event, if projected
	slab     []Attempt
	counts   counts
}

// counts are the tasks of a projection by state, and their attempts.
type counts struct {
	queued, running, retrying, done, failed, canceled int
	retries, failedAttempts                           int
}

// add counts task t in, or out with sign -1.
func (c *counts) add(t *Task, sign int) {
	switch t.State {
	case TaskStateQueued:
		c.queued += sign
	case TaskStateRunning:
		c.running += sign
	case TaskStateRetrying:
		c.retrying += sign
	case TaskStateDone:
		c.done += sign
	case TaskStateFailed:
		c.failed += sign
	case TaskStateCanceled:
		c.canceled += sign
	}
	c.retries += sign * max(0, len(t.History)-1)
	for _, a := range t.History {
		if a.Outcome == AttemptFailed {
			c.failedAttempts += sign
		}
	}
}

// Project folds all of a run's events into what every view shows of it now: a running
// attempt's bar ends at now (or at the latest event, if a worker's clock is ahead). A zero
// now projects a running run up to its latest event. baseline is the run to compare with
// (see BaselineOf); nil compares with tasks × delay.
func Project(r *Run, events []*Event, now time.Time, baseline *Run) *Projection {
	return project(r, events, now, false, baseline)
}

// ProjectAt folds the events that happened by instant t: the run as a viewer saw it then,
// as a replay shows it.
func ProjectAt(r *Run, events []*Event, t time.Time, baseline *Run) *Projection {
	return project(r, events, t, true, baseline)
}

// StatusOf is the run status a terminal event leaves ("" for any other event): the one
// place where a run's end decides its status.
func StatusOf(eventType string) string {
	switch eventType {
	case RunFinished:
		return StatusFinished
	case RunCanceled:
		return StatusCanceled
	case RunInterrupted:
		return StatusInterrupted
	}
	return ""
}

func project(r *Run, events []*Event, t time.Time, cut bool, baseline *Run) *Projection {
	p := newProjection(r)
	for _, e := range inStreamOrder(events) {
		if e.Terminal() {
			// Nothing after a run's end is part of it: a task that starts once the run was
			// canceled is dropped by its worker.
			if !cut || !e.At.After(t) {
				p.end = e
			}
			break
		}
		if cut && e.At.After(t) {
			continue
		}
		p.fold(e)
	}
	p.settle(t)
	for _, task := range p.Tasks {
		p.counts.add(task, 1)
	}
	p.Summary = p.summarize(baseline)
	p.Lanes = lanesOf(p.Tasks)
	return p
}

// newProjection is r before any event: every task queued.
func newProjection(r *Run) *Projection {
	run := *r
	p := &Projection{Run: &run, Tasks: make([]*Task, r.Tasks), final: make([]bool, r.Tasks), Created: r.CreatedAt,
		slab: make([]Attempt, 0, r.Tasks)}
	// One allocation for all tasks, and room for one attempt each: a page of ten thousand
	// tasks projects in a few allocations per task.
	tasks, first := make([]Task, r.Tasks), make([]*Attempt, r.Tasks)
	for i := range p.Tasks {
		tasks[i] = Task{ID: TaskID(r.ID, i), Index: i, State: TaskStateQueued, History: first[i : i : i+1]}
		p.Tasks[i] = &tasks[i]
	}
	return p
}

// fold takes in one event that does not end the run, and returns the index of the task it
// is about, or -1.
func (p *Projection) fold(e *Event) int {
	if e.Type == RunCreated {
		if !e.At.IsZero() {
			p.Created = e.At
		}
		return -1
	}
	if e.Type == TasksQueued {
		for _, t := range p.Tasks[:min(max(e.Tasks, 0), len(p.Tasks))] {
			t.QueuedAt = e.At
		}
		if e.At.After(p.last.Time) {
			p.last = e.At
		}
		return -1
	}
	if e.Index == nil || *e.Index < 0 || *e.Index >= len(p.Tasks) {
		return -1
	}
	if e.At.After(p.last.Time) {
		p.last = e.At
	}
	switch e.Type {
	case TaskQueued:
		p.Tasks[*e.Index].QueuedAt = e.At
	case TaskStarted:
		p.started(*e.Index, e)
	case TaskFinished, TaskFailed:
		p.ended(*e.Index, e)
	default:
		return -1
	}
	return *e.Index
}

// CompareWith sets the summary's comparison against baseline (nil: against tasks × delay),
// for a caller that looks the baseline up only once it knows the run finished.
func (p *Projection) CompareWith(baseline *Run) { p.Summary = p.summarize(baseline) }

// inStreamOrder returns events ordered by stream entry ID, the order they were stored in.
// A caller's list is usually in order already; one without IDs is taken as given.
func inStreamOrder(events []*Event) []*Event {
	for i := 1; i < len(events); i++ {
		if events[i-1].ID == "" || events[i].ID == "" {
			return events
		}
		if CompareIDs(events[i-1].ID, events[i].ID) > 0 {
			sorted := slices.Clone(events)
			slices.SortStableFunc(sorted, func(a, b *Event) int { return CompareIDs(a.ID, b.ID) })
			return sorted
		}
	}
	return events
}

// attempt finds attempt number n of task t; n 0 (an event from before attempts were
// numbered) means its latest attempt.
func attempt(t *Task, n int) *Attempt {
	if n == 0 && len(t.History) > 0 {
		return t.History[len(t.History)-1]
	}
	for _, a := range t.History {
		if a.Number == n {
			return a
		}
	}
	return nil
}

// newAttempt allocates a from the projection's slab.
func (p *Projection) newAttempt(a Attempt) *Attempt {
	p.slab = append(p.slab, a) // a full slab moves on: pointers into the old one stay valid
	return &p.slab[len(p.slab)-1]
}

func (p *Projection) started(i int, e *Event) {
	t := p.Tasks[i]
	if p.final[i] {
		return // delivered again after its end was recorded: that end stands
	}
	n := e.Attempt
	if n == 0 {
		n = len(t.History) + 1
	}
	a := attempt(t, n)
	if a != nil && a.seen {
		return // the same start again
	}
	if a == nil {
		a = p.newAttempt(Attempt{Index: i, Number: n, Outcome: AttemptRunning})
		t.History = append(t.History, a)
		slices.SortFunc(t.History, func(a, b *Attempt) int { return cmp.Compare(a.Number, b.Number) })
	}
	a.StartedAt, a.Worker, a.seen = e.At, e.Worker, true
	// An earlier attempt still open was lost with its worker: asynq delivered the task again.
	for _, b := range t.History {
		if b.Number < n && b.Outcome == AttemptRunning {
			b.Outcome, b.EndedAt = AttemptLost, e.At
		}
	}
}

func (p *Projection) ended(i int, e *Event) {
	t := p.Tasks[i]
	if p.final[i] {
		return
	}
	a := attempt(t, e.Attempt)
	if a == nil || (e.Attempt == 0 && a.Ended()) {
		// Its start is not in the log: place it by its duration, when the event has one.
		n := e.Attempt
		if n == 0 {
			n = len(t.History) + 1
		}
		start := e.At
		if e.DurationMS != nil {
			start = Time{e.At.Add(-time.Duration(*e.DurationMS * float64(time.Millisecond)))}
		}
		a = p.newAttempt(Attempt{Index: i, Number: n, StartedAt: start, Worker: e.Worker})
		t.History = append(t.History, a)
		slices.SortFunc(t.History, func(a, b *Attempt) int { return cmp.Compare(a.Number, b.Number) })
	}
	a.EndedAt, a.HTTPStatus, a.Error = e.At, e.Status, e.Error
	if a.Worker == nil {
		a.Worker = e.Worker
	}
	if e.Type == TaskFinished {
		a.Outcome = AttemptDone
		t.DurationMS = e.DurationMS
		p.final[i] = true
		return
	}
	a.Outcome = AttemptFailed
	a.Retry = e.Retry != nil && *e.Retry
	p.final[i] = !a.Retry
}

// settle decides every task's state once the events are folded, and ends the attempts
// still open: at the run's end when it has ended (they are canceled), else at the instant.
func (p *Projection) settle(t time.Time) {
	p.At = p.instant(t)
	for i := range p.Tasks {
		p.settleOne(i)
	}
}

// instant is the instant projected: the run's end once it has ended, else t, never before
// the latest event nor before the run's creation.
func (p *Projection) instant(t time.Time) Time {
	at := p.last
	if p.end != nil {
		// The end is never before an event of the run: a worker whose clock is ahead, or an
		// end stored just after a later-stamped one, must not make the wall time shrink.
		p.Ended = true
		if p.end.At.After(at.Time) {
			at = p.end.At
		}
	} else if !t.IsZero() && t.After(at.Time) {
		at = Time{t.UTC()}
	}
	if at.Before(p.Created.Time) {
		at = p.Created
	}
	return at
}

// settleOne decides task i's state and places its attempts as of p.At.
func (p *Projection) settleOne(i int) {
	task := p.Tasks[i]
	if p.final[i] {
		task.History = settleFinal(task.History)
	}
	for _, a := range task.History {
		if a.Outcome == AttemptRunning && p.Ended {
			a.Outcome, a.EndedAt = AttemptCanceled, p.At
		}
		p.place(a)
	}
	p.settleTask(task, p.final[i])
}

// settleFinal closes the attempts of a task whose end was recorded: one still open before
// the recorded one was lost; one after it is a delivery whose own end is never recorded
// (finishing counts once), and is dropped.
func settleFinal(history []*Attempt) []*Attempt {
	var end *Attempt
	for _, a := range history {
		if a.Outcome == AttemptDone || (a.Outcome == AttemptFailed && !a.Retry) {
			end = a
			break
		}
	}
	kept := history[:0]
	for _, a := range history {
		if a.Outcome == AttemptRunning {
			if a.Number > end.Number {
				continue
			}
			a.Outcome, a.EndedAt = AttemptLost, end.StartedAt
		}
		kept = append(kept, a)
	}
	return kept
}

// place sets an attempt's offsets on the run's time axis, within [0, the instant projected],
// computed on durations so that they are exact to the microsecond.
func (p *Projection) place(a *Attempt) {
	start := a.StartedAt.Time
	if start.Before(p.Created.Time) {
		start = p.Created.Time // a worker whose clock is behind
	}
	if start.After(p.At.Time) {
		start = p.At.Time
	}
	end := p.At.Time
	if !a.EndedAt.IsZero() && a.EndedAt.Before(end) {
		end = a.EndedAt.Time
	}
	a.StartMS, a.DurMS = ms(start.Sub(p.Created.Time)), ms(max(0, end.Sub(start)))
}

// sinceMS is t's offset from the run's creation, in milliseconds.
func (p *Projection) sinceMS(t Time) float64 { return ms(t.Sub(p.Created.Time)) }

func (p *Projection) settleTask(t *Task, final bool) {
	t.Attempts = len(t.History)
	t.Worker, t.StartedAt, t.EndedAt, t.HTTPStatus, t.Error = nil, Time{}, Time{}, 0, ""
	if len(t.History) == 0 {
		t.State = taskstate.Of(false, "", false, p.Ended)
		if p.Ended {
			t.EndedAt = p.At
		}
		return
	}
	a := t.History[len(t.History)-1]
	if final {
		// The recorded end is the task's, even if a later delivery was seen before it.
		for _, b := range t.History {
			if b.Outcome == AttemptDone || (b.Outcome == AttemptFailed && !b.Retry) {
				a = b
				break
			}
		}
	}
	t.Worker, t.StartedAt, t.HTTPStatus, t.Error = a.Worker, a.StartedAt, a.HTTPStatus, a.Error
	t.State = taskstate.Of(true, a.Outcome, a.Retry, p.Ended)
	switch t.State {
	case TaskStateDone:
		t.EndedAt, t.Error = a.EndedAt, ""
	case TaskStateFailed, TaskStateRetrying:
		t.EndedAt = a.EndedAt
	case TaskStateCanceled:
		t.EndedAt = p.At
	}
	if t.State != TaskStateDone {
		t.DurationMS = nil
	}
}

// summarize sets the run's status and timing as its events tell them, with the tasks and
// attempts as counted.
func (p *Projection) summarize(baseline *Run) Summary {
	r, c := p.Run, p.counts
	r.Done, r.Failed = c.done+c.failed, c.failed
	r.Status, r.WallMS, r.EndedAt, r.Reason = StatusRunning, nil, Time{}, ""
	if p.Ended {
		r.Status, r.EndedAt, r.Reason = StatusOf(p.end.Type), p.At, p.end.Reason
		r.WallMS = ptr(p.sinceMS(p.At))
	}
	sum := Summarize(r, baseline)
	p.Compared = nil
	if sum.Baseline != "" {
		p.Compared = baseline
	}
	sum.ElapsedMS = max(0, p.sinceMS(p.At))
	sum.Retries, sum.FailedAttempts = c.retries, c.failedAttempts
	sum.Queued, sum.Running, sum.Retrying = c.queued, c.running, c.retrying
	sum.Done, sum.Failed, sum.Canceled = c.done, c.failed, c.canceled
	return sum
}

// Summarize is the summary of a run's record against baseline (nil for none), for the views
// that list runs without reading their events; Project gives the same from events. It also
// sets the record's speed-up and baseline, as the API shows them.
func Summarize(r *Run, baseline *Run) Summary {
	s := Summary{Status: r.Status, WallMS: r.WallMS, IdealMS: r.IdealMS, Done: r.Done - r.Failed, Failed: r.Failed}
	r.Efficiency, r.SpeedUp, r.Baseline = nil, nil, ""
	if r.WallMS != nil {
		s.ElapsedMS = *r.WallMS
	}
	if r.Status != StatusFinished || r.WallMS == nil {
		return s
	}
	wall := *r.WallMS
	s.Efficiency = ptr(Efficiency(r.IdealMS, wall))
	s.ComparedMS = float64(r.Tasks) * float64(r.DelayMS)
	if IsBaseline(baseline, r) {
		s.ComparedMS, s.Baseline = *baseline.WallMS, baseline.ID
	}
	if wall > 0 && s.ComparedMS > 0 {
		s.SpeedUp = ptr(s.ComparedMS / wall)
		s.ReductionPct = ptr(Reduction(wall, s.ComparedMS))
	}
	r.Efficiency, r.SpeedUp, r.Baseline = s.Efficiency, s.SpeedUp, s.Baseline
	return s
}

// IsBaseline reports whether b is a run r may be compared with: a finished sequential run of
// the same tasks, delay, target and failure rate, launched before r. A run is never its own
// baseline, nor compared with a later one.
func IsBaseline(b, r *Run) bool {
	return b != nil && r != nil && b.ID < r.ID && b.Mode == Sequential && b.Status == StatusFinished &&
		b.WallMS != nil && SameWork(b.Plan, r.Plan)
}

// SameWork reports whether two plans do the same work, whatever their mode and parallelism:
// runs of them compare like with like.
func SameWork(a, b Plan) bool {
	return a.Tasks == b.Tasks && a.DelayMS == b.DelayMS && a.Target == b.Target && a.FailureRate == b.FailureRate
}

// BaselineOf is r's baseline among runs (in any order): the latest one IsBaseline allows,
// or nil.
func BaselineOf(r *Run, runs []*Run) *Run {
	var best *Run
	for _, b := range runs {
		if IsBaseline(b, r) && (best == nil || b.ID > best.ID) {
			best = b
		}
	}
	return best
}

// LatestOfEachMode picks from runs the latest finished run of each mode that does the same
// work as plan (see SameWork), in the order of Modes: the runs that compare like with like.
func LatestOfEachMode(runs []*Run, plan Plan) []*Run {
	var out []*Run
	for _, m := range Modes {
		var latest *Run
		for _, r := range runs {
			if r.Mode == m && r.Status == StatusFinished && SameWork(r.Plan, plan) && (latest == nil || r.ID > latest.ID) {
				latest = r
			}
		}
		if latest != nil {
			out = append(out, latest)
		}
	}
	return out
}

// lanesOf lays the attempts out in lanes, one per worker slot, in order of host, pid and
// slot, as a worker numbers its slots.
func lanesOf(tasks []*Task) []Lane {
	at := map[Worker]int{}
	var lanes []Lane
	for _, t := range tasks {
		for _, a := range t.History {
			if a.Worker == nil {
				continue
			}
			w := *a.Worker
			w.Proc = "" // a slot is host, pid and slot
			i, ok := at[w]
			if !ok {
				i = len(lanes)
				at[w] = i
				lanes = append(lanes, Lane{Worker: *a.Worker})
			}
			lanes[i].Attempts = append(lanes[i].Attempts, a)
		}
	}
	slices.SortFunc(lanes, func(a, b Lane) int { return CompareWorkers(a.Worker, b.Worker, true) })
	for _, l := range lanes {
		slices.SortStableFunc(l.Attempts, func(a, b *Attempt) int {
			return cmp.Or(cmp.Compare(a.StartMS, b.StartMS), cmp.Compare(a.Index, b.Index), cmp.Compare(a.Number, b.Number))
		})
	}
	return lanes
}

// CompareWorkers orders workers by host, then pid, then (with slots) slot.
func CompareWorkers(a, b Worker, slots bool) int {
	if c := cmp.Compare(a.Host, b.Host); c != 0 {
		return c
	}
	if c := cmp.Compare(a.PID, b.PID); c != 0 || !slots {
		return c
	}
	return cmp.Compare(a.Slot, b.Slot)
}

// ProcessTally is how many of a run's tasks one worker process took: ran last, or runs now.
type ProcessTally struct {
	Process string `json:"process" doc:"host:pid"`
	Tasks   int    `json:"tasks"`
	Lost    bool   `json:"lost" doc:"It stopped heartbeating with some of the run's tasks in hand"`
}

// Processes tallies the tasks by the worker process of their latest attempt, in order of
// host and pid.
func (p *Projection) Processes() []ProcessTally {
	type proc struct {
		w     Worker
		tally ProcessTally
	}
	at := map[string]int{}
	var procs []proc
	for _, t := range p.Tasks {
		if t.Worker == nil {
			continue
		}
		name := t.Worker.Process()
		i, ok := at[name]
		if !ok {
			i = len(procs)
			at[name] = i
			procs = append(procs, proc{w: *t.Worker, tally: ProcessTally{Process: name}})
		}
		procs[i].tally.Tasks++
		procs[i].tally.Lost = procs[i].tally.Lost || t.Orphaned != nil
	}
	slices.SortStableFunc(procs, func(a, b proc) int { return CompareWorkers(a.w, b.w, false) })
	out := make([]ProcessTally, len(procs))
	for i, pr := range procs {
		out[i] = pr.tally
	}
	return out
}

// LostWorker is a worker process that is gone with some of a run's tasks in hand.
type LostWorker struct {
	Process    string `json:"process" doc:"host:pid"`
	Tasks      []int  `json:"tasks" doc:"Indexes of the tasks it held"`
	RetryAfter Time   `json:"retry_after" doc:"The earliest retry of its leased tasks; null when asynq requeued them all"`
	RetryBy    Time   `json:"retry_by"`
}

// LostWorkers gathers the orphaned tasks (see MarkLost) by worker process.
func (p *Projection) LostWorkers() []LostWorker {
	var out []LostWorker
	at := map[string]int{}
	for _, t := range p.Tasks {
		o := t.Orphaned
		if o == nil {
			continue
		}
		i, ok := at[o.Worker]
		if !ok {
			i = len(out)
			at[o.Worker] = i
			out = append(out, LostWorker{Process: o.Worker})
		}
		l := &out[i]
		l.Tasks = append(l.Tasks, t.Index)
		if o.RetryAfter != nil && (l.RetryAfter.IsZero() || o.RetryAfter.Before(l.RetryAfter.Time)) {
			l.RetryAfter = *o.RetryAfter
		}
		if o.RetryBy != nil && o.RetryBy.After(l.RetryBy.Time) {
			l.RetryBy = *o.RetryBy
		}
	}
	return out
}

// held are the running tasks that a worker process, by its ID, may have lost: those of a
// running distributed run. Local runs end with their owner instead.
func (p *Projection) held() []*Task {
	if p.Run.Mode != Distributed || p.Ended {
		return nil
	}
	var out []*Task
	for _, t := range p.Tasks {
		if t.State == TaskStateRunning && t.Worker != nil && t.Worker.Proc != "" {
			out = append(out, t)
		}
	}
	return out
}

// MarkLost marks orphaned the running tasks whose worker process is gone (gone reports it by
// process ID), with when asynq retries each one from its lease's expiry (leases, by task ID;
// a task without a lease has been put back on the queue already).
func (p *Projection) MarkLost(gone func(proc string) bool, leases map[string]time.Time) {
	for _, t := range p.held() {
		if !gone(t.Worker.Proc) {
			continue
		}
		o := &Orphan{Worker: t.Worker.Process()}
		if exp, ok := leases[t.ID]; ok {
			exp = exp.UTC()
			o.LeaseExpiresAt = &Time{exp}
			o.RetryAfter = &Time{exp.Add(asynqRecoverAfter)}
			o.RetryBy = &Time{exp.Add(asynqRecoverAfter + asynqRecovererPeriod)}
		} else {
			o.Requeued = true
		}
		t.Orphaned = o
	}
}
