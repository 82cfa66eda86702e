package app_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskrace/taskrace/app"
)

func TestMarkOrphans(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutWorker())
	ctx := t.Context()
	live := e.core.Worker(0)
	gone := app.Worker{Host: "lost", PID: 42, Slot: 1, Proc: "01NOSUCHPROCESS"}
	lease := time.Now().Add(20 * time.Second).Truncate(time.Second).UTC()

	project := func(mode app.Mode, end string) *app.Projection {
		r := &app.Run{ID: app.NewRunID(), Plan: app.Plan{Mode: mode, Tasks: 4}, Status: app.StatusRunning, CreatedAt: app.Now()}
		at := r.CreatedAt
		ev := func(typ string, i int, w app.Worker) *app.Event {
			at = app.Time{Time: at.Add(time.Millisecond)}
			return &app.Event{Type: typ, RunID: r.ID, Index: &i, Worker: &w, Attempt: 1, At: at}
		}
		evs := []*app.Event{
			ev(app.TaskStarted, 0, live),
			ev(app.TaskStarted, 1, gone), // leased: asynq retries it later
			ev(app.TaskStarted, 2, gone), // no lease: already requeued
			ev(app.TaskStarted, 3, gone), ev(app.TaskFinished, 3, gone),
		}
		if end != "" {
			evs = append(evs, &app.Event{Type: end, RunID: r.ID, At: at})
		}
		return app.Project(r, evs, time.Now(), nil)
	}

	tl := project(app.Distributed, "")
	// asynq's lease set lives in the core's database: write it through the core's client.
	if err := e.core.Redis.Client.ZAdd(ctx, "asynq:{"+e.core.Config.Queue+"}:lease",
		redis.Z{Score: float64(lease.Unix()), Member: tl.Tasks[1].ID}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.core.MarkOrphans(ctx, tl); err != nil {
		t.Fatal(err)
	}
	if o := tl.Tasks[0].Orphaned; o != nil {
		t.Errorf("task on a live process marked orphaned: %+v", o)
	}
	o := tl.Tasks[1].Orphaned
	if o == nil || o.Worker != "lost:42" || o.Requeued || o.LeaseExpiresAt == nil ||
		!o.LeaseExpiresAt.Equal(lease) || !o.RetryAfter.Equal(lease.Add(30*time.Second)) ||
		!o.RetryBy.Equal(lease.Add(90*time.Second)) {
		t.Errorf("leased orphan: %+v, want lease %s, retry between +30 s and +90 s", o, lease)
	}
	if o := tl.Tasks[2].Orphaned; o == nil || !o.Requeued || o.RetryAfter != nil {
		t.Errorf("orphan without a lease: %+v, want requeued", o)
	}
	if o := tl.Tasks[3].Orphaned; o != nil {
		t.Errorf("a done task marked orphaned: %+v", o)
	}

	for _, tl := range []*app.Projection{project(app.Distributed, app.RunCanceled), project(app.Concurrent, "")} {
		if err := e.core.MarkOrphans(ctx, tl); err != nil {
			t.Fatal(err)
		}
		for _, task := range tl.Tasks {
			if task.Orphaned != nil {
				t.Errorf("%s %s run: task %d marked orphaned", tl.Run.Mode, tl.Run.Status, task.Index)
			}
		}
	}
}
