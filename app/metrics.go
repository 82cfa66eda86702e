package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are this process's Prometheus metrics. Each process counts what it does (a worker
// the tasks it runs and the runs it ends); Prometheus sums over processes.
type Metrics struct {
	Registry     *prometheus.Registry
	RunsTotal    *prometheus.CounterVec
	RunDuration  *prometheus.HistogramVec
	TaskDuration prometheus.Histogram
	QueueWait    prometheus.Histogram
	// ViewersDropped counts event-stream viewers dropped: "behind" from the live fan-out
	// (they catch up from the log), "stalled" from their connection (they accepted nothing
	// for the stream write timeout).
	ViewersDropped *prometheus.CounterVec
}

func newMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		RunsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskrace_runs_total", Help: "Runs that ended, by mode and final status.",
		}, []string{"mode", "status"}),
		RunDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "taskrace_run_duration_seconds", Help: "Wall time of finished runs, run.created to run.finished.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"mode"}),
		TaskDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "taskrace_task_duration_seconds", Help: "Duration of each task's call to its target.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		QueueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "taskrace_task_queue_wait_seconds", Help: "Time from a run's launch to each of its tasks starting.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
		ViewersDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskrace_stream_viewers_dropped_total",
			Help: "Event-stream viewers dropped: behind = from the live fan-out, to catch up from the log; stalled = disconnected after accepting nothing for STREAM_WRITE_TIMEOUT.",
		}, []string{"reason"}),
	}
	m.Registry.MustRegister(m.RunsTotal, m.RunDuration, m.TaskDuration, m.QueueWait, m.ViewersDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// runEnded counts a run that ended in this process.
func (m *Metrics) runEnded(mode Mode, status string, wallMS float64) {
	m.RunsTotal.WithLabelValues(string(mode), status).Inc()
	if status == StatusFinished {
		m.RunDuration.WithLabelValues(string(mode)).Observe(wallMS / 1000)
	}
}
