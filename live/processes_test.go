package live_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/taskrace/taskrace/live"
)

// Two processes' attempts, at known times: each process's counts, running tasks and busy
// slots per minute; and the tasks longest first, running ones by their time so far.
func TestProcessesAndLongest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bg := context.Background()
	base := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	clk := &clock{now: base}
	rec := e.recorder(live.Options{Durable: true, Clock: clk.Now})
	a := &live.Worker{Host: "a", PID: 1}
	b := &live.Worker{Host: "b", PID: 2}
	start := func(id string, w *live.Worker, attempt, maxRetry int) *live.Attempt {
		return rec.Start(live.Info{Queue: "procs", ID: id, Type: "p", Attempt: attempt, MaxRetry: maxRetry, Worker: w})
	}
	// Minute 0: on a, t1 runs 30 s and succeeds; t2 fails after 30 s and is retried on b.
	t1, t2 := start("t1", a, 1, 1), start("t2", a, 1, 1)
	clk.advance(30 * time.Second)
	t1.End(bg, nil)
	t2.End(bg, errors.New("boom"))
	// Minute 1: t2 again on b, fails for good after 60 s; t3 starts on a and runs on.
	clk.advance(30 * time.Second)
	t2b, t3 := start("t2", b, 2, 1), start("t3", a, 1, 0)
	clk.advance(time.Minute)
	t2b.End(bg, errors.New("boom again"))
	clk.advance(15 * time.Second) // 15 s into minute 2
	if err := e.reader.Sync(bg); err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	procs, err := e.reader.Processes(bg, 3, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 2 || procs[0].Name() != "a:1" || procs[1].Name() != "b:2" {
		t.Fatalf("processes: %+v", procs)
	}
	pa, pb := procs[0], procs[1]
	if pa.Processed != 2 || pa.Succeeded != 1 || pa.Retried != 1 || pa.Failed != 0 {
		t.Errorf("a: processed %d, succeeded %d, retried %d, failed %d; want 2, 1, 1, 0", pa.Processed, pa.Succeeded, pa.Retried, pa.Failed)
	}
	if pb.Processed != 1 || pb.Failed != 1 || pb.Retried != 0 {
		t.Errorf("b: processed %d, failed %d, retried %d; want 1, 1, 0", pb.Processed, pb.Failed, pb.Retried)
	}
	if len(pa.Running) != 1 || pa.Running[0].ID != "t3" || len(pb.Running) != 0 {
		t.Errorf("running: a %v, b %v; want t3 on a", pa.Running, pb.Running)
	}
	// a: minute 0 two slots for 30 s = 1.0; minute 1 t3 all along = 1.0; minute 2 t3 for
	// the 15 s so far = 1.0. b: minute 1 = 1.0, minute 2 = 0.
	for name, c := range map[string]struct{ got, want []float64 }{"a": {pa.Busy, []float64{1, 1, 1}}, "b": {pb.Busy, []float64{0, 1, 0}}} {
		for i := range c.want {
			if d := c.got[i] - c.want[i]; d > 0.01 || d < -0.01 {
				t.Errorf("%s busy: %v, want %v", name, c.got, c.want)
				break
			}
		}
	}
	page, err := e.reader.Longest(bg, nil, 10, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, task := range page.Tasks {
		order = append(order, task.ID)
	}
	// t3 has run 75 s, t2's latest attempt 60 s, t1 30 s.
	if len(order) != 3 || order[0] != "t3" || order[1] != "t2" || order[2] != "t1" {
		t.Errorf("longest first: %v, want [t3 t2 t1]", order)
	}
	if page, err = e.reader.Longest(bg, nil, 2, 0, now); err != nil || page.Next != "2" || page.Total != 3 {
		t.Errorf("first page of 2: next %q, total %d, err %v", page.Next, page.Total, err)
	}
	if page, err = e.reader.Longest(bg, nil, 2, 2, now); err != nil || len(page.Tasks) != 1 || page.Tasks[0].ID != "t1" || page.Next != "" {
		t.Errorf("second page: %+v, err %v", page, err)
	}
	t3.End(bg, nil)
}
