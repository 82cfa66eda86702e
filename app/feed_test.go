package app_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/taskrace/taskrace/app"
)

// next waits for the subscription's next events, for up to within.
func next(ctx context.Context, s *app.Subscription, within time.Duration) ([]*app.Event, error) {
	deadline := time.After(within)
	for {
		evs, err := s.Next(ctx)
		if err != nil || len(evs) > 0 {
			return evs, err
		}
		select {
		case <-s.Ready():
		case <-deadline:
			return nil, fmt.Errorf("no event within %s", within)
		}
	}
}

// drainTo reads the subscription up to its terminal event.
func drainTo(ctx context.Context, s *app.Subscription, got *[]*app.Event, each func()) error {
	for len(*got) == 0 || !(*got)[len(*got)-1].Terminal() {
		evs, err := next(ctx, s, 30*time.Second)
		if err != nil {
			return fmt.Errorf("after %d events: %w", len(*got), err)
		}
		for _, ev := range evs {
			*got = append(*got, ev)
			if each != nil {
				each()
			}
		}
	}
	return nil
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

// TestFeedSubscribersMissNothing follows a busy run with subscribers that join at different
// moments and one that reads nothing until the run has ended: the feed drops that one
// rather than wait for it, and each, the dropped one included, gets every event of the log
// once, in order.
func TestFeedSubscribersMissNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *app.Config) { c.Limits.MaxParallelism = 64 }))
	const tasks = 1800 // 3,603 events: several reads of the loop, more than a subscription may queue
	r, err := e.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Concurrent, Tasks: tasks, DelayMS: 0, Parallelism: 32})
	if err != nil {
		t.Fatal(err)
	}
	dropped := e.core.Metrics.ViewersDropped.WithLabelValues("behind")
	before := counterValue(dropped)
	lazy := e.core.Feed.Subscribe(r.ID, "")
	defer lazy.Close()

	// The first subscriber starts the others as it goes, one every 400 events.
	got := make([][]*app.Event, 9)
	var wg sync.WaitGroup
	var follow func(i int)
	follow = func(i int) {
		defer wg.Done()
		s := e.core.Feed.Subscribe(r.ID, "")
		defer s.Close()
		var each func()
		if i == 0 {
			each = func() {
				if k := len(got[0]) / 400; len(got[0])%400 == 0 && k < len(got)-1 {
					wg.Add(1)
					go follow(k)
				}
			}
		}
		if err := drainTo(t.Context(), s, &got[i], each); err != nil {
			t.Errorf("subscriber %d: %v", i, err)
		}
	}
	wg.Add(1)
	follow(0)
	wg.Wait()
	if err := drainTo(t.Context(), lazy, &got[len(got)-1], nil); err != nil {
		t.Fatalf("the lazy subscriber: %v", err)
	}

	all, err := e.core.Log.ReadAll(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, all, tasks)
	for i, evs := range got {
		if len(evs) != len(all) {
			t.Errorf("subscriber %d got %d events, the log has %d", i, len(evs), len(all))
			continue
		}
		for j := range all {
			if evs[j].ID != all[j].ID {
				t.Errorf("subscriber %d: event %d is %s, the log's is %s", i, j, evs[j].ID, all[j].ID)
				break
			}
		}
	}
	if n := counterValue(dropped) - before; n < 1 {
		t.Errorf("the subscriber that read nothing was never dropped from the fan-out (%v drops)", n)
	}
	if n := e.core.Feed.Subscribers(); n != 1 {
		t.Errorf("Subscribers() = %d with only the lazy one open", n)
	}
}

// TestFeedEndsARunWhoseDataVanished deletes a running run's keys, as a Redis restarted
// without persistence would: its subscribers get run.interrupted saying so, not silence.
func TestFeedEndsARunWhoseDataVanished(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutWorker())
	r, err := e.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Sequential, Tasks: 2, DelayMS: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	s := e.core.Feed.Subscribe(r.ID, "")
	defer s.Close()
	if evs, err := next(t.Context(), s, 10*time.Second); err != nil || evs[0].Type != app.RunCreated {
		t.Fatalf("first events %v, %v", evs, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	rdb := e.core.Redis.Client
	keys, err := rdb.Keys(ctx, "taskrace:run:"+r.ID+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys of the run: %v %v", keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	var evs []*app.Event
	if err := drainTo(t.Context(), s, &evs, nil); err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Type != app.RunInterrupted || last.Reason != app.ReasonGone || last.RunID != r.ID || last.ID != "" {
		t.Errorf("last event = %s", last.JSON())
	}
	if evs, err := s.Next(t.Context()); err != nil || len(evs) != 0 {
		t.Errorf("Next after the end = %v, %v", evs, err)
	}
}

// countXRange counts the XRANGE commands a client sends.
type countXRange struct{ n atomic.Int64 }

func (c *countXRange) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *countXRange) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "xrange" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *countXRange) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestFeedCatchUpsShareTheirReads: subscribers that replay a run from its start together
// read each page of its log from Redis once between them, and each gets all of it.
func TestFeedCatchUpsShareTheirReads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *app.Config) { c.Limits.MaxParallelism = 64 }))
	const tasks = 1000 // 3,001 events: 12 pages
	r, all := e.launchAndWatch(t, app.Plan{Mode: app.Concurrent, Tasks: tasks, DelayMS: 0, Parallelism: 32})
	var reads countXRange
	e.core.Redis.Client.AddHook(&reads)
	const subscribers = 20
	got := make([][]*app.Event, subscribers)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			s := e.core.Feed.Subscribe(r.ID, "")
			defer s.Close()
			if err := drainTo(t.Context(), s, &got[i], nil); err != nil {
				t.Errorf("subscriber %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) != len(all) {
			t.Errorf("subscriber %d got %d events of %d", i, len(got[i]), len(all))
		}
	}
	pages := int64(len(all)/256 + 1)
	if n := reads.n.Load(); n >= subscribers*pages/2 {
		t.Errorf("%d subscribers read %d pages from Redis; alone, each reads %d", subscribers, n, pages)
	}
}

// TestFeedCrowdJoiningARunningRun: a crowd subscribes from the start while the run is
// appending and its log is shorter than a page, one or two more with every event, so their
// reads of the log meet: each still gets every event, once, in order.
func TestFeedCrowdJoiningARunningRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const tasks = 60 // 123 events (run.created, tasks.queued, two a task, run.finished): less than a page of the log
	r, err := e.core.Launcher.Launch(t.Context(), app.Plan{Mode: app.Concurrent, Tasks: tasks, DelayMS: 20, Parallelism: 4})
	if err != nil {
		t.Fatal(err)
	}
	got := make([][]*app.Event, 2*(2*tasks+3)+1)
	var wg sync.WaitGroup
	var follow func(i int)
	follow = func(i int) {
		defer wg.Done()
		s := e.core.Feed.Subscribe(r.ID, "")
		defer s.Close()
		var each func()
		if i == 0 {
			each = func() { // the first one brings in two more with each event it gets
				for k := range 2 {
					wg.Add(1)
					go follow(2*len(got[0]) - 1 + k)
				}
			}
		}
		if err := drainTo(t.Context(), s, &got[i], each); err != nil {
			t.Errorf("subscriber %d: %v", i, err)
		}
	}
	wg.Add(1)
	follow(0)
	wg.Wait()
	all, err := e.core.Log.ReadAll(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, all, tasks)
	for i, evs := range got {
		if len(evs) != len(all) {
			t.Errorf("subscriber %d got %d events, the log has %d", i, len(evs), len(all))
			continue
		}
		for j := range all {
			if evs[j].ID != all[j].ID {
				t.Errorf("subscriber %d: event %d is %s, the log's is %s", i, j, evs[j].ID, all[j].ID)
				break
			}
		}
	}
}
