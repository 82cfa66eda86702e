package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
)

// BenchmarkRunDetail10k is GET /api/runs/{id} of a finished 10,000-task run: the first page of
// its tasks and the summary, as a client reads it once the run's projection is kept; the
// first read, which keeps it; and the heap the kept projection holds per task.
func BenchmarkRunDetail10k(b *testing.B) {
	s := newBenchServer(b)
	ctx := context.Background()
	r, err := s.core.Launcher.Launch(ctx, app.Plan{Mode: app.Concurrent, Tasks: 10_000, DelayMS: 0, Parallelism: 100})
	if err != nil {
		b.Fatal(err)
	}
	// The run's event stream ends on its terminal event.
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Get(s.base + "/api/runs/" + r.ID + "/events")
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// What keeping the run's projection costs: the heap the first read leaves behind.
	before := heapInUse()
	start := time.Now()
	resp, err = client.Get(s.base + "/api/runs/" + r.ID)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	first := time.Since(start)
	kept := float64(int64(heapInUse())-int64(before)) / 10_000
	var took []time.Duration
	var size int64
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		resp, err := client.Get(s.base + "/api/runs/" + r.ID)
		if err != nil {
			b.Fatal(err)
		}
		size, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(size), "bytes")
	b.ReportMetric(kept, "B/task-kept")
	b.ReportMetric(float64(first.Microseconds())/1000, "first-ms")
}

// BenchmarkRunDetail10kRunning is GET /api/runs/{id} asked every 50 ms while a 10,000-task run
// goes on (100 slots of 100 ms tasks: some ten seconds, 3,000 events a second): the latency
// of the reads made while it ran, and of the first, which has the whole run so far to fold.
func BenchmarkRunDetail10kRunning(b *testing.B) {
	s := newBenchServer(b)
	client := &http.Client{Timeout: time.Minute}
	for b.Loop() {
		ctx := context.Background()
		r, err := s.core.Launcher.Launch(ctx, app.Plan{Mode: app.Concurrent, Tasks: 10_000, DelayMS: 100, Parallelism: 100})
		if err != nil {
			b.Fatal(err)
		}
		// Start reading once a fifth of the run is in the log, so that the first read folds
		// a run already under way.
		err = s.core.Feed.Watch(ctx, r.ID, "", func(e *app.Event) error {
			if e.Type == app.TaskFinished && e.Index != nil && *e.Index >= 2000 {
				return errEnough
			}
			return nil
		})
		if err != errEnough {
			b.Fatal(err)
		}
		var took []time.Duration
		var first time.Duration
		tick := time.NewTicker(50 * time.Millisecond)
		for {
			start := time.Now()
			resp, err := client.Get(s.base + "/api/runs/" + r.ID + "?limit=200")
			if err != nil {
				b.Fatal(err)
			}
			var d struct{ Summary app.Summary }
			err = json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
			if d.Summary.Status != app.StatusRunning {
				break
			}
			if first == 0 {
				first = time.Since(start)
			} else {
				took = append(took, time.Since(start))
			}
			<-tick.C
		}
		tick.Stop()
		slices.Sort(took)
		if len(took) < 10 {
			b.Fatalf("only %d reads while the run went on", len(took))
		}
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(first.Microseconds())/1000, "first-ms")
		b.ReportMetric(float64(len(took)), "reads")
	}
}

var errEnough = errors.New("enough")
