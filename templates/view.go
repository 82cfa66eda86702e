// Package templates renders taskrace's pages and the HTML fragments of its live streams.
// The web layer builds the view values below from the domain; the components only format
// and lay them out.
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

// Page is what the layout needs to know about every page.
type Page struct {
	Title       string // the <title>, also the Open Graph title
	Nav         string // the active navigation entry: home, runs, compare
	Embedded    bool   // Redis is embedded: say that data lives in memory
	Present     bool   // presentation mode: large type, no chrome
	Description string // Open Graph description; empty for no Open Graph tags
	URL         string // the page's absolute URL, for Open Graph
	Scripts     []string
	Access      Access
}

// Access is what the viewer may do, for the navigation and for which buttons a page offers.
// The server enforces the same rules on every request; the page only avoids offering what
// would be refused.
type Access struct {
	Open      bool   // no ADMIN_TOKEN: everyone may do everything
	Admin     bool   // the viewer is the admin (always, in open mode)
	CanLaunch bool   // the viewer may launch runs: the admin, or anyone with PUBLIC_LAUNCH
	Path      string // the page's path and query, where signing in returns to
}

// LoginURL is the sign-in page, returning to path.
func LoginURL(path string) string {
	if path == "" {
		path = "/"
	}
	return "/login?next=" + url.QueryEscape(path)
}

// Asset is the content-hashed URL of a static file.
func Asset(name string) string { return static.Path(name) }

// Lane is one worker slot of a run's timeline with the attempts it executed.
type Lane struct {
	Worker string // host:pid/slot
	Bars   []Bar
}

// Bar is one attempt of a task on the timeline, in milliseconds since the run was created.
type Bar struct {
	Index   int
	Attempt int
	State   string // running, done, failed, retrying (an attempt that failed and retries)
	StartMS float64
	DurMS   float64 // for a running attempt: the expected delay
}

// RunView is a run page, or one run of the compare page.
type RunView struct {
	Run      *app.Run
	Tasks    []*app.Task // the window of tasks the page lists
	First    int         // index of Tasks[0]
	PageNo   int         // 1-based page of the task list
	Pages    int
	Lanes    []Lane
	ScaleMS  float64 // the timeline's extent, for an ended run
	After    string  // the last event the page shows; the stream resumes after it
	Running  int     // tasks running when rendered
	Baseline *app.Run
	URL      string // the run's absolute URL, to share
	QR       string // SVG of a QR code of URL
	Loopback bool   // URL is this machine's loopback: phones cannot open it
	OGLine   string
	Present  bool
	Pinned   bool
	Error    string
	Queue    string      // the asynq queue of a distributed run's tasks, for links to the monitor
	Procs    []ProcTally // how many tasks each worker process took
	Lost     []LostWorker
}

// ProcTally is how many of a run's tasks one worker process took (ran last, or is running).
type ProcTally struct {
	Process string // host:pid
	Tasks   int
	Lost    bool // it stopped heartbeating with some of the run's tasks in hand
}

// LostWorker is a worker process that is gone with some of a run's tasks in hand.
type LostWorker struct {
	Process    string
	Tasks      []int
	RetryAfter app.Time // earliest retry of its leased tasks; zero when asynq requeued them all
	RetryBy    app.Time
}

// LostWorkersOf gathers a run's orphaned tasks by worker process.
func LostWorkersOf(tasks []*app.Task) []LostWorker {
	var out []LostWorker
	at := map[string]int{}
	for _, t := range tasks {
		o := t.Orphaned
		if o == nil {
			continue
		}
		i, ok := at[o.Worker]
		if !ok {
			i = len(out)
			at[o.Worker] = i
			out = append(out, LostWorker{Process: o.Worker})
		}
		l := &out[i]
		l.Tasks = append(l.Tasks, t.Index)
		if o.RetryAfter != nil && (l.RetryAfter.IsZero() || o.RetryAfter.Before(l.RetryAfter.Time)) {
			l.RetryAfter = *o.RetryAfter
		}
		if o.RetryBy != nil && o.RetryBy.After(l.RetryBy.Time) {
			l.RetryBy = *o.RetryBy
		}
	}
	return out
}

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

// Live reports whether the page follows the run's stream.
func (v *RunView) Live() bool { return !v.Run.Ended() }

// Result is one row of a results table.
type Result struct {
	Run       *app.Run
	Reduction *float64 // against the baseline's wall time, percent
}

// HomeView is the home page.
type HomeView struct {
	Page     Page
	Form     LaunchForm
	Capacity Capacity
	Results  []Result
	Recent   []*app.Run
	Targets  []string
	Error    string
}

// LaunchForm is the launch form's values, as shown (and as re-shown after an error).
type LaunchForm struct {
	Tasks       string
	Delay       string // seconds
	Parallelism string
	Target      string
	FailureRate string
}

// DefaultForm is the seed's experiment: 10 tasks of 3 s.
var DefaultForm = LaunchForm{Tasks: "10", Delay: "3", Parallelism: "5", Target: app.BuiltinTarget, FailureRate: "0"}

// Capacity is the live workers of the queue.
type Capacity struct {
	Workers int
	Slots   []int // concurrency of each worker
	Total   int
	Err     string
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

// RunsView is the history page.
type RunsView struct {
	Page   Page
	Runs   []*app.Run
	Mode   string
	Status string
	Cursor string
	Next   string
	Error  string
}

// CompareView is the compare page.
type CompareView struct {
	Page    Page
	Runs    []*RunView
	IDs     string // a,b[,c]
	Results []Result
	ScaleMS float64
	Error   string
}

// AnyLive reports whether some compared run is still running.
func (v *CompareView) AnyLive() bool {
	for _, r := range v.Runs {
		if r.Live() {
			return true
		}
	}
	return false
}

// WorkersView is the workers page: the live asynq servers of the run queue.
type WorkersView struct {
	Page     Page
	Servers  []WorkerServer
	Capacity int
	At       time.Time
	Error    string
}

// WorkerServer is one live asynq server, as the workers page shows it.
type WorkerServer struct {
	Host        string
	PID         int
	Concurrency int
	Queues      []string
	Started     time.Time
	Status      string
	Active      []ActiveTask
}

// ActiveTask is a task a worker is executing, as of its last heartbeat.
type ActiveTask struct {
	TaskID string
	RunID  string // empty for a task that is not taskrace's
	Index  int
}

// WorkersSummary is "2 workers · 10 slots · 3 tasks active".
func (v WorkersView) WorkersSummary() string {
	active := 0
	for _, s := range v.Servers {
		active += len(s.Active)
	}
	return plural(len(v.Servers), "worker", "workers") + " · " + plural(v.Capacity, "slot", "slots") + " · " +
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

// ErrorView is an error page.
type ErrorView struct {
	Page    Page
	Status  int
	Message string
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// Seconds formats milliseconds as seconds with two decimals: "6.03 s".
func Seconds(ms float64) string { return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s" }

// DelaySeconds formats a plan's delay: "3 s", "0.1 s".
func DelaySeconds(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64) + " s"
}

// Wall is the run's wall time, or "—" while it runs.
func Wall(r *app.Run) string {
	if r.WallMS == nil {
		return "—"
	}
	return Seconds(*r.WallMS)
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
func F(f float64) string { return strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64) }

// I formats an int.
func I(n int) string { return strconv.Itoa(n) }

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

// ModeKey is the short colour key of a mode, as in tailwind.config.js.
func ModeKey(m app.Mode) string {
	switch m {
	case app.Sequential:
		return "seq"
	case app.Concurrent:
		return "conc"
	}
	return "dist"
}

// PlanLine describes a plan: "10 tasks × 3 s · parallelism 5".
func PlanLine(r *app.Run) string {
	s := plural(r.Tasks, "task", "tasks") + " × " + DelaySeconds(r.DelayMS) + " · parallelism " + strconv.Itoa(r.Parallelism)
	if r.Target != app.BuiltinTarget {
		s += " · " + r.Target
	}
	if r.FailureRate > 0 {
		s += " · failure rate " + strconv.FormatFloat(r.FailureRate, 'f', -1, 64)
	}
	return s
}

// OGLine is the one-line summary for link previews: "Distributed · 10 tasks · 6.03 s · ×5.0".
func OGLine(r *app.Run) string {
	s := ModeName(r.Mode) + " · " + plural(r.Tasks, "task", "tasks")
	if r.WallMS != nil {
		s += " · " + Seconds(*r.WallMS)
	} else {
		s += " × " + DelaySeconds(r.DelayMS) + " · " + r.Status
	}
	if r.SpeedUp != nil && *r.SpeedUp > 0 {
		s += " · " + SpeedUp(r.SpeedUp)
	}
	return s
}

// LaneID is the element ID of a worker's lane in a run's timeline: stable for the worker,
// so a fragment rendered for any viewer lands in the right lane.
func LaneID(runID, worker string) string {
	h := fnv.New32a()
	h.Write([]byte(worker))
	return "lane-" + runID + "-" + strconv.FormatUint(uint64(h.Sum32()), 36)
}

// TrackID is the element ID of the bars of a lane.
func TrackID(runID, worker string) string { return "track" + LaneID(runID, worker)[4:] }

// BarID is the element ID of one attempt's bar.
func BarID(runID string, index, attempt int) string {
	return "bar-" + runID + "-" + strconv.Itoa(index) + "-" + strconv.Itoa(attempt)
}

// RowID is the element ID of a task's row.
func RowID(runID string, index int) string { return "task-" + runID + "-" + strconv.Itoa(index) }

// TaskStateOrphaned is how a task whose worker process is gone reads on the page; it is
// not a state of the domain, which still has it running until asynq retries it.
const TaskStateOrphaned = "orphaned"

// ShownState is a task's state as the page shows it: orphaned while its worker is lost.
func ShownState(t *app.Task) string {
	if t.Orphaned != nil {
		return TaskStateOrphaned
	}
	return t.State
}

// HourClock formats an event time as 15:04:05, in UTC.
func HourClock(t *app.Time) string {
	if t == nil || t.IsZero() {
		return "—"
	}
	return t.UTC().Format("15:04:05")
}

// MonitorTaskURL is a task's page in the embedded asynqmon (its route
// /queues/:qname/tasks/:taskId under /monitor).
func MonitorTaskURL(queue, taskID string) string {
	return "/monitor/queues/" + url.PathEscape(queue) + "/tasks/" + url.PathEscape(taskID)
}

// StateWord is how a state reads next to its icon.
func StateWord(state string) string { return state }

// StateIcon is a glyph per state, so state is never told by colour alone.
func StateIcon(state string) string {
	switch state {
	case app.TaskStateQueued:
		return "…"
	case app.TaskStateRunning:
		return "▶"
	case app.TaskStateDone:
		return "✓"
	case app.TaskStateFailed:
		return "✕"
	case app.TaskStateRetrying:
		return "↻"
	case TaskStateOrphaned, "lost":
		return "⚠"
	}
	return "•"
}

// RunStatusIcon is a glyph per run status.
func RunStatusIcon(status string) string {
	switch status {
	case app.StatusRunning:
		return "▶"
	case app.StatusFinished:
		return "✓"
	case app.StatusCanceled:
		return "■"
	}
	return "!"
}

// RunStatusBadge is the badge class of a run status.
func RunStatusBadge(status string) string {
	switch status {
	case app.StatusRunning:
		return "badge badge-running"
	case app.StatusFinished:
		return "badge badge-done"
	case app.StatusCanceled:
		return "badge badge-queued"
	}
	return "badge badge-failed"
}

// WorkerName is a task's worker, or "—".
func WorkerName(w *app.Worker) string {
	if w == nil {
		return "—"
	}
	return w.String()
}

// SinceMS is t's offset from the run's creation, in milliseconds.
func SinceMS(r *app.Run, t app.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.Sub(r.CreatedAt.Time).Microseconds()) / 1000
}

// Elapsed is what the run's clock shows when rendered: its wall time once ended.
func Elapsed(r *app.Run) string {
	if r.WallMS != nil {
		return Seconds(*r.WallMS)
	}
	return "—"
}

// ScaleOf is a timeline's extent in milliseconds for a run: its wall or ideal time,
// whichever is longer, with a margin.
func ScaleOf(r *app.Run) float64 {
	s := r.IdealMS
	if r.WallMS != nil {
		s = math.Max(s, *r.WallMS)
	}
	if s <= 0 {
		s = 1000
	}
	return s
}

// DurationMS is a *float64 of d, for Ms.
func DurationMS(d time.Duration) *float64 {
	f := float64(d.Microseconds()) / 1000
	return &f
}

// BarWidth is a row bar's width in percent of the expected delay, capped at 100.
func BarWidth(t *app.Task, delayMS int64) string {
	switch t.State {
	case app.TaskStateDone, app.TaskStateFailed:
		return "100%"
	}
	return "0%"
}

// ChartMax is the longest time of a results chart, so bars share a scale.
func ChartMax(rs []Result) float64 {
	m := 1.0
	for _, r := range rs {
		if r.Run.WallMS != nil {
			m = math.Max(m, *r.Run.WallMS)
		}
		m = math.Max(m, r.Run.IdealMS)
	}
	return m
}

// Pct is a/b in percent of a chart's width, for SVG attributes.
func Pct(a, b float64) string {
	if b <= 0 {
		return "0"
	}
	return F(100 * a / b)
}

// Axis returns tick positions for a time axis of extent ms: about five round steps.
func Axis(ms float64) []float64 {
	if ms <= 0 {
		return nil
	}
	steps := []float64{1, 2, 5, 10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if ms/s <= 6 {
			step = s
			break
		}
	}
	var ticks []float64
	for t := 0.0; t <= ms+1e-9; t += step {
		ticks = append(ticks, t)
	}
	return ticks
}

// AxisLabel formats a tick: "0 s", "1.5 s".
func AxisLabel(ms float64) string {
	return strconv.FormatFloat(ms/1000, 'f', -1, 64) + " s"
}

// Bool01 is "1" or "0".
func Bool01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// WallOf is the run's wall time in milliseconds, 0 while it runs.
func WallOf(r *app.Run) float64 {
	if r.WallMS == nil {
		return 0
	}
	return *r.WallMS
}

// ScaleOfWall is the run's wall time, or its ideal time when it has none.
func ScaleOfWall(r *app.Run) float64 {
	if r.WallMS == nil {
		return r.IdealMS
	}
	return *r.WallMS
}

// ReductionOf is the run's time reduction in percent against its baseline's wall time, or
// against tasks × delay without one.
func ReductionOf(r *app.Run, baseline *app.Run) *float64 {
	if r.WallMS == nil || r.Status != app.StatusFinished {
		return nil
	}
	base := float64(r.Tasks) * float64(r.DelayMS)
	if baseline != nil && baseline.WallMS != nil {
		base = *baseline.WallMS
	}
	v := app.Reduction(*r.WallMS, base)
	return &v
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

// Class names are spelled out in full here so that Tailwind, which scans these files,
// keeps them in the built CSS.

// StateBadgeClass is the badge class of a task state.
func StateBadgeClass(state string) string {
	switch state {
	case app.TaskStateRunning:
		return "badge badge-running"
	case app.TaskStateDone:
		return "badge badge-done"
	case app.TaskStateFailed:
		return "badge badge-failed"
	case app.TaskStateRetrying:
		return "badge badge-retrying"
	case TaskStateOrphaned, "lost":
		return "badge badge-orphaned"
	}
	return "badge badge-queued"
}

// RowBarClass is the class of a task row's bar.
func RowBarClass(state string) string {
	switch state {
	case app.TaskStateRunning:
		return "rowbar rowbar-fill h-2 rounded bar-running"
	case app.TaskStateDone:
		return "rowbar h-2 rounded bar-done"
	case app.TaskStateFailed:
		return "rowbar h-2 rounded bar-failed"
	case app.TaskStateRetrying:
		return "rowbar h-2 rounded bar-retrying"
	case TaskStateOrphaned:
		return "rowbar h-2 rounded bar-failed"
	}
	return "rowbar h-2 rounded bar-queued"
}

// GanttClass is the class of an attempt's bar on the timeline.
func GanttClass(state string) string {
	switch state {
	case app.TaskStateRunning:
		return "gbar gbar-running"
	case app.TaskStateFailed:
		return "gbar gbar-failed"
	case app.TaskStateRetrying:
		return "gbar gbar-retrying"
	}
	return "gbar gbar-done"
}

// ModeDotClass is the colour dot of a mode.
func ModeDotClass(m app.Mode) string {
	switch m {
	case app.Sequential:
		return "inline-block h-2.5 w-2.5 rounded-full bg-seq-500"
	case app.Concurrent:
		return "inline-block h-2.5 w-2.5 rounded-full bg-conc-500"
	}
	return "inline-block h-2.5 w-2.5 rounded-full bg-dist-500"
}

// ModeFillClass is the fill of a mode's bar in a chart.
func ModeFillClass(m app.Mode) string {
	switch m {
	case app.Sequential:
		return "fill-seq-600 dark:fill-seq-400"
	case app.Concurrent:
		return "fill-conc-600 dark:fill-conc-400"
	}
	return "fill-dist-600 dark:fill-dist-400"
}
