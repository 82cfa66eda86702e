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

	timeline := func(mode app.Mode, status string) *app.Timeline {
		r := &app.Run{ID: app.NewRunID(), Plan: app.Plan{Mode: mode, Tasks: 4}, Status: status}
		tasks := []*app.Task{
			{Index: 0, State: app.TaskStateRunning, Worker: &live},
			{Index: 1, State: app.TaskStateRunning, Worker: &gone}, // leased: asynq retries it later
			{Index: 2, State: app.TaskStateRunning, Worker: &gone}, // no lease: already requeued
			{Index: 3, State: app.TaskStateDone, Worker: &gone},
		}
		for _, task := range tasks {
			task.ID = app.TaskID(r.ID, task.Index)
		}
		return &app.Timeline{Run: r, Tasks: tasks}
	}

	tl := timeline(app.Distributed, app.StatusRunning)
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

	for _, tl := range []*app.Timeline{timeline(app.Distributed, app.StatusFinished), timeline(app.Concurrent, app.StatusRunning)} {
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
