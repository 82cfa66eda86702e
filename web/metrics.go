package web

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taskrace/taskrace/live"
)

// registerMetrics serves /metrics: the domain's metrics, the viewers of live streams, asynq's
// queue sizes and latencies, and the aggregates of the tasks recorded with package live.
// Those are restricted as /api/stats is: with ADMIN_TOKEN set and PUBLIC_TASKS not, only a
// scrape with the admin's token gets them.
func (s *Server) registerMetrics() {
	reg := s.core.Metrics.Registry
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "taskrace_sse_clients", Help: "Open server-sent event streams (a run's JSON and HTML, the workers) on this process.",
		}, func() float64 { return float64(s.viewers.open.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "taskrace_kept_projection_tasks", Help: "Tasks of the run projections this process keeps between reads.",
		}, func() float64 { _, tasks := s.core.Projections.Held(); return float64(tasks) }),
		metrics.NewQueueMetricsCollector(s.core.Launcher.Inspector()),
	)
	tasks := prometheus.NewRegistry()
	tasks.MustRegister(newTaskCollector(s))
	public := adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	all := adaptor.HTTPHandler(promhttp.HandlerFor(prometheus.Gatherers{reg, tasks}, promhttp.HandlerOpts{}))
	s.route(fiber.MethodGet, "/metrics", open, func(c *fiber.Ctx) error {
		if s.cfg.AdminToken == "" || s.cfg.PublicTasks || s.isAdmin(c) {
			return all(c)
		}
		return public(c)
	})
}

// taskCollector exports the totals of the recorded tasks by type and queue, read from Redis
// at each scrape: the counters GET /api/stats sums by minute.
type taskCollector struct {
	s                                  *Server
	started, ended, retried, failed    *prometheus.Desc
	duration, wait, watchers, readable *prometheus.Desc
}

func newTaskCollector(s *Server) *taskCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("taskrace_live_"+name, help, labels, nil)
	}
	return &taskCollector{s: s,
		started:  d("attempts_started_total", "Attempts started, by task type and queue.", "type", "queue"),
		ended:    d("attempts_ended_total", "Attempts ended, by task type, queue and how they left their handler (success, error, skip_retry, revoked, deadline, canceled, panic).", "type", "queue", "exit"),
		retried:  d("attempts_retried_total", "Failed attempts after which asynq tries the task again, by task type and queue.", "type", "queue"),
		failed:   d("tasks_failed_total", "Tasks that ended failed, with no retry left, by task type and queue.", "type", "queue"),
		duration: d("attempt_duration_seconds", "How long ended attempts ran, by task type and queue.", "type", "queue"),
		wait:     d("task_wait_seconds", "Enqueue to first start, for tasks stamped by live.NewTask, by task type and queue.", "type", "queue"),
		watchers: d("event_stream_clients", "Open /api/tasks/events streams on this process."),
		readable: d("up", "1 when the recorded aggregates could be read from Redis."),
	}
}

func (c *taskCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.started, c.ended, c.retried, c.failed, c.duration, c.wait, c.watchers, c.readable} {
		ch <- d
	}
}

func (c *taskCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.s.recorded
	if r == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.watchers, prometheus.GaugeValue, float64(r.Subscribers()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := r.Totals(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.readable, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.readable, prometheus.GaugeValue, 1)
	for _, t := range st.Types {
		ch <- prometheus.MustNewConstMetric(c.started, prometheus.CounterValue, float64(t.Started), t.Type, t.Queue)
		for _, exit := range live.Exits {
			ch <- prometheus.MustNewConstMetric(c.ended, prometheus.CounterValue, float64(t.Ended[exit]), t.Type, t.Queue, exit)
		}
		ch <- prometheus.MustNewConstMetric(c.retried, prometheus.CounterValue, float64(t.Retried), t.Type, t.Queue)
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(t.Failed), t.Type, t.Queue)
		ch <- histogram(c.duration, t.Duration, t.Type, t.Queue)
		ch <- histogram(c.wait, t.Wait, t.Type, t.Queue)
	}
}

// histogram is a distribution of recorded durations as a Prometheus histogram, in seconds.
func histogram(desc *prometheus.Desc, d live.Distribution, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(d.Buckets))
	for _, b := range d.Buckets {
		if b.LeMS != nil {
			buckets[*b.LeMS/1000] = uint64(b.Count)
		}
	}
	return prometheus.MustNewConstHistogram(desc, uint64(d.Count), d.SumMS/1000, buckets, labels...)
}
