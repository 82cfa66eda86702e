package live

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/taskrace/taskrace/live/taskstate"
)

// Process is what the facts held tell of one worker process (host and pid): the attempts it
// ran, how they ended, what it runs now, and how many of its slots were busy, minute by minute.
type Process struct {
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Processed int64     `json:"processed" doc:"Attempts that ended"`
	Succeeded int64     `json:"succeeded" doc:"Attempts that succeeded"`
	Failed    int64     `json:"failed" doc:"Attempts that failed with no retry left (or none allowed)"`
	Retried   int64     `json:"retried" doc:"Failed attempts after which asynq tries the task again"`
	FirstAt   time.Time `json:"first_at" doc:"The start of the earliest attempt held"`
	LastAt    time.Time `json:"last_at" doc:"The latest start or end held"`
	Running   []Task    `json:"running" doc:"Tasks whose latest attempt runs on it now, longest first"`
	Busy      []float64 `json:"busy" doc:"Mean busy slots of each of the last minutes, oldest first (the last is the current minute, so far)"`
}

// Name is host:pid.
func (p *Process) Name() string { return p.Host + ":" + strconv.Itoa(p.PID) }

// Processes tells, for every worker process that ran an attempt the reader holds, its
// counts since the earliest attempt held, its running tasks, and its busy slots over the
// last minutes up to now.
func (r *Reader) Processes(ctx context.Context, minutes int, now time.Time) ([]*Process, error) {
	if err := r.await(ctx); err != nil {
		return nil, err
	}
	minutes = min(max(minutes, 1), 60)
	end := now.Truncate(time.Minute).Add(time.Minute)
	start := end.Add(-time.Duration(minutes) * time.Minute)
	type key struct {
		host string
		pid  int
	}
	by := map[key]*Process{}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, t := range r.ix.tasks {
		if t.flags&gone != 0 {
			continue
		}
		for i := range t.History {
			a := &t.History[i]
			if a.Worker.Host == "" {
				continue
			}
			k := key{a.Worker.Host, a.Worker.PID}
			p := by[k]
			if p == nil {
				p = &Process{Host: a.Worker.Host, PID: a.Worker.PID, Busy: make([]float64, minutes)}
				by[k] = p
			}
			if p.FirstAt.IsZero() || a.StartedAt.Before(p.FirstAt) {
				p.FirstAt = a.StartedAt
			}
			last := a.EndedAt
			if last.IsZero() {
				last = a.StartedAt
			}
			if last.After(p.LastAt) {
				p.LastAt = last
			}
			switch a.Outcome {
			case taskstate.AttemptDone:
				p.Processed++
				p.Succeeded++
			case taskstate.AttemptFailed:
				p.Processed++
				if a.Retry {
					p.Retried++
				} else {
					p.Failed++
				}
			case taskstate.AttemptCanceled:
				p.Processed++
			case taskstate.AttemptRunning:
				if i == len(t.History)-1 {
					p.Running = append(p.Running, t.public(false))
				}
			}
			// Busy time: the attempt's span within each minute of the window.
			to := a.EndedAt
			if a.Outcome == taskstate.AttemptRunning {
				to = now
			}
			if to.IsZero() || !to.After(start) || !a.StartedAt.Before(end) {
				continue
			}
			from := a.StartedAt
			if from.Before(start) {
				from = start
			}
			for m := int(from.Sub(start) / time.Minute); m < minutes; m++ {
				ms, me := start.Add(time.Duration(m)*time.Minute), start.Add(time.Duration(m+1)*time.Minute)
				if !to.After(ms) {
					break
				}
				lo, hi := from, to
				if ms.After(lo) {
					lo = ms
				}
				if me.Before(hi) {
					hi = me
				}
				p.Busy[m] += float64(hi.Sub(lo)) / float64(time.Minute)
			}
		}
	}
	out := make([]*Process, 0, len(by))
	for _, p := range by {
		slices.SortFunc(p.Running, func(a, b Task) int { return a.LatestAt.Compare(b.LatestAt) })
		// The current minute so far: its busy time over the part of it that has passed.
		if part := now.Sub(end.Add(-time.Minute)); part > 0 && part < time.Minute {
			p.Busy[minutes-1] *= float64(time.Minute) / float64(part)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Process) int {
		if c := cmp.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return cmp.Compare(a.PID, b.PID)
	})
	return out, nil
}
