package app

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// script writes a run's events as its processes would, at offsets in milliseconds from
// run.created, with stream entry IDs in the order they are written.
type script struct {
	r   *Run
	evs []*Event
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newScript(mode Mode, tasks int, delayMS int64, par int) *script {
	p := Plan{Mode: mode, Tasks: tasks, DelayMS: delayMS, Parallelism: par, Target: BuiltinTarget}
	r := &Run{ID: "01JNRUN0000000000000000000", Plan: p, Status: StatusRunning, CreatedAt: Time{t0}, IdealMS: p.IdealMS()}
	s := &script{r: r}
	s.add(&Event{Type: RunCreated, Mode: mode, Tasks: tasks, DelayMS: delayMS, Parallelism: par}, 0)
	for i := range tasks {
		s.add(&Event{Type: TaskQueued, Index: ptr(i), TaskID: TaskID(r.ID, i)}, 0.1)
	}
	return s
}

func at(ms float64) Time { return Time{t0.Add(time.Duration(ms * float64(time.Millisecond)))} }

func (s *script) add(e *Event, ms float64) {
	e.ID = strconv.FormatInt(t0.UnixMilli(), 10) + "-" + strconv.Itoa(len(s.evs))
	e.RunID, e.At = s.r.ID, at(ms)
	s.evs = append(s.evs, e)
}

func (s *script) start(i, n int, w Worker, ms float64) {
	s.add(&Event{Type: TaskStarted, Index: ptr(i), TaskID: TaskID(s.r.ID, i), Worker: &w, Attempt: n}, ms)
}

func (s *script) finish(i, n int, w Worker, ms, durMS float64) {
	s.add(&Event{Type: TaskFinished, Index: ptr(i), TaskID: TaskID(s.r.ID, i), Worker: &w, Attempt: n,
		DurationMS: ptr(durMS), Status: 200}, ms)
}

func (s *script) fail(i, n int, w Worker, ms float64, retry bool) {
	s.add(&Event{Type: TaskFailed, Index: ptr(i), TaskID: TaskID(s.r.ID, i), Worker: &w, Attempt: n,
		Error: "injected failure", Retry: ptr(retry)}, ms)
}

func (s *script) end(typ string, ms float64, reason string) {
	s.add(&Event{Type: typ, Reason: reason}, ms)
}

func slot(host string, pid, n int) Worker {
	return Worker{Host: host, PID: pid, Slot: n, Proc: "proc-" + host + "-" + strconv.Itoa(pid)}
}

// bar is an attempt as a test expects it: outcome, start and duration in milliseconds.
type bar struct {
	outcome        string
	startMS, durMS float64
}

// projectionCase is a run's events and what its projection must say.
type projectionCase struct {
	name    string
	script  func() *script
	at      float64 // > 0: ProjectAt this offset; else Project as of now
	now     float64 // offset of now for Project
	status  string
	states  []string
	bars    [][]bar // per task, its attempts
	wallMS  float64 // -1: still running
	elapsed float64
	retries int
	lanes   []string
	check   func(t *testing.T, p *Projection)
}

func projectionCases() []projectionCase {
	a0, a1, b0 := slot("a", 1, 0), slot("a", 1, 1), slot("b", 2, 0)
	return []projectionCase{
		{
			name: "normal",
			script: func() *script {
				s := newScript(Concurrent, 3, 100, 2)
				s.start(1, 1, a1, 1) // slot 1 starts first: lanes still come in slot order
				s.start(0, 1, a0, 2)
				s.finish(1, 1, a1, 101, 100)
				s.start(2, 1, a1, 102)
				s.finish(0, 1, a0, 103, 100)
				s.finish(2, 1, a1, 203, 100)
				s.end(RunFinished, 203, "")
				return s
			},
			now:     500,
			status:  StatusFinished,
			states:  []string{TaskStateDone, TaskStateDone, TaskStateDone},
			bars:    [][]bar{{{AttemptDone, 2, 101}}, {{AttemptDone, 1, 100}}, {{AttemptDone, 102, 101}}},
			wallMS:  203,
			elapsed: 203,
			lanes:   []string{"a:1/0", "a:1/1"},
			check: func(t *testing.T, p *Projection) {
				s := p.Summary
				if s.Efficiency == nil || !near(*s.Efficiency, 200.0/203) || s.SpeedUp == nil || !near(*s.SpeedUp, 300.0/203) ||
					s.ReductionPct == nil || !near(*s.ReductionPct, (1-203.0/300)*100) || s.Baseline != "" || s.ComparedMS != 300 {
					t.Errorf("summary %+v: want efficiency 200/203, speed-up and reduction against tasks × delay", s)
				}
				if s.Done != 3 || p.Run.Done != 3 || p.Run.Failed != 0 || p.Run.Efficiency != s.Efficiency {
					t.Errorf("counts: summary %+v, run done %d failed %d", s, p.Run.Done, p.Run.Failed)
				}
				if task := p.Tasks[0]; task.DurationMS == nil || *task.DurationMS != 100 || task.HTTPStatus != 200 || task.Worker.Slot != 0 {
					t.Errorf("task 0: %+v", task)
				}
			},
		},
		{
			name: "retry: a failed attempt, then success",
			script: func() *script {
				s := newScript(Distributed, 2, 100, 2)
				s.start(0, 1, a0, 1)
				s.start(1, 1, a1, 1)
				s.fail(0, 1, a0, 31, true) // 30 ms of real work, not a 0 ms sliver
				s.finish(1, 1, a1, 101, 100)
				s.start(0, 2, b0, 60)
				s.finish(0, 2, b0, 160, 100)
				s.end(RunFinished, 160, "")
				return s
			},
			status:  StatusFinished,
			states:  []string{TaskStateDone, TaskStateDone},
			bars:    [][]bar{{{AttemptFailed, 1, 30}, {AttemptDone, 60, 100}}, {{AttemptDone, 1, 100}}},
			wallMS:  160,
			elapsed: 160,
			retries: 1,
			lanes:   []string{"a:1/0", "a:1/1", "b:2/0"},
			check: func(t *testing.T, p *Projection) {
				first := p.Tasks[0].History[0]
				if !first.Retry || first.Error == "" || p.Summary.FailedAttempts != 1 || p.Tasks[0].Attempts != 2 || p.Tasks[0].Error != "" {
					t.Errorf("failed attempt %+v, task %+v, summary %+v", first, p.Tasks[0], p.Summary)
				}
				if w := p.Tasks[0].Worker; w == nil || w.Host != "b" {
					t.Errorf("task 0 last ran on %v, want b", w)
				}
			},
		},
		{
			name: "retrying until it starts again",
			script: func() *script {
				s := newScript(Distributed, 1, 100, 1)
				s.start(0, 1, a0, 1)
				s.fail(0, 1, a0, 31, true)
				s.start(0, 2, a0, 60)
				return s
			},
			at:      50,
			status:  StatusRunning,
			states:  []string{TaskStateRetrying},
			bars:    [][]bar{{{AttemptFailed, 1, 30}}},
			wallMS:  -1,
			elapsed: 50,
			lanes:   []string{"a:1/0"},
			check: func(t *testing.T, p *Projection) {
				if p.Summary.Retrying != 1 || p.Summary.Retries != 0 || p.Summary.FailedAttempts != 1 {
					t.Errorf("summary %+v: want 1 retrying, no retry started yet, 1 failed attempt", p.Summary)
				}
			},
		},
		{
			name: "cancel mid-run",
			script: func() *script {
				s := newScript(Sequential, 3, 100, 1)
				s.start(0, 1, a0, 1)
				s.finish(0, 1, a0, 101, 100)
				s.start(1, 1, a0, 102)
				s.end(RunCanceled, 150, "canceled by request")
				s.start(2, 1, a0, 151) // the worker had not heard yet: not part of the run
				return s
			},
			now:     400,
			status:  StatusCanceled,
			states:  []string{TaskStateDone, TaskStateCanceled, TaskStateCanceled},
			bars:    [][]bar{{{AttemptDone, 1, 100}}, {{AttemptCanceled, 102, 48}}, nil},
			wallMS:  150,
			elapsed: 150,
			lanes:   []string{"a:1/0"},
			check: func(t *testing.T, p *Projection) {
				s := p.Summary
				if s.Canceled != 2 || s.Running != 0 || s.Queued != 0 || s.SpeedUp != nil || s.Efficiency != nil || s.ReductionPct != nil {
					t.Errorf("summary %+v: want 2 canceled, none running or queued, no speed-up", s)
				}
				if p.Run.Reason != "canceled by request" || !p.Run.EndedAt.Equal(at(150).Time) {
					t.Errorf("run %+v: want the cancel's reason and time", p.Run)
				}
				for _, task := range p.Tasks[1:] {
					if !task.EndedAt.Equal(at(150).Time) {
						t.Errorf("task %d ended at %v, want the cancel time", task.Index, task.EndedAt)
					}
				}
			},
		},
		{
			name: "worker lost, its task delivered again",
			script: func() *script {
				s := newScript(Distributed, 2, 100, 2)
				s.start(0, 1, a0, 1) // a dies with it
				s.start(1, 1, b0, 1)
				s.finish(1, 1, b0, 101, 100)
				s.start(0, 2, b0, 900) // asynq's recoverer gives it to b
				s.finish(0, 2, b0, 1000, 100)
				s.end(RunFinished, 1000, "")
				return s
			},
			status:  StatusFinished,
			states:  []string{TaskStateDone, TaskStateDone},
			bars:    [][]bar{{{AttemptLost, 1, 899}, {AttemptDone, 900, 100}}, {{AttemptDone, 1, 100}}},
			wallMS:  1000,
			elapsed: 1000,
			retries: 1,
			lanes:   []string{"a:1/0", "b:2/0"},
			check: func(t *testing.T, p *Projection) {
				if procs := p.Processes(); len(procs) != 1 || procs[0] != (ProcessTally{Process: "b:2", Tasks: 2}) {
					t.Errorf("processes %+v: want b with both tasks", procs)
				}
			},
		},
		{
			name: "worker lost, while it is gone",
			script: func() *script {
				s := newScript(Distributed, 3, 100, 2)
				s.start(0, 1, a0, 1)
				s.start(1, 1, b0, 1)
				s.start(2, 1, a1, 2)
				s.finish(1, 1, b0, 101, 100)
				return s
			},
			now:     300,
			status:  StatusRunning,
			states:  []string{TaskStateRunning, TaskStateDone, TaskStateRunning},
			bars:    [][]bar{{{AttemptRunning, 1, 299}}, {{AttemptDone, 1, 100}}, {{AttemptRunning, 2, 298}}},
			wallMS:  -1,
			elapsed: 300,
			lanes:   []string{"a:1/0", "a:1/1", "b:2/0"},
			check: func(t *testing.T, p *Projection) {
				lease := t0.Add(30 * time.Second)
				p.MarkLost(func(proc string) bool { return proc == a0.Proc }, map[string]time.Time{TaskID(p.Run.ID, 0): lease})
				o0, o2 := p.Tasks[0].Orphaned, p.Tasks[2].Orphaned
				if o0 == nil || o0.Worker != "a:1" || o0.Requeued || !o0.RetryAfter.Equal(lease.Add(30*time.Second)) ||
					!o0.RetryBy.Equal(lease.Add(90*time.Second)) {
					t.Errorf("task 0 orphan %+v: want a:1, retried between lease +30 s and +90 s", o0)
				}
				if o2 == nil || !o2.Requeued || p.Tasks[1].Orphaned != nil {
					t.Errorf("task 2 orphan %+v (want requeued), task 1 %+v (want none)", o2, p.Tasks[1].Orphaned)
				}
				if p.Tasks[0].State != TaskStateRunning {
					t.Errorf("an orphaned task reads %s: it still runs until asynq retries it", p.Tasks[0].State)
				}
				lost := p.LostWorkers()
				if len(lost) != 1 || lost[0].Process != "a:1" || !slices.Equal(lost[0].Tasks, []int{0, 2}) ||
					!lost[0].RetryAfter.Equal(lease.Add(30*time.Second)) {
					t.Errorf("lost workers %+v: want a:1 with tasks 0 and 2", lost)
				}
				want := []ProcessTally{{Process: "a:1", Tasks: 2, Lost: true}, {Process: "b:2", Tasks: 1}}
				if got := p.Processes(); !slices.Equal(got, want) {
					t.Errorf("processes %+v, want %+v", got, want)
				}
			},
		},
		{
			name: "interrupted",
			script: func() *script {
				s := newScript(Concurrent, 3, 100, 2)
				s.start(0, 1, a0, 1)
				s.start(1, 1, a1, 1)
				s.finish(0, 1, a0, 101, 100)
				s.end(RunInterrupted, 120, "server shut down")
				return s
			},
			status:  StatusInterrupted,
			states:  []string{TaskStateDone, TaskStateCanceled, TaskStateCanceled},
			bars:    [][]bar{{{AttemptDone, 1, 100}}, {{AttemptCanceled, 1, 119}}, nil},
			wallMS:  120,
			elapsed: 120,
			lanes:   []string{"a:1/0", "a:1/1"},
			check: func(t *testing.T, p *Projection) {
				if p.Run.Reason != "server shut down" || p.Summary.Efficiency != nil {
					t.Errorf("run %+v, summary %+v: want the reason, no efficiency", p.Run, p.Summary)
				}
			},
		},
		{
			name: "clocks of different hosts disagree",
			script: func() *script {
				s := newScript(Distributed, 2, 100, 2)
				s.start(0, 1, b0, -5) // b's clock is behind: it started "before" the run
				s.start(1, 1, a0, 1)
				s.finish(0, 1, b0, 130, 100) // ...and ahead later: stored first, stamped after a's
				s.finish(1, 1, a0, 101, 100) // the last to be stored stamps run.finished
				s.end(RunFinished, 101, "")
				return s
			},
			status:  StatusFinished,
			states:  []string{TaskStateDone, TaskStateDone},
			bars:    [][]bar{{{AttemptDone, 0, 130}}, {{AttemptDone, 1, 100}}},
			wallMS:  130, // never below a time an event showed
			elapsed: 130,
			lanes:   []string{"a:1/0", "b:2/0"},
		},
		{
			name: "delivered again after its end",
			script: func() *script {
				s := newScript(Distributed, 2, 100, 2)
				s.start(0, 1, a0, 1)
				s.finish(0, 1, a0, 101, 100)
				s.start(0, 2, b0, 110) // a redelivery: its end is never stored, the first one counts
				s.start(1, 1, a0, 102)
				s.finish(1, 1, a0, 202, 100)
				s.end(RunFinished, 202, "")
				return s
			},
			status:  StatusFinished,
			states:  []string{TaskStateDone, TaskStateDone},
			bars:    [][]bar{{{AttemptDone, 1, 100}}, {{AttemptDone, 102, 100}}},
			wallMS:  202,
			elapsed: 202,
			lanes:   []string{"a:1/0"},
		},
		{
			name: "at an instant mid-run",
			script: func() *script {
				s := newScript(Concurrent, 3, 3000, 2)
				s.start(0, 1, a0, 10)
				s.start(1, 1, a1, 20)
				s.finish(0, 1, a0, 1000, 990)
				s.start(2, 1, a0, 1600)
				s.finish(1, 1, a1, 3020, 3000)
				s.finish(2, 1, a0, 4600, 3000)
				s.end(RunFinished, 4600, "")
				return s
			},
			at:      1500,
			status:  StatusRunning,
			states:  []string{TaskStateDone, TaskStateRunning, TaskStateQueued},
			bars:    [][]bar{{{AttemptDone, 10, 990}}, {{AttemptRunning, 20, 1480}}, nil}, // not its 3 s delay
			wallMS:  -1,
			elapsed: 1500,
			lanes:   []string{"a:1/0", "a:1/1"},
			check: func(t *testing.T, p *Projection) {
				if p.Run.WallMS != nil || p.Run.Done != 1 || p.Summary.SpeedUp != nil || p.Summary.Running != 1 || p.Summary.Queued != 1 {
					t.Errorf("run %+v, summary %+v: want running, 1 done, 1 running, 1 queued", p.Run, p.Summary)
				}
			},
		},
		{
			name: "live: a running bar ends at now",
			script: func() *script {
				s := newScript(Distributed, 1, 3000, 1)
				s.start(0, 1, a0, 10)
				return s
			},
			now:     1610,
			status:  StatusRunning,
			states:  []string{TaskStateRunning},
			bars:    [][]bar{{{AttemptRunning, 10, 1600}}},
			wallMS:  -1,
			elapsed: 1610,
			lanes:   []string{"a:1/0"},
		},
		{
			name: "live: now behind a worker's clock",
			script: func() *script {
				s := newScript(Distributed, 1, 3000, 1)
				s.start(0, 1, a0, 700)
				return s
			},
			now:     650, // the event is stamped after this server's now: the clock does not go back
			status:  StatusRunning,
			states:  []string{TaskStateRunning},
			bars:    [][]bar{{{AttemptRunning, 700, 0}}},
			wallMS:  -1,
			elapsed: 700,
			lanes:   []string{"a:1/0"},
		},
	}
}

func TestProjection(t *testing.T) {
	for _, tt := range projectionCases() {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.script()
			var p *Projection
			if tt.at > 0 {
				p = ProjectAt(s.r, s.evs, at(tt.at).Time, nil)
			} else {
				p = Project(s.r, s.evs, at(tt.now).Time, nil)
			}
			if p.Run.Status != tt.status || p.Summary.Status != tt.status {
				t.Errorf("status %s (summary %s), want %s", p.Run.Status, p.Summary.Status, tt.status)
			}
			for i, task := range p.Tasks {
				if task.State != tt.states[i] {
					t.Errorf("task %d is %s, want %s", i, task.State, tt.states[i])
				}
				var got []bar
				for _, a := range task.History {
					got = append(got, bar{a.Outcome, round(a.StartMS), round(a.DurMS)})
				}
				if !slices.Equal(got, tt.bars[i]) {
					t.Errorf("task %d attempts %v, want %v", i, got, tt.bars[i])
				}
			}
			switch {
			case tt.wallMS < 0 && p.Run.WallMS != nil:
				t.Errorf("wall %v while running", *p.Run.WallMS)
			case tt.wallMS >= 0 && (p.Run.WallMS == nil || round(*p.Run.WallMS) != tt.wallMS || p.Summary.WallMS != p.Run.WallMS):
				t.Errorf("wall %v (summary %v), want %v", p.Run.WallMS, p.Summary.WallMS, tt.wallMS)
			}
			if round(p.Summary.ElapsedMS) != tt.elapsed {
				t.Errorf("elapsed %v, want %v", p.Summary.ElapsedMS, tt.elapsed)
			}
			if p.Summary.Retries != tt.retries {
				t.Errorf("%d retries, want %d", p.Summary.Retries, tt.retries)
			}
			var lanes []string
			for _, l := range p.Lanes {
				lanes = append(lanes, l.Worker.String())
				for i := 1; i < len(l.Attempts); i++ {
					if l.Attempts[i].StartMS < l.Attempts[i-1].StartMS {
						t.Errorf("lane %s: attempts out of order", l.Worker)
					}
				}
			}
			if !slices.Equal(lanes, tt.lanes) {
				t.Errorf("lanes %v, want %v", lanes, tt.lanes)
			}
			for _, l := range p.Lanes {
				for _, a := range l.Attempts {
					if a.StartMS < 0 || a.StartMS+a.DurMS > p.Summary.ElapsedMS+1e-9 {
						t.Errorf("task %d attempt %d spans %v+%v, outside 0…%v", a.Index, a.Number, a.StartMS, a.DurMS, p.Summary.ElapsedMS)
					}
				}
			}
			if tt.check != nil {
				tt.check(t, p)
			}

			// Events delivered out of order (a caller merging lists) project the same.
			shuffled := slices.Clone(s.evs)
			rand.New(rand.NewPCG(1, uint64(len(tt.name)))).Shuffle(len(shuffled), func(i, j int) {
				shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
			})
			var q *Projection
			if tt.at > 0 {
				q = ProjectAt(s.r, shuffled, at(tt.at).Time, nil)
			} else {
				q = Project(s.r, shuffled, at(tt.now).Time, nil)
			}
			if a, b := describe(p), describe(q); a != b {
				t.Errorf("shuffled events project differently:\n%s\nwant\n%s", b, a)
			}
		})
	}
}

// describe is a projection's states and attempts in one string, to compare two of them.
func describe(p *Projection) string {
	var b strings.Builder
	b.WriteString(p.Run.Status + " " + strconv.FormatFloat(p.Summary.ElapsedMS, 'f', 3, 64) + "\n")
	for _, t := range p.Tasks {
		b.WriteString(t.State)
		for _, a := range t.History {
			b.WriteString(" " + a.Outcome + "@" + strconv.FormatFloat(a.StartMS, 'f', 3, 64) + "+" + strconv.FormatFloat(a.DurMS, 'f', 3, 64))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func round(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// A projection never changes the record it was given.
func TestProjectLeavesTheRecord(t *testing.T) {
	s := newScript(Sequential, 1, 100, 1)
	s.start(0, 1, slot("a", 1, 0), 1)
	s.end(RunCanceled, 50, "canceled by request")
	before := *s.r
	Project(s.r, s.evs, at(60).Time, nil)
	if s.r.Status != before.Status || s.r.WallMS != nil || s.r.Done != 0 {
		t.Errorf("record changed to %+v", s.r)
	}
}

func TestBaselineOf(t *testing.T) {
	wall := 1000.0
	plan := Plan{Mode: Sequential, Tasks: 10, DelayMS: 100, Parallelism: 1, Target: BuiltinTarget}
	run := func(id string, mode Mode, status string, edit func(*Plan)) *Run {
		p := plan
		p.Mode = mode
		if edit != nil {
			edit(&p)
		}
		return &Run{ID: id, Plan: p, Status: status, WallMS: &wall}
	}
	r := run("01JN0000000000000000000005", Distributed, StatusFinished, nil)
	tests := []struct {
		name string
		runs []*Run
		want string
	}{
		{"the latest earlier sequential run", []*Run{
			run("01JN0000000000000000000001", Sequential, StatusFinished, nil),
			run("01JN0000000000000000000003", Sequential, StatusFinished, nil)}, "01JN0000000000000000000003"},
		{"never a later run", []*Run{run("01JN0000000000000000000009", Sequential, StatusFinished, nil)}, ""},
		{"never itself", []*Run{run(r.ID, Sequential, StatusFinished, nil)}, ""},
		{"only finished", []*Run{run("01JN0000000000000000000002", Sequential, StatusCanceled, nil)}, ""},
		{"only sequential", []*Run{run("01JN0000000000000000000002", Concurrent, StatusFinished, nil)}, ""},
		{"only the same work", []*Run{
			run("01JN0000000000000000000001", Sequential, StatusFinished, func(p *Plan) { p.DelayMS = 50 }),
			run("01JN0000000000000000000002", Sequential, StatusFinished, func(p *Plan) { p.FailureRate = 0.3 }),
			run("01JN0000000000000000000003", Sequential, StatusFinished, func(p *Plan) { p.Target = "http://a.test" })}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if b := BaselineOf(r, tt.runs); b != nil {
				got = b.ID
			}
			if got != tt.want {
				t.Errorf("baseline %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	for typ, want := range map[string]string{RunFinished: StatusFinished, RunCanceled: StatusCanceled,
		RunInterrupted: StatusInterrupted, TaskFinished: ""} {
		if got := StatusOf(typ); got != want {
			t.Errorf("StatusOf(%s) = %q, want %q", typ, got, want)
		}
	}
}

// BenchmarkProject projects a finished run of 10,000 tasks on 10 slots, as a run page, the
// API and the CLI do once per request (figures in docs/benchmarks.md):
//
//	go test ./app -run '^$' -bench Project -benchtime 2s
func BenchmarkProject(b *testing.B) {
	const tasks, slots = 10_000, 10
	s := newScript(Distributed, tasks, 50, slots)
	for i := range tasks {
		w := slot("a", 1, i%slots)
		start := float64(i/slots) * 50
		s.start(i, 1, w, start+1)
		s.finish(i, 1, w, start+50, 49)
	}
	s.end(RunFinished, float64(tasks/slots)*50, "")
	b.ReportAllocs()
	for b.Loop() {
		Project(s.r, s.evs, time.Now(), nil)
	}
}

func TestLatestOfEachMode(t *testing.T) {
	wall := 100.0
	plan := Plan{Tasks: 10, DelayMS: 100, Target: BuiltinTarget}
	run := func(id string, mode Mode, status string, tasks int) *Run {
		p := plan
		p.Mode, p.Tasks = mode, tasks
		return &Run{ID: id, Plan: p, Status: status, WallMS: &wall}
	}
	runs := []*Run{
		run("01JN0000000000000000000009", Distributed, StatusFinished, 5000), // other work
		run("01JN0000000000000000000008", Sequential, StatusCanceled, 10),    // not finished
		run("01JN0000000000000000000007", Distributed, StatusFinished, 10),
		run("01JN0000000000000000000005", Distributed, StatusFinished, 10),
		run("01JN0000000000000000000004", Sequential, StatusFinished, 10),
	}
	var got []string
	for _, r := range LatestOfEachMode(runs, plan) {
		got = append(got, string(r.Mode)+" "+r.ID[len(r.ID)-1:])
	}
	if want := []string{"sequential 4", "distributed 7"}; !slices.Equal(got, want) {
		t.Errorf("latest of each mode %v, want %v", got, want)
	}
}

// A run's tasks are queued by one tasks.queued event; runs recorded before it have one
// task.queued per task, and read the same.
func TestQueuedEvents(t *testing.T) {
	old := newScript(Distributed, 3, 100, 3) // one task.queued per task, at 0.1 ms
	batched := &script{r: old.r}
	batched.add(&Event{Type: RunCreated, Mode: Distributed, Tasks: 3, DelayMS: 100, Parallelism: 3}, 0)
	batched.add(&Event{Type: TasksQueued, Tasks: 3}, 0.1)
	for _, s := range []*script{old, batched} {
		s.start(1, 1, slot("a", 1, 0), 1)
		s.finish(1, 1, slot("a", 1, 0), 101, 100)
	}
	// A tasks.queued that says more tasks than the run has, or fewer, is read within bounds.
	odd := &script{r: old.r}
	odd.add(&Event{Type: RunCreated}, 0)
	odd.add(&Event{Type: TasksQueued, Tasks: 99}, 0.1)
	for name, s := range map[string]*script{"task.queued": old, "tasks.queued": batched, "tasks.queued of 99": odd} {
		p := Project(s.r, s.evs, at(50).Time, nil)
		for i, task := range p.Tasks {
			if !task.QueuedAt.Equal(at(0.1).Time) {
				t.Errorf("%s: task %d queued at %v, want %v", name, i, task.QueuedAt, at(0.1))
			}
		}
		if s != odd && (p.Tasks[1].State != TaskStateDone || p.Tasks[0].State != TaskStateQueued || p.Summary.Queued != 2) {
			t.Errorf("%s: states %s %s, %d queued", name, p.Tasks[0].State, p.Tasks[1].State, p.Summary.Queued)
		}
	}
	none := &script{r: old.r}
	none.add(&Event{Type: TasksQueued, Tasks: -1}, 0.1)
	if p := Project(none.r, none.evs, at(50).Time, nil); !p.Tasks[0].QueuedAt.IsZero() {
		t.Errorf("tasks.queued of -1 tasks queued task 0 at %v", p.Tasks[0].QueuedAt)
	}
}
