package web

import (
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
)

// BenchmarkRunDetail10k is GET /api/runs/{id} of a finished 10,000-task run: the first page of
// its tasks and the summary, as a client reads it.
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
}
