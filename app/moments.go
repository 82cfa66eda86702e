package app

import (
	"slices"
)

// Moment is a run's summary from an instant on (in milliseconds since the run was
// created) until the next moment: what ProjectAt gives of its status and counts then.
type Moment struct {
	AtMS    float64
	Summary Summary
	Procs   []ProcessTally // how many tasks each worker process had taken by then
}

// Moments are the summaries a run's projection goes through before its end, in time order:
// one from the run's creation, then one at each event that changed its counts or its tally
// of tasks by worker process. ProjectAt(t) for t before the end has the counts and the
// tally of the latest moment at or before t.
// A replay shows them; the end itself is the run's projection, which its page shows.
func Moments(r *Run, events []*Event) []Moment {
	// ProjectAt takes in the events that happened by an instant, whatever their order in
	// the stream (workers' clocks differ): fold them in time order, stream order for ties.
	evs := slices.Clone(inStreamOrder(events))
	slices.SortStableFunc(evs, func(a, b *Event) int { return a.At.Compare(b.At.Time) })
	live := NewLive(r)
	created := live.p.Created
	for _, e := range evs {
		if e.Type == RunCreated && !e.At.IsZero() {
			created = e.At
			break
		}
	}
	out := []Moment{{0, live.Summary(), live.Processes()}}
	for _, e := range evs {
		if e.Terminal() {
			break
		}
		c := live.take(e) // in time order, not stream order
		s := live.Summary()
		ms := max(0, float64(e.At.Sub(created.Time).Microseconds())/1000)
		last := &out[len(out)-1]
		if sameCounts(last.Summary, s) && !c.Procs {
			continue
		}
		m := Moment{ms, s, last.Procs}
		if c.Procs {
			m.Procs = live.Processes()
		}
		if ms <= last.AtMS {
			*last = Moment{last.AtMS, m.Summary, m.Procs} // the same instant: the latest counts stand
			continue
		}
		out = append(out, m)
	}
	return out
}

// sameCounts reports whether two summaries count the same tasks in each state.
func sameCounts(a, b Summary) bool {
	key := func(s Summary) [8]int {
		return [8]int{s.Queued, s.Running, s.Retrying, s.Done, s.Failed, s.Canceled, s.Retries, s.FailedAttempts}
	}
	return key(a) == key(b)
}
