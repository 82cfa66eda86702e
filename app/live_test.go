package app

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// summaryLine is a summary in one comparable string.
func summaryLine(s Summary) string {
	f := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprintf("%.3f", *p)
	}
	return fmt.Sprintf("%s elapsed=%.3f wall=%s eff=%s q=%d r=%d rt=%d d=%d f=%d c=%d retries=%d failed=%d",
		s.Status, s.ElapsedMS, f(s.WallMS), f(s.Efficiency), s.Queued, s.Running, s.Retrying, s.Done, s.Failed,
		s.Canceled, s.Retries, s.FailedAttempts)
}

// After every event, a live projection holds what projecting the events so far holds,
// and says which tasks and lanes the event changed.
func TestLiveMatchesProject(t *testing.T) {
	for _, tt := range projectionCases() {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.script()
			l := NewLive(s.r)
			prevSum, prevProcs := l.Summary(), fmt.Sprint(l.Processes())
			for k, e := range s.evs {
				before := tasksPart(describe(l.Projection()))
				c := l.Add(e)
				want := Project(s.r, s.evs[:k+1], time.Time{}, nil)
				got := l.Projection()
				if a, b := describe(got), describe(want); a != b {
					t.Fatalf("after event %d (%s), live:\n%s\nprojected:\n%s", k, e.Type, a, b)
				}
				if a, b := summaryLine(l.Summary()), summaryLine(want.Summary); a != b {
					t.Fatalf("after event %d (%s), live summary %s, projected %s", k, e.Type, a, b)
				}
				if a, b := l.Processes(), want.Processes(); !slices.Equal(a, b) {
					t.Fatalf("after event %d, live processes %v, projected %v", k, a, b)
				}
				if l.Run().Status != want.Run.Status || l.Ended() != want.Ended {
					t.Fatalf("after event %d, live run %s, projected %s", k, l.Run().Status, want.Run.Status)
				}
				// Every task whose state or attempts changed is in the change.
				changed := map[int]bool{}
				for _, task := range c.Tasks {
					changed[task.Index] = true
				}
				after := tasksPart(describe(got))
				if before != after && len(c.Tasks) == 0 && e.Type != RunCreated && !e.Terminal() {
					t.Errorf("event %d (%s) changed the projection but reports no task", k, e.Type)
				}
				if e.Terminal() {
					for _, task := range want.Tasks {
						if task.State == TaskStateCanceled && !changed[task.Index] {
							t.Errorf("the end canceled task %d but does not report it", task.Index)
						}
					}
				}
				// The counts and the tally are reported changed when they did.
				if (len(c.Tasks) > 0 || c.Ended) && summaryLine(c.Before) != summaryLine(prevSum) {
					t.Errorf("event %d (%s): the summary before it was %s, reported %s", k, e.Type, summaryLine(prevSum), summaryLine(c.Before))
				}
				if procs := fmt.Sprint(l.Processes()); !e.Terminal() && c.Procs != (procs != prevProcs) {
					t.Errorf("event %d (%s): the tally went from %s to %s, reported changed %v", k, e.Type, prevProcs, procs, c.Procs)
				}
				prevSum, prevProcs = l.Summary(), fmt.Sprint(l.Processes())
				// A new lane is reported once, before the lane that follows it.
				if c.Lane != nil {
					var order []string
					for _, ln := range want.Lanes {
						order = append(order, ln.Worker.String())
					}
					i := slices.Index(order, c.Lane.String())
					switch {
					case i < 0:
						t.Errorf("event %d opened lane %s, not among %v", k, c.Lane, order)
					case c.Next == nil && i != len(order)-1, c.Next != nil && (i+1 >= len(order) || order[i+1] != c.Next.String()):
						t.Errorf("event %d opened lane %s before %v; lanes %v", k, c.Lane, c.Next, order)
					}
				}
			}
			// Events taken in again change nothing.
			if c := l.Add(s.evs[len(s.evs)-1]); len(c.Tasks) != 0 || c.Lane != nil {
				t.Errorf("an event taken in twice changed %+v", c)
			}
		})
	}
}

// tasksPart is a description without its first line, the run's.
func tasksPart(d string) string { return d[strings.IndexByte(d, '\n')+1:] }

// stateAt is the state steps give at instant ms.
func stateAt(steps []Step, ms float64) string {
	state := ""
	for _, s := range steps {
		if s.AtMS <= ms {
			state = s.State
		}
	}
	return state
}

// A task's steps give, at every instant, the state the projection at that instant gives.
func TestStepsAreTheProjectionAtEachInstant(t *testing.T) {
	for _, tt := range projectionCases() {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.script()
			p := Project(s.r, s.evs, time.Time{}, nil)
			var instants []float64
			for _, e := range s.evs {
				ms := p.sinceMS(e.At)
				instants = append(instants, ms, ms+0.5)
			}
			for _, ms := range instants {
				// Before the run's creation there is nothing to show; between an end stamped
				// early and an event a worker stamped later (clocks that disagree), the
				// projection at the instant has the run ended before its last task did.
				if ms < 0 || (p.end != nil && ms >= p.sinceMS(p.end.At) && ms < p.sinceMS(p.At)) {
					continue
				}
				q := ProjectAt(s.r, s.evs, at(ms).Time, nil)
				for i, task := range p.Tasks {
					if got, want := stateAt(p.Steps(task), ms), q.Tasks[i].State; got != want {
						t.Errorf("task %d at %.1f ms: steps %v say %s, the projection %s", i, ms, p.Steps(task), got, want)
					}
				}
			}
		})
	}
}

// BenchmarkLive follows a run of 10,000 tasks on 10 slots event by event, as the HTML
// stream does once per run (figures in docs/benchmarks.md):
//
//	go test ./app -run '^$' -bench Live -benchtime 20x
func BenchmarkLive(b *testing.B) {
	const tasks, slots = 10_000, 10
	s := newScript(Distributed, tasks, 50, slots)
	for i := range tasks {
		w := slot("a", 1+i%2, i%slots)
		start := float64(i/slots) * 50
		s.start(i, 1, w, start+1)
		s.finish(i, 1, w, start+50, 49)
	}
	s.end(RunFinished, float64(tasks/slots)*50, "")
	b.ReportAllocs()
	for b.Loop() {
		l := NewLive(s.r)
		for _, e := range s.evs {
			l.Add(e)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(s.evs)), "ns/event")
}

// BenchmarkSnapshot copies a followed 10,000-task run as of now, as a read of a kept
// projection does (figures in docs/benchmarks.md):
//
//	go test ./app -run '^$' -bench Snapshot -benchtime 200x
func BenchmarkSnapshot(b *testing.B) {
	const tasks, slots = 10_000, 10
	s := newScript(Distributed, tasks, 50, slots)
	for i := range tasks {
		w := slot("a", 1+i%2, i%slots)
		start := float64(i/slots) * 50
		s.start(i, 1, w, start+1)
		s.finish(i, 1, w, start+50, 49)
	}
	l := NewLive(s.r)
	for _, e := range s.evs {
		l.Add(e)
	}
	b.ReportAllocs()
	for b.Loop() {
		l.Snapshot(s.r, time.Now())
	}
}
