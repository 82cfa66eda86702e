package app

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// A run's moments give, at every instant before its end, the counts the projection at that
// instant gives, and the status running.
func TestMomentsAreTheProjectionAtEachInstant(t *testing.T) {
	for _, tt := range projectionCases() {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.script()
			p := Project(s.r, s.evs, time.Time{}, nil)
			ms := Moments(s.r, s.evs)
			if first := ProjectAt(s.r, s.evs, t0, nil).Summary; len(ms) == 0 || ms[0].AtMS != 0 || !sameCounts(ms[0].Summary, first) {
				t.Fatalf("the first moment is %+v: want the projection at 0, %+v", ms[0], first)
			}
			for i := 1; i < len(ms); i++ {
				if ms[i].AtMS <= ms[i-1].AtMS {
					t.Errorf("moment %d at %.1f ms is not after moment %d at %.1f ms", i, ms[i].AtMS, i-1, ms[i-1].AtMS)
				}
			}
			var instants []float64
			for _, e := range s.evs {
				at := p.sinceMS(e.At)
				instants = append(instants, at-0.5, at, at+0.5)
			}
			slices.Sort(instants)
			for _, at := range instants {
				if at < 0 || (p.end != nil && at >= p.sinceMS(p.end.At)) {
					continue
				}
				var m Moment
				for _, x := range ms {
					if x.AtMS <= at {
						m = x
					}
				}
				qp := ProjectAt(s.r, s.evs, t0.Add(time.Duration(at*float64(time.Millisecond))), nil)
				q := qp.Summary
				if !sameCounts(m.Summary, q) || m.Summary.Status != StatusRunning || q.Status != StatusRunning {
					t.Errorf("at %.1f ms the moment says %+v, the projection %+v", at, m.Summary, q)
				}
				if got, want := tallies(m.Procs), tallies(qp.Processes()); got != want {
					t.Errorf("at %.1f ms the moment's tally is %s, the projection's %s", at, got, want)
				}
			}
			// Every change of counts before the end is a moment.
			wantChanges := 0
			prev := ProjectAt(s.r, s.evs, t0, nil).Summary
			for _, at := range instants {
				if at < 0 || (p.end != nil && at >= p.sinceMS(p.end.At)) {
					continue
				}
				q := ProjectAt(s.r, s.evs, t0.Add(time.Duration(at*float64(time.Millisecond))), nil).Summary
				if !sameCounts(prev, q) {
					wantChanges++
				}
				prev = q
			}
			if len(ms)-1 < wantChanges {
				t.Errorf("%d moments after the first, but the counts change %d times", len(ms)-1, wantChanges)
			}
		})
	}
}

// BenchmarkMoments computes the moments of a finished 10,000-task run on 10 slots, as a
// replay's start asks for them (figures in docs/benchmarks.md).
func BenchmarkMoments(b *testing.B) {
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
		Moments(s.r, s.evs)
	}
}

// tallies is a tally of tasks by worker process in words, without the lost flag (which
// heartbeats decide, not events).
func tallies(ps []ProcessTally) string {
	var b strings.Builder
	for _, p := range ps {
		if p.Tasks > 0 {
			fmt.Fprintf(&b, "%s:%d ", p.Process, p.Tasks)
		}
	}
	return b.String()
}
