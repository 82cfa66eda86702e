package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
)

// projectionText is everything a view can read of a projection, as one comparable text:
// its JSON (run, summary, instant, tasks with their attempts) and its lanes.
func projectionText(t *testing.T, p *app.Projection) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var lanes strings.Builder
	for _, l := range p.Lanes {
		fmt.Fprintf(&lanes, "\n%s:", l.Worker)
		for _, a := range l.Attempts {
			fmt.Fprintf(&lanes, " %d.%d", a.Index, a.Number)
		}
	}
	return string(b) + lanes.String() + fmt.Sprintf("\nended %v created %s", p.Ended, p.Created)
}

// upTo is the events up to and including the one with ID last.
func upTo(evs []*app.Event, last string) []*app.Event {
	for i, e := range evs {
		if app.CompareIDs(e.ID, last) > 0 {
			return evs[:i]
		}
	}
	return evs
}

// At every read while a run goes on (retries, a cancel) and after it, the projection kept
// between reads is what projecting all its events afresh gives; what a read returns is the
// caller's; a deleted run leaves the kept projections.
func TestKeptProjectionIsAFreshProjection(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		plan   app.Plan
		cancel int // cancel the run once this many events have been seen (0: never)
	}{
		{"distributed, with retries", app.Plan{Mode: app.Distributed, Tasks: 40, DelayMS: 20, FailureRate: 0.3}, 0},
		{"concurrent, canceled", app.Plan{Mode: app.Concurrent, Tasks: 60, DelayMS: 30, Parallelism: 4}, 25},
		{"sequential", app.Plan{Mode: app.Sequential, Tasks: 5, DelayMS: 10}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			r, err := e.core.Launcher.Launch(ctx, tt.plan)
			if err != nil {
				t.Fatal(err)
			}
			reads := 0
			check := func() *app.Projection {
				t.Helper()
				rec := e.get(t, r.ID)
				now := time.Now()
				got, last, err := e.core.Projections.Read(ctx, rec, now)
				if err != nil {
					t.Fatal(err)
				}
				all, err := e.core.Log.ReadAll(ctx, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				evs := upTo(all, last)
				if len(evs) == 0 || evs[len(evs)-1].ID != last {
					t.Fatalf("read %d: the kept projection is at %q, which is not an event of the run", reads, last)
				}
				want := app.Project(rec, evs, now, nil)
				if a, b := projectionText(t, got), projectionText(t, want); a != b {
					t.Fatalf("read %d (%d events): kept\n%s\nfresh\n%s", reads, len(evs), a, b)
				}
				reads++
				return got
			}
			sub := e.core.Feed.Subscribe(r.ID, "")
			defer sub.Close()
			seen, ended := 0, false
			for !ended {
				evs, err := sub.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range evs {
					seen++
					ended = ended || ev.Terminal()
					if seen == tt.cancel {
						if _, err := e.core.Launcher.Cancel(ctx, r.ID); err != nil {
							t.Fatal(err)
						}
					}
				}
				if len(evs) > 0 {
					check()
					continue
				}
				select {
				case <-sub.Ready():
				case <-ctx.Done():
					t.Fatalf("the run did not end: %d events seen", seen)
				}
			}
			p := check()
			if !p.Ended || reads < 3 {
				t.Fatalf("%d reads, ended %v: the run was not read while it went on", reads, p.Ended)
			}
			if tt.cancel > 0 && p.Run.Status != app.StatusCanceled {
				t.Errorf("status %s, want canceled", p.Run.Status)
			}
			if tt.plan.FailureRate > 0 && p.Summary.Retries == 0 {
				t.Errorf("no retries in %+v", p.Summary)
			}

			// A read's projection is the caller's: changing it changes no other read.
			p.Tasks[0].State, p.Tasks[0].History[0].DurMS, p.Run.Status = "scribbled", -1, "scribbled"
			check()

			if runs, _ := e.core.Projections.Held(); runs != 1 {
				t.Errorf("%d runs kept, want this one", runs)
			}
			if err := e.core.Runs.Delete(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			if _, _, err := e.core.ReadRun(ctx, r.ID, time.Now()); app.ErrorCode(err) != app.ENotFound {
				t.Fatalf("reading a deleted run: %v, want not found", err)
			}
			if runs, tasks := e.core.Projections.Held(); runs != 0 || tasks != 0 {
				t.Errorf("%d runs of %d tasks kept after the run was deleted, want none", runs, tasks)
			}
		})
	}
}

// Readers of one run at once, while it goes on, each get a whole projection that never goes
// back, and the last are the finished run. The readers come in waves, one with each batch of
// events: the test's Redis is shared with the package's other tests.
func TestKeptProjectionUnderConcurrentReads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutWorker())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r, err := e.core.Launcher.Launch(ctx, app.Plan{Mode: app.Concurrent, Tasks: 300, DelayMS: 5, Parallelism: 10})
	if err != nil {
		t.Fatal(err)
	}
	const readers = 8
	ended, last := make([]int, readers), make([]string, readers)
	wave := func() (finished int) {
		errs := make(chan error, readers)
		for i := range readers {
			go func() {
				p, id, err := e.core.ReadRun(ctx, r.ID, time.Now())
				if err != nil {
					errs <- err
					return
				}
				done := p.Summary.Done + p.Summary.Failed
				switch {
				case done < ended[i] || app.CompareIDs(id, last[i]) < 0:
					err = fmt.Errorf("a read went back: %d tasks ended at %s, after %d at %s", done, id, ended[i], last[i])
				case len(p.Tasks) != 300:
					err = fmt.Errorf("a read has %d tasks", len(p.Tasks))
				case p.Ended && (p.Run.Status != app.StatusFinished || done != 300):
					err = fmt.Errorf("the run ended %s with %d tasks ended", p.Run.Status, done)
				}
				ended[i], last[i] = done, id
				errs <- err
			}()
		}
		for range readers {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		for i := range readers {
			if ended[i] == 300 {
				finished++
			}
		}
		return finished
	}
	sub := e.core.Feed.Subscribe(r.ID, "")
	defer sub.Close()
	waves := 0
	for done := false; !done; {
		evs, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			done = done || ev.Terminal()
		}
		if len(evs) > 0 {
			wave()
			waves++
			continue
		}
		select {
		case <-sub.Ready():
		case <-ctx.Done():
			t.Fatal("the run did not end")
		}
	}
	if n := wave(); n != readers || waves < 2 {
		t.Errorf("%d of %d readers saw the run finished after %d waves", n, readers, waves+1)
	}
}
