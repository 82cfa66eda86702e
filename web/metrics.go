package web

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// registerMetrics serves /metrics: the domain's metrics, the viewers of live streams, and
// asynq's queue sizes and latencies.
func (s *Server) registerMetrics() {
	reg := s.core.Metrics.Registry
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "taskrace_sse_clients", Help: "Open server-sent event streams (a run's JSON and HTML, the workers) on this process.",
		}, func() float64 { return float64(s.viewers.open.Load()) }),
		metrics.NewQueueMetricsCollector(s.core.Launcher.Inspector()),
	)
	s.route(fiber.MethodGet, "/metrics", open, adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
}
