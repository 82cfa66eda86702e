package templates

import (
	"strconv"
	"time"

	"github.com/taskrace/taskrace/live"
)

// StatsView is the statistics page: per task type and queue, over a window, with a chart
// of each one's last minutes.
type StatsView struct {
	Page    Page
	Window  string // as chosen: 15m, 1h, 6h, 24h
	Windows []string
	Types   []TypeRow
	Minutes int // how many minutes the charts draw
	At      time.Time
	Error   string
}

// TypeRow is the statistics of one task type on one queue.
type TypeRow struct {
	live.TypeStats
	PerMinute float64 // attempts ended a minute, over the window
	Chart     MinuteChart
}

// TasksURL is the tasks page of the row's type on its queue.
func (r TypeRow) TasksURL() string {
	return TasksURL("type:"+r.Type+" queue:"+r.Queue, "", "")
}

// Processed is the attempts that ended.
func (r TypeRow) Processed() int64 {
	var n int64
	for _, v := range r.Ended {
		n += v
	}
	return n
}

// MinuteChart is the geometry of a row's chart: a stacked bar per minute (succeeded,
// retried, failed) on the left axis, and its mean runtime as a line on the right one.
type MinuteChart struct {
	W, H    float64
	Bars    []MinuteBar
	Line    string // SVG points of the mean runtime
	MaxN    int64
	MaxMS   float64
	FromTo  string // "00:12 – 01:11 UTC"
	Summary string // for screen readers
}

// MinuteBar is one minute of a chart.
type MinuteBar struct {
	X, W                float64
	OkY, OkH            float64
	RetryY, RetryH      float64
	FailY, FailH        float64
	Title               string
	Succeeded, Failures int64
}

// ChartOfMinutes draws minutes (oldest first, missing minutes are idle) ending at the
// minute of to, n minutes long, over w × h.
func ChartOfMinutes(ms []live.Minute, to time.Time, n int, w, h float64) MinuteChart {
	end := to.UTC().Truncate(time.Minute)
	start := end.Add(-time.Duration(n-1) * time.Minute)
	c := MinuteChart{W: w, H: h, FromTo: start.Format("15:04") + " – " + end.Format("15:04") + " UTC"}
	byMin := make([]*live.Minute, n)
	for i := range ms {
		k := int(ms[i].At.Sub(start) / time.Minute)
		if k >= 0 && k < n {
			byMin[k] = &ms[i]
		}
	}
	var total int64
	for _, m := range byMin {
		if m != nil {
			c.MaxN = max(c.MaxN, m.Succeeded+m.Retried+m.Failed)
			c.MaxMS = max(c.MaxMS, m.MeanMS)
			total += m.Succeeded + m.Retried + m.Failed
		}
	}
	c.MaxN = max(c.MaxN, 1)
	bw := w / float64(n)
	var pts []byte
	for i, m := range byMin {
		b := MinuteBar{X: float64(i) * bw, W: max(bw-1, 0.5)}
		at := start.Add(time.Duration(i) * time.Minute).Format("15:04")
		if m == nil {
			b.Title = at + ": idle"
			c.Bars = append(c.Bars, b)
			continue
		}
		scale := h / float64(c.MaxN)
		b.OkH = float64(m.Succeeded) * scale
		b.RetryH = float64(m.Retried) * scale
		b.FailH = float64(m.Failed) * scale
		b.OkY = h - b.OkH
		b.RetryY = b.OkY - b.RetryH
		b.FailY = b.RetryY - b.FailH
		b.Succeeded, b.Failures = m.Succeeded, m.Retried+m.Failed
		b.Title = at + ": " + strconv.FormatInt(m.Succeeded, 10) + " succeeded, " + strconv.FormatInt(m.Retried, 10) + " retried, " +
			strconv.FormatInt(m.Failed, 10) + " failed; mean " + Duration(m.MeanMS)
		c.Bars = append(c.Bars, b)
		if c.MaxMS > 0 {
			y := h - h*m.MeanMS/c.MaxMS
			pts = append(pts, F(b.X+bw/2)+","+F(y)+" "...)
		}
	}
	c.Line = string(pts)
	c.Summary = strconv.FormatInt(total, 10) + " attempts ended from " + c.FromTo + ", at most " + strconv.FormatInt(c.MaxN, 10) +
		" in a minute; mean runtime up to " + Duration(c.MaxMS)
	return c
}

// Rate is a rate a minute for people: "12.5/min".
func Rate(perMin float64) string {
	if perMin >= 100 {
		return Thousands(int(perMin+0.5)) + "/min"
	}
	return strconv.FormatFloat(perMin, 'f', 1, 64) + "/min"
}

// Quantile is a distribution's quantile as shown: "≤ 250 ms", or "—" without data. The
// figures are bucket bounds, so they read as "at most".
func Quantile(d live.Distribution, ms float64) string {
	if d.Count == 0 {
		return "—"
	}
	return "≤ " + Duration(ms)
}
