package templates

import (
	"testing"
	"time"

	"github.com/taskrace/taskrace/live"
)

func TestDurationAndAge(t *testing.T) {
	for _, c := range []struct {
		ms   float64
		want string
	}{
		{0.25, "250 µs"}, {12.34, "12.3 ms"}, {840, "840 ms"}, {2414, "2.41 s"}, {185_000, "3 min 05 s"}, {2*3600_000 + 5*60_000, "2 h 05 min"},
	} {
		if got := Duration(c.ms); got != c.want {
			t.Errorf("Duration(%v) = %q, want %q", c.ms, got, c.want)
		}
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		ago  time.Duration
		want string
	}{
		{3 * time.Second, "3 s"}, {250 * time.Second, "4 min 10 s"}, {125 * time.Minute, "2 h 05 min"}, {72 * time.Hour, "3 days"}, {-time.Second, "0 s"},
	} {
		if got := Age(now.Add(-c.ago), now); got != c.want {
			t.Errorf("Age(%s ago) = %q, want %q", c.ago, got, c.want)
		}
	}
	if got := Age(time.Time{}, now); got != "—" {
		t.Errorf("Age(zero) = %q", got)
	}
}

func TestTaskCounts(t *testing.T) {
	if got := TaskCounts(12345, map[string]int{"failed": 2, "done": 12340, "running": 3}); got != "12,345 tasks: 3 running · 12,340 done · 2 failed" {
		t.Errorf("TaskCounts = %q", got)
	}
	if got := TaskCounts(1, map[string]int{"queued": 1}); got != "1 task: 1 queued" {
		t.Errorf("TaskCounts = %q", got)
	}
	if got := TaskCounts(0, nil); got != "0 tasks" {
		t.Errorf("TaskCounts = %q", got)
	}
}

func TestTasksURLKeepsTheQuery(t *testing.T) {
	for _, c := range []struct{ q, sort, cursor, want string }{
		{"", "", "", "/tasks"},
		{"", SortStart, "", "/tasks"},
		{"state:failed type:email:*", SortRuntime, "50", "/tasks?cursor=50&q=state%3Afailed+type%3Aemail%3A%2A&sort=runtime"},
	} {
		if got := TasksURL(c.q, c.sort, c.cursor); got != c.want {
			t.Errorf("TasksURL(%q, %q, %q) = %q, want %q", c.q, c.sort, c.cursor, got, c.want)
		}
	}
	if got := TaskURL(&live.Task{Queue: "a/b", ID: "x y", Execution: 2}); got != "/tasks/a%2Fb/x%20y?execution=2" {
		t.Errorf("TaskURL = %q", got)
	}
}

// A chart of 60 minutes ends on the minute of to; a minute outside it is left out, a missing
// one is idle, and the bars stack to the busiest minute's height.
func TestChartOfMinutes(t *testing.T) {
	to := time.Date(2026, 1, 2, 3, 59, 30, 0, time.UTC)
	ms := []live.Minute{
		{At: to.Truncate(time.Minute), Succeeded: 6, Retried: 2, Failed: 2, MeanMS: 100},
		{At: to.Truncate(time.Minute).Add(-30 * time.Minute), Succeeded: 5, MeanMS: 50},
		{At: to.Add(-2 * time.Hour), Succeeded: 99},
	}
	c := ChartOfMinutes(ms, to, 60, 600, 120)
	if len(c.Bars) != 60 || c.MaxN != 10 || c.MaxMS != 100 {
		t.Fatalf("%d bars, max %d a minute, %v ms", len(c.Bars), c.MaxN, c.MaxMS)
	}
	last := c.Bars[59]
	if last.OkH != 72 || last.RetryH != 24 || last.FailH != 24 || last.FailY != 0 {
		t.Errorf("the busiest minute: %+v", last)
	}
	if mid := c.Bars[29]; mid.OkH != 60 || mid.Failures != 0 {
		t.Errorf("30 min ago: %+v", mid)
	}
	if c.Bars[0].OkH != 0 || c.Bars[0].Title != "03:00: idle" {
		t.Errorf("the first minute: %+v", c.Bars[0])
	}
	if c.FromTo != "03:00 – 03:59 UTC" {
		t.Errorf("FromTo %q", c.FromTo)
	}
}

func TestBusySparklineIsCappedAtConcurrency(t *testing.T) {
	s := BusySparkline([]float64{0, 4, 12}, 8, 120, 24)
	if len(s.Bars) != 3 || s.Bars[1].H != 12 || s.Bars[2].H != 24 || s.Bars[0].H != 0 {
		t.Errorf("bars %+v", s.Bars)
	}
}
