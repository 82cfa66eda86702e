package templates

import (
	"fmt"
	"hash/fnv"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/static"
)

// The formatters below turn the domain's values into text, attributes and geometry. They
// decide nothing about a run: every figure comes from its projection or its record.

// LoginURL is the sign-in page, returning to path.
func LoginURL(path string) string {
	if path == "" {
		path = "/"
	}
	return "/login?next=" + url.QueryEscape(path)
}

// Asset is the content-hashed URL of a static file.
func Asset(name string) string { return static.Path(name) }

// TaskList is "task 3" or "tasks 2, 3 and 7".
func TaskList(idx []int) string {
	if len(idx) == 1 {
		return "task " + strconv.Itoa(idx[0])
	}
	parts := make([]string, len(idx))
	for i, n := range idx {
		parts[i] = strconv.Itoa(n)
	}
	return "tasks " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// Summary is "2 workers × 5 slots = 10", or the sum when the workers differ.
func (c Capacity) Summary() string {
	if c.Err != "" {
		return c.Err
	}
	if c.Workers == 0 {
		return "no live worker: distributed runs need `taskrace worker`"
	}
	same := true
	for _, s := range c.Slots {
		same = same && s == c.Slots[0]
	}
	w := plural(c.Workers, "worker", "workers")
	if same {
		return fmt.Sprintf("%s × %s = %d", w, plural(c.Slots[0], "slot", "slots"), c.Total)
	}
	parts := make([]string, len(c.Slots))
	for i, s := range c.Slots {
		parts[i] = strconv.Itoa(s)
	}
	return fmt.Sprintf("%s: %s = %d slots", w, strings.Join(parts, " + "), c.Total)
}

// WorkersSummary is "2 workers · 10 slots · 3 tasks active".
func (v WorkersView) WorkersSummary() string {
	active := 0
	for _, p := range v.Procs {
		active += len(p.Active)
	}
	return plural(len(v.Procs), "worker", "workers") + " · " + plural(v.Capacity, "slot", "slots") + " · " +
		plural(active, "task", "tasks") + " active"
}

// UTCClock formats t as 15:04:05 UTC, "—" for the zero time.
func UTCClock(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// ShortID is the last eight characters of a run ID, as the run list shows it.
func ShortID(id string) string { return id[max(0, len(id)-8):] }

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// Seconds formats milliseconds as seconds with two decimals: "6.03 s".
func Seconds(ms float64) string { return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s" }

// Tenths formats a running clock: whole tenths of a second, never rounded up, so that it
// never reads more than the wall time the run ends with ("6.0 s" before "6.03 s").
func Tenths(ms float64) string {
	return strconv.FormatFloat(math.Floor(max(0, ms)/100)/10, 'f', 1, 64) + " s"
}

// DelaySeconds formats a plan's delay: "3 s", "0.1 s".
func DelaySeconds(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64) + " s"
}

// Wall is the run's wall time, or "—" while it runs.
func Wall(r *app.Run) string { return Ms2(r.WallMS) }

// Ms2 is a time in milliseconds as seconds with two decimals, or "—" for none.
func Ms2(ms *float64) string {
	if ms == nil {
		return "—"
	}
	return Seconds(*ms)
}

// Percent formats a ratio 0..1 as "83 %".
func Percent(f *float64) string {
	if f == nil {
		return "—"
	}
	return strconv.FormatFloat(*f*100, 'f', 0, 64) + " %"
}

// SpeedUp formats a speed-up: "×5.0".
func SpeedUp(f *float64) string {
	if f == nil || *f <= 0 {
		return "—"
	}
	return "×" + strconv.FormatFloat(*f, 'f', 1, 64)
}

// Reduction formats a time reduction: "85 %".
func Reduction(f *float64) string {
	if f == nil {
		return "—"
	}
	return strconv.FormatFloat(*f, 'f', 1, 64) + " %"
}

// Ms formats a duration in milliseconds: "3004 ms", "3.00 s" above 10 s.
func Ms(f *float64) string {
	if f == nil {
		return "—"
	}
	if *f >= 10_000 {
		return Seconds(*f)
	}
	return strconv.FormatFloat(*f, 'f', 0, 64) + " ms"
}

// F formats a float for an attribute with up to three decimals.
func F(f float64) string { return strconv.FormatFloat(round3(f), 'f', -1, 64) }

// I formats an int.
func I(n int) string { return strconv.Itoa(n) }

// Bool01 is "1" or "0".
func Bool01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// RFC3339 formats an event time as written in events.
func RFC3339(t app.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(app.TimeLayout)
}

// Clock formats an event time for people, in UTC.
func Clock(t app.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// HourClock formats an event time as 15:04:05, in UTC.
func HourClock(t *app.Time) string {
	if t == nil || t.IsZero() {
		return "—"
	}
	return t.UTC().Format("15:04:05")
}

// ModeName is the mode for people.
func ModeName(m app.Mode) string {
	switch m {
	case app.Sequential:
		return "Sequential"
	case app.Concurrent:
		return "Concurrent"
	case app.Distributed:
		return "Distributed"
	}
	return string(m)
}

// PlanLine describes a plan: "10 tasks × 3 s · parallelism 5".
func PlanLine(r *app.Run) string {
	return WorkLine(r.Plan) + " · parallelism " + strconv.Itoa(r.Parallelism)
}

// WorkLine describes the work of a plan, whatever its mode: "10 tasks × 3 s".
func WorkLine(p app.Plan) string {
	s := plural(p.Tasks, "task", "tasks") + " × " + DelaySeconds(p.DelayMS)
	if p.Target != app.BuiltinTarget {
		s += " · " + p.Target
	}
	if p.FailureRate > 0 {
		s += " · failure rate " + strconv.FormatFloat(p.FailureRate, 'f', -1, 64)
	}
	return s
}

// OGLine is the one-line summary for link previews and the page's title:
// "Distributed · 10 tasks · 6.03 s · ×5.0", or the plan and status while it runs.
func OGLine(r *app.Run) string {
	s := ModeName(r.Mode) + " · " + plural(r.Tasks, "task", "tasks")
	if r.WallMS != nil {
		s += " · " + Seconds(*r.WallMS)
		if r.Status != app.StatusFinished {
			s += " · " + r.Status
		}
	} else {
		s += " × " + DelaySeconds(r.DelayMS) + " · " + r.Status
	}
	if r.SpeedUp != nil && *r.SpeedUp > 0 {
		s += " · " + SpeedUp(r.SpeedUp)
	}
	return s
}

// LaneID is the element ID of a worker slot's lane in a run's timeline: stable for the
// slot, so a fragment rendered for any viewer lands in the right lane.
func LaneID(runID string, w app.Worker) string {
	h := fnv.New32a()
	h.Write([]byte(w.String()))
	return "lane-" + runID + "-" + strconv.FormatUint(uint64(h.Sum32()), 36)
}

// TrackID is the element ID of the bars of a lane.
func TrackID(runID string, w app.Worker) string { return "track" + LaneID(runID, w)[4:] }

// BarID is the element ID of one attempt's bar.
func BarID(runID string, index, attempt int) string {
	return "bar-" + runID + "-" + strconv.Itoa(index) + "-" + strconv.Itoa(attempt)
}

// RowID is the element ID of a task's row.
func RowID(runID string, index int) string { return "task-" + runID + "-" + strconv.Itoa(index) }

// StreamURL is a run page's stream: the run's events as fragments, with the rows of page
// page of its task list (0: none).
func StreamURL(runID string, page int) string {
	return "/runs/" + runID + "/stream?page=" + strconv.Itoa(page)
}

// ShownState is a task's state as the page shows it: orphaned while its worker is lost.
func ShownState(t *app.Task) string {
	if t.Orphaned != nil {
		return TaskStateOrphaned
	}
	return t.State
}

// MonitorTaskURL is a task's page in the embedded asynqmon (its route
// /queues/:qname/tasks/:taskId under /monitor).
func MonitorTaskURL(queue, taskID string) string {
	return "/monitor/queues/" + url.PathEscape(queue) + "/tasks/" + url.PathEscape(taskID)
}

// StateWord is how a state reads next to its icon.
func StateWord(state string) string { return state }

// WorkerName is a task's worker, or "—".
func WorkerName(w *app.Worker) string {
	if w == nil {
		return "—"
	}
	return w.String()
}

// RunsURL is the history page with filters and a cursor.
func RunsURL(mode, status, cursor string) string {
	q := url.Values{}
	if mode != "" {
		q.Set("mode", mode)
	}
	if status != "" {
		q.Set("status", status)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if len(q) == 0 {
		return "/runs"
	}
	return "/runs?" + q.Encode()
}

// TaskPageURL is a page of a run's task list.
func TaskPageURL(runID string, page int, present bool) string {
	u := "/runs/" + runID + "?page=" + strconv.Itoa(page)
	if present {
		u += "&present=1"
	}
	return u
}

// Timeline geometry. Times are in milliseconds since the run was created; a timeline's
// SVG user space is that axis.

// Headroom stretches a time axis past its longest time, so the line at its end (the ideal
// time, say) stays in sight. The page stretches a live run's axis by the same factor.
const Headroom = 1.04

// AxisExtent is the extent of a run's timeline: its ideal time or its elapsed time,
// whichever is longer, with head-room.
func AxisExtent(s app.Summary) float64 { return max(s.IdealMS, s.ElapsedMS, 100) * Headroom }

// minBar is the narrowest an ended attempt is drawn, as a share of the timeline: a failed
// attempt that lasted a millisecond still shows.
const minBar = 0.006

// BarWidth is how wide an attempt is drawn on a timeline of extent scale: its duration, at
// least minBar of the axis once it has ended. A running attempt is exactly as long as it
// has run so far: the page grows it.
func BarWidth(a *app.Attempt, scale float64) float64 {
	if !a.Ended() {
		return a.DurMS
	}
	return max(a.DurMS, scale*minBar)
}

// Widened reports whether an attempt is drawn wider than it lasted, on an axis of extent
// scale.
func Widened(a *app.Attempt, scale float64) bool { return BarWidth(a, scale) > a.DurMS }

// BarX is where an attempt's bar starts: at its start, or for one drawn wider than it
// lasted, that much before its end, so that no bar reaches past the instant it ended.
func BarX(a *app.Attempt, scale float64) float64 {
	return max(0, min(a.StartMS, a.StartMS+a.DurMS-BarWidth(a, scale)))
}

// RowProgress is the width of a task row's bar, in percent of the task's delay: how far its
// current attempt has gone, full once it is done or failed.
func RowProgress(t *app.Task, delayMS int64) string {
	switch t.State {
	case app.TaskStateDone, app.TaskStateFailed:
		return "100%"
	case app.TaskStateRunning, app.TaskStateCanceled:
		if len(t.History) == 0 || delayMS <= 0 {
			return "0%"
		}
		a := t.History[len(t.History)-1]
		return F(min(100, 100*a.DurMS/float64(delayMS))) + "%"
	}
	return "0%"
}

// StepsAttr writes a task's steps for the replay: "0 queued;1.2 running;3001.5 done".
func StepsAttr(steps []app.Step) string {
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = F(s.AtMS) + " " + s.State
	}
	return strings.Join(parts, ";")
}

// tickSteps are the round steps of a time axis, in milliseconds.
var tickSteps = []float64{1, 2, 5, 10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000}

// Axis returns tick positions for a time axis of extent ms: about five round steps.
func Axis(ms float64) []float64 {
	if ms <= 0 {
		return nil
	}
	step := tickStep(ms)
	var ticks []float64
	for t := 0.0; t <= ms+1e-9; t += step {
		ticks = append(ticks, t)
	}
	return ticks
}

func tickStep(ms float64) float64 { return tickStepOf(ms, 6) }

// tickStepOf is the smallest round step that cuts ms into at most n steps.
func tickStepOf(ms, n float64) float64 {
	for _, s := range tickSteps {
		if ms/s <= n {
			return s
		}
	}
	return tickSteps[len(tickSteps)-1]
}

// AxisLabel formats a tick: "0 s", "1.5 s".
func AxisLabel(ms float64) string {
	return strconv.FormatFloat(ms/1000, 'f', -1, 64) + " s"
}

// Chart is the geometry of a results chart: a time axis that ends on a tick past every
// run's wall and ideal time, so that the longest bar and every ideal line stay in sight.
type Chart struct {
	Results   []Result
	Extent    float64   // ms at the end of the track
	Ticks     []float64 // ms of each tick, 0 first
	ID        string    // the chart's element ID prefix
	Class     string    // when it shows: the wide chart from 640 px on, the narrow one below
	ViewWidth float64   // the SVG's width in user units
	Left      float64   // where the track starts, after the label column
	Width     float64   // the track's width
	LegendX   float64   // where the legend under the axis starts
}

// Chart geometry, in the SVG's user units.
const (
	ChartLeft  = 150.0 // where the track starts, after the label column
	ChartWidth = 400.0 // the track's width
	ChartRow   = 44    // one run's row
)

// ChartOf lays out a results chart, 600 units wide: its text stays at least 11 px from a
// width of 600 px down to about 520.
func ChartOf(rs []Result) Chart {
	c := chartAxis(rs, 6)
	c.ID, c.Class, c.ViewWidth, c.Left, c.Width, c.LegendX = "chart", "hidden sm:block", 600, ChartLeft, ChartWidth, ChartLeft
	return c
}

// NarrowChartOf lays out the results chart for a phone: 320 units wide, about as many
// pixels as it gets at 375 px, so that its text is not scaled below 11 px, with fewer ticks.
func NarrowChartOf(rs []Result) Chart {
	c := chartAxis(rs, 3)
	c.ID, c.Class, c.ViewWidth, c.Left, c.Width, c.LegendX = "chart-narrow", "sm:hidden", 320, 80, 185, 0
	return c
}

// chartAxis is a chart's time axis, cut into at most steps round steps.
func chartAxis(rs []Result, steps float64) Chart {
	longest := 1.0
	for _, r := range rs {
		if r.Sum.WallMS != nil {
			longest = max(longest, *r.Sum.WallMS)
		}
		longest = max(longest, r.Sum.IdealMS)
	}
	longest *= Headroom
	step := tickStepOf(longest, steps)
	extent := math.Ceil(longest/step) * step
	var ticks []float64
	for t := 0.0; t <= extent+1e-9; t += step {
		ticks = append(ticks, t)
	}
	return Chart{Results: rs, Extent: extent, Ticks: ticks}
}

// X is the chart's horizontal position of time ms.
func (c Chart) X(ms float64) float64 { return c.Left + c.Width*ms/c.Extent }

// Height is the chart's height: its rows and the axis under them.
func (c Chart) Height() int { return len(c.Results)*ChartRow + 40 }

// WallMS is a result's wall time, 0 while it runs.
func (r Result) WallMS() float64 {
	if r.Sum.WallMS == nil {
		return 0
	}
	return *r.Sum.WallMS
}

// ProgressLine is a run's progress in words: "4 of 10 tasks ended, 1 failed · 2 retries",
// "4 of 10 tasks ended · 6 canceled".
func ProgressLine(r *app.Run, s app.Summary) string {
	line := I(s.Done+s.Failed) + " of " + I(r.Tasks) + " tasks ended"
	if s.Failed > 0 {
		line += ", " + I(s.Failed) + " failed"
	}
	if s.Canceled > 0 {
		line += " · " + I(s.Canceled) + " canceled"
	}
	if s.Retrying > 0 {
		line += " · " + plural(s.Retrying, "task", "tasks") + " retrying"
	}
	if s.Retries > 0 {
		line += " · " + plural(s.Retries, "retry", "retries")
	}
	return line
}

// AttemptWord is an attempt's outcome in words.
func AttemptWord(a *app.Attempt) string {
	if a.Outcome == app.AttemptFailed && a.Retry {
		return "failed, retried"
	}
	return a.Outcome
}

// EndLine says how a run that did not finish ended: "The run was canceled (canceled by
// request)." It is empty for a finished or running run.
func EndLine(r *app.Run) string {
	if r.Status == app.StatusFinished || !r.Ended() {
		return ""
	}
	s := "The run was " + r.Status
	if r.Reason != "" && r.Reason != r.Status+" by request" {
		s += " (" + r.Reason + ")"
	} else if r.Reason != "" {
		s += " by request"
	}
	return s + "."
}

// ComparedWith says what a result's speed-up and reduction are against.
func ComparedWith(res Result) string {
	if res.Baseline != nil {
		return "against sequential run " + ShortID(res.Baseline.ID) + " of the same plan, " + Wall(res.Baseline)
	}
	return "against tasks × delay, " + Seconds(res.Sum.ComparedMS)
}

// CountsLine is an ended run's tasks and attempts in words: "10 tasks: 8 done, 1 failed,
// 1 canceled · 3 retries, 3 failed attempts".
func CountsLine(r *app.Run, s app.Summary) string {
	parts := []string{I(s.Done) + " done"}
	if s.Failed > 0 {
		parts = append(parts, I(s.Failed)+" failed")
	}
	if s.Canceled > 0 {
		parts = append(parts, I(s.Canceled)+" canceled")
	}
	return plural(r.Tasks, "task", "tasks") + ": " + strings.Join(parts, ", ") + " · " +
		plural(s.Retries, "retry", "retries") + ", " + plural(s.FailedAttempts, "failed attempt", "failed attempts")
}

// runningAs is r as it was before its end: running, with no wall time yet.
func runningAs(r *app.Run) *app.Run {
	cp := *r
	cp.Status, cp.WallMS, cp.EndedAt, cp.Reason = app.StatusRunning, nil, app.Time{}, ""
	cp.Efficiency, cp.SpeedUp = nil, nil
	return &cp
}

// ShortWorker is a lane's label on a narrow screen: the end of the worker's name, which
// tells its slot and, by the end of its pid, its process.
func ShortWorker(w app.Worker) string {
	name := []rune(w.String())
	if len(name) <= 7 {
		return string(name)
	}
	return "…" + string(name[len(name)-6:])
}

// Frame is what a replay changes at one of a run's moments: the progress shown, the tally
// of tasks by worker process (a distributed run's page shows it), or both.
type Frame struct {
	AtMS    float64
	Summary *app.Summary       // nil: the progress shown does not change
	Procs   []app.ProcessTally // with NewProcs: the tally from then on
	// NewProcs says the tally changed.
	NewProcs bool
}

// FramesOf are the frames of run r's moments: the first whole, then one at each moment
// that changed what the page shows (a task's start changes only the tally, and only a
// distributed run's page shows it).
func FramesOf(r *app.Run, ms []app.Moment) []Frame {
	var out []Frame
	shown, tally := "", ""
	for i, m := range ms {
		f := Frame{AtMS: m.AtMS}
		if s := ProgressLine(r, m.Summary) + "|" + I(m.Summary.Done+m.Summary.Failed) + "|" + I(m.Summary.Failed) + "|" + I(m.Summary.Retries); i == 0 || s != shown {
			f.Summary, shown = &m.Summary, s
		}
		if r.Mode == app.Distributed {
			var b strings.Builder
			for _, p := range m.Procs {
				b.WriteString(p.Process + ":" + I(p.Tasks) + " ")
			}
			if t := b.String(); i == 0 || t != tally {
				f.Procs, f.NewProcs, tally = m.Procs, true, t
			}
		}
		if f.Summary != nil || f.NewProcs {
			out = append(out, f)
		}
	}
	return out
}
