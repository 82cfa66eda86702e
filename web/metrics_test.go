package web

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrape(t *testing.T, h *harness) map[string]*dto.MetricFamily {
	t.Helper()
	res := h.get("/metrics")
	if res.status != 200 {
		t.Fatalf("GET /metrics = %d", res.status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(res.body)))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return fams
}

func counterOf(f *dto.MetricFamily, labels map[string]string) float64 {
	if f == nil {
		return 0
	}
next:
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

func TestMetricsMoveAfterARun(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	before := scrape(t, h)
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 4, "delay_ms": 10})
	h.follow(r.ID)
	// The worker counts the run just after storing its end, which viewers may see first.
	fin := map[string]string{"mode": "distributed", "status": "finished"}
	var after map[string]*dto.MetricFamily
	h.eventually(5*time.Second, "the run to be counted", func() bool {
		after = scrape(t, h)
		return counterOf(after["taskrace_runs_total"], fin) > counterOf(before["taskrace_runs_total"], fin)
	})
	if got := counterOf(after["taskrace_runs_total"], fin) - counterOf(before["taskrace_runs_total"], fin); got != 1 {
		t.Errorf("taskrace_runs_total{distributed,finished} moved by %v, want 1", got)
	}
	for name, want := range map[string]float64{
		"taskrace_task_duration_seconds":   4,
		"taskrace_task_queue_wait_seconds": 4,
		"taskrace_run_duration_seconds":    1,
	} {
		if got := counterOf(after[name], nil) - counterOf(before[name], nil); got != want {
			t.Errorf("%s observed %v more samples, want %v", name, got, want)
		}
	}
	for _, name := range []string{"taskrace_sse_clients", "asynq_queue_size", "asynq_tasks_processed_total"} {
		if after[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	// Reading the run keeps its projection: its 4 tasks.
	if res := h.get("/api/runs/" + r.ID); res.status != 200 {
		t.Fatalf("GET /api/runs/%s: %d", r.ID, res.status)
	}
	if g := scrape(t, h)["taskrace_kept_projection_tasks"]; g == nil || g.Metric[0].GetGauge().GetValue() != 4 {
		t.Errorf("taskrace_kept_projection_tasks = %v after reading a 4-task run, want 4", g)
	}

	// Every metric the sample Grafana dashboard queries exists.
	dash, err := os.ReadFile("../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`\b(?:taskrace|asynq)_[a-z_]+`).FindAllString(string(dash), -1) {
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if after[family] == nil {
			t.Errorf("the Grafana dashboard queries %s, which /metrics does not have", name)
		}
	}
}
