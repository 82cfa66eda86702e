// Package templates renders taskrace's pages and the HTML fragments of its live streams.
// The web layer builds the view values below from the domain (a run's projection, above
// all); the components only format and lay them out. view.go holds the view types,
// format.go the formatters, style.go the class names and icons.
package templates

import (
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/live"
)

// Page is what the layout needs to know about every page.
type Page struct {
	Title       string // the <title>, also the Open Graph title
	Nav         string // the active navigation entry: home, runs, compare
	Embedded    bool   // Redis is embedded: say that data lives in memory
	Present     bool   // presentation mode: large type, no chrome
	Description string // Open Graph description; empty for no Open Graph tags
	URL         string // the page's absolute URL, for Open Graph
	TitleID     string // the <title>'s element ID, for a page whose stream retitles it
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

// RunView is a run page, or one run of the compare page: the run as its events tell it.
type RunView struct {
	P        *app.Projection
	Tasks    []*app.Task // the window of tasks the page lists
	First    int         // index of Tasks[0]
	PageNo   int         // 1-based page of the task list
	Pages    int
	After    string // the last event the page shows; the stream resumes after it
	URL      string // the run's absolute URL, to share
	QR       string // SVG of a QR code of URL
	Loopback bool   // URL is this machine's loopback: phones cannot open it
	Present  bool
	Error    string
	Queue    string             // the asynq queue of a distributed run's tasks, for links to the monitor
	Procs    []app.ProcessTally // how many tasks each worker process took
	Lost     []app.LostWorker
}

// Run is the run as its events tell it.
func (v *RunView) Run() *app.Run { return v.P.Run }

// Live reports whether the page follows the run's stream.
func (v *RunView) Live() bool { return !v.P.Ended }

// StreamURL is where the page follows the run: its stream, with the page's window of tasks.
func (v *RunView) StreamURL() string { return StreamURL(v.P.Run.ID, v.PageNo) }

// Result is one row of a results table: a run's record and its summary against its baseline.
type Result struct {
	Run      *app.Run
	Sum      app.Summary
	Baseline *app.Run // nil: compared with tasks × delay
}

// HomeView is the home page.
type HomeView struct {
	Page     Page
	Form     LaunchForm
	Capacity Capacity
	Compared *app.Plan // the plan whose latest runs Results compares; nil without any
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

// Capacity is the live workers of the queue, or why they cannot be read.
type Capacity struct {
	app.Capacity
	Err string
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
	ScaleMS float64 // the shared time axis of the runs' timelines
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

// WorkersView is the workers page: the live worker processes.
type WorkersView struct {
	Page     Page
	Procs    []WorkerProcess
	Capacity int // slots on the run queue
	At       time.Time
	Error    string
}

// WorkerView is one worker process's page.
type WorkerView struct {
	Page   Page
	Name   string // host:pid
	Proc   *WorkerProcess
	Recent []live.Task // its latest tasks, when the viewer may read them
	At     time.Time
	Error  string
}

// ActiveTask is a task a worker is executing.
type ActiveTask struct {
	TaskID  string
	Type    string
	Queue   string
	RunID   string // empty for a task that is not taskrace's
	Index   int
	Started time.Time
	Link    bool // its recorded task's page may be linked
}

// ErrorView is an error page.
type ErrorView struct {
	Page    Page
	Status  int
	Message string
}

// Race is the sequential run of a race (a sequential and a distributed run of the same
// work, as the Race button launches them), for a Race again button; nil for other pairs.
func (v *CompareView) Race() *app.Run {
	if len(v.Runs) != 2 {
		return nil
	}
	a, b := v.Runs[0].Run(), v.Runs[1].Run()
	if a.Mode != app.Sequential || b.Mode != app.Distributed || a.Tasks != b.Tasks || a.DelayMS != b.DelayMS ||
		a.Target != b.Target || a.FailureRate != b.FailureRate {
		return nil
	}
	return a
}

// Shortcut is a key that presses a button of the page.
type Shortcut struct {
	Key    string // the KeyboardEvent.key that triggers it
	Does   string // what it does, as the list of shortcuts says it
	Target string // a CSS selector: the first visible, enabled element it matches is clicked
}

// Shortcuts are the keys of the dashboard and run pages, for a speaker at a projector. The
// page (static/js/keys.js) reads them from the list the layout renders, so this is their
// one home; a key does nothing on a page without its button.
var Shortcuts = []Shortcut{
	{"s", "Launch a sequential run", `[data-launch="sequential"]`},
	{"c", "Launch a concurrent run", `[data-launch="concurrent"]`},
	{"d", "Launch a distributed run", `[data-launch="distributed"]`},
	{"r", "Race: sequential against distributed", `[data-launch="race"]`},
	{"a", "Run again (race again on a race)", `[data-run-again]`},
	{"p", "Replay the run at 4×", `[data-replay="4"]`},
}

// PresentURL is path in presentation mode.
func PresentURL(path string) string {
	if strings.Contains(path, "?") {
		return path + "&present=1"
	}
	return path + "?present=1"
}

// Keep is path with the page's presentation mode kept: where its forms post and its links
// lead stays in presentation mode.
func (p Page) Keep(path string) string {
	if p.Present {
		return PresentURL(path)
	}
	return path
}

// RaceAgain is the form that races the compared runs' work again, nil when they are not a
// race.
func (v *CompareView) RaceAgain() templ.Component {
	if r := v.Race(); r != nil {
		return RunAgain(r, v.Page.Keep("/race"), "Race again")
	}
	return nil
}

// URL is the compare page of the runs shown, out of presentation mode.
func (v *CompareView) URL() string {
	ids := make([]string, len(v.Runs))
	for i, r := range v.Runs {
		ids[i] = r.Run().ID
	}
	return "/compare?runs=" + strings.Join(ids, ",")
}

// PageURL is the run's page at the page of its task list shown, out of presentation mode.
func (v *RunView) PageURL() string {
	if v.PageNo <= 1 {
		return "/runs/" + v.P.Run.ID
	}
	return TaskPageURL(v.P.Run.ID, v.PageNo, false)
}
