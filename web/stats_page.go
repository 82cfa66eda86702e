package web

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/live"
	"github.com/taskrace/taskrace/templates"
)

// The statistics page of the recorded tasks: per type and queue over a window, and a chart
// of each one's last hour, drawn here as SVG and sent again every statsEvery. Restricted, like
// /api/stats.

var statsWindows = []string{"15m", "1h", "6h", "24h"}

const (
	statsEvery   = 5 * time.Second
	statsMinutes = 60 // what the charts draw
)

func (s *Server) registerStatsPages() {
	s.route(fiber.MethodGet, "/stats", restricted, s.statsPage)
	s.route(fiber.MethodGet, "/stats/stream", restricted, s.statsStream)
}

func statsWindow(c *fiber.Ctx) (string, time.Duration, error) {
	w := strings.Clone(c.Query("window", "1h"))
	if !slices.Contains(statsWindows, w) {
		return w, 0, badQuery("window", w, "must be one of "+strings.Join(statsWindows, ", "))
	}
	d, _ := time.ParseDuration(w)
	return w, d, nil
}

// statsView reads the aggregates of the window, and the last statsMinutes by minute.
func (s *Server) statsView(ctx context.Context, window string, d time.Duration) (templates.StatsView, error) {
	v := templates.StatsView{Window: window, Windows: statsWindows, Minutes: statsMinutes}
	now := time.Now().UTC()
	v.At = now
	span, err := s.recorded.Stats(ctx, now.Add(-d+time.Minute), now, false)
	if err != nil {
		return v, liveError(err, "stats")
	}
	recent, err := s.recorded.Stats(ctx, now.Add(-statsMinutes*time.Minute+time.Minute), now, true)
	if err != nil {
		return v, liveError(err, "stats")
	}
	minutes := d.Minutes()
	for _, ts := range span.Types {
		r := templates.TypeRow{TypeStats: ts}
		r.PerMinute = float64(r.Processed()) / minutes
		for _, rt := range recent.Types {
			if rt.Type == ts.Type && rt.Queue == ts.Queue {
				r.Chart = templates.ChartOfMinutes(rt.Minutes, now, statsMinutes, 600, 120)
				r.PerMinute = recentRate(rt.Minutes, now)
			}
		}
		if r.Chart.Bars == nil {
			r.Chart = templates.ChartOfMinutes(nil, now, statsMinutes, 600, 120)
		}
		v.Types = append(v.Types, r)
	}
	return v, nil
}

// rateSpan is the span of the rate a minute: recent enough to say how fast a type goes now.
const rateSpan = 5 * time.Minute

// recentRate is the attempts that ended a minute over the last rateSpan, or since the
// series' first minute in it when that is later (a type that began two minutes ago on a
// queue is not averaged over five).
func recentRate(ms []live.Minute, now time.Time) float64 {
	from := now.Add(-rateSpan)
	first := now
	var n int64
	for _, m := range ms {
		if m.At.Add(time.Minute).After(from) {
			n += m.Succeeded + m.Retried + m.Failed
			if m.At.Before(first) {
				first = m.At
			}
		}
	}
	if first.Before(from) {
		first = from
	}
	return float64(n) / max(now.Sub(first).Minutes(), 1)
}

func (s *Server) statsPage(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	window, d, err := statsWindow(c)
	var v templates.StatsView
	if err == nil {
		v, err = s.statsView(ctx, window, d)
	}
	v.Page = s.page(c, "Statistics", "stats")
	v.Page.Scripts = []string{"js/stats.js"}
	v.Window, v.Windows = window, statsWindows
	if err != nil {
		status, msg := s.failure(c, err)
		v.Error = msg
		return s.render(c, status, templates.Stats(v))
	}
	return s.render(c, http.StatusOK, templates.Stats(v))
}

// statsStream sends the page's live part every statsEvery.
func (s *Server) statsStream(c *fiber.Ctx) error {
	window, d, err := statsWindow(c)
	if err != nil {
		return err
	}
	return s.stream(c, func() (sseSource, error) {
		return &periodicSource{every: statsEvery, render: func(ctx context.Context) ([]byte, error) {
			v, err := s.statsView(ctx, window, d)
			if err != nil {
				return nil, err
			}
			var b bytes.Buffer
			if err := templates.StatsBody(v).Render(ctx, &b); err != nil {
				return nil, err
			}
			return sseHTML("", "stats", oneLine(b.Bytes())), nil
		}}, nil
	})
}
