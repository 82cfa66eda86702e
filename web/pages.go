package web

import (
	"bytes"
	"cmp"
	"context"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/templates"
)

// Page sizes.
const (
	tasksPerPage = 200 // rows of a run's task list; above it the list is paginated
	historyPage  = 20  // runs per page of /runs
	homeScan     = 100 // recent runs the home page reads to find the latest of each mode
	homeRecent   = 10  // recent runs listed on the home page
	pageTimeout  = 5 * time.Second
)

func (s *Server) registerPages() {
	s.route(fiber.MethodGet, "/", open, s.home)
	s.route(fiber.MethodPost, "/runs", launch, s.launchForm)
	s.route(fiber.MethodPost, "/race", launch, s.race)
	s.route(fiber.MethodGet, "/runs", open, s.runsPage)
	s.route(fiber.MethodGet, "/runs/:id", open, s.runPage)
	s.route(fiber.MethodGet, "/runs/:id/stream", open, s.htmlStream)
	s.route(fiber.MethodPost, "/runs/:id/cancel", admin, s.cancelForm)
	s.route(fiber.MethodPost, "/runs/:id/pin", admin, s.pinForm)
	s.route(fiber.MethodGet, "/compare", open, s.comparePage)
	s.route(fiber.MethodPost, "/compare/cancel", admin, s.cancelAllForm)
	s.route(fiber.MethodGet, "/partials/capacity", open, s.capacityPartial)
	s.route(fiber.MethodGet, "/workers", open, s.workersPage)
	s.route(fiber.MethodGet, "/runs/:id/workers", open, s.runWorkersPartial)
}

// render writes a page.
func (s *Server) render(c *fiber.Ctx, status int, page templ.Component) error {
	var buf bytes.Buffer
	if err := page.Render(c.UserContext(), &buf); err != nil {
		return err
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}

// page is the layout's view of a request.
func (s *Server) page(c *fiber.Ctx, title, nav string) templates.Page {
	return templates.Page{Title: title, Nav: nav, Embedded: s.cfg.Embedded, Present: c.Query("present") == "1",
		Access: s.access(c)}
}

// access is what the request's viewer may do, as the guard decides it.
func (s *Server) access(c *fiber.Ctx) templates.Access {
	admin := s.isAdmin(c)
	path := safeNext(string(c.Request().URI().RequestURI()))
	if c.Method() != fiber.MethodGet {
		path = "/" // a form's answer: back to the dashboard after signing in
	}
	return templates.Access{Open: s.cfg.AdminToken == "", Admin: admin, CanLaunch: admin || s.cfg.PublicLaunch, Path: path}
}

// pageError renders err as a page, with the status its code maps to.
func (s *Server) pageError(c *fiber.Ctx, err error) error {
	status := statusOf(app.ErrorCode(err))
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.logger.Error("page failed", "path", c.Path(), "err", err)
	}
	p := s.page(c, http.StatusText(status), "")
	return s.render(c, status, templates.ErrorPage(templates.ErrorView{Page: p, Status: status, Message: app.ErrorMessage(err)}))
}

// baseURL is where the audience reaches this server: PUBLIC_URL when set, else the address
// the request came in on. The Host header is believed only when it names that address or is
// listed in ALLOWED_HOSTS: anyone can send any Host, and share links and QR codes must not
// point where a stranger chose.
func (s *Server) baseURL(c *fiber.Ctx) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if c.Protocol() == "https" {
		scheme = "https"
	}
	local := c.Context().LocalAddr().String()
	host := strings.ToLower(string(c.Request().Host()))
	if host == local || slices.Contains(s.cfg.AllowedHosts, host) {
		return scheme + "://" + host
	}
	return scheme + "://" + local
}

// loopbackURL reports whether u (a base URL) is one that phones in the audience cannot reach.
func loopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := p.Hostname()
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && (ip.IsLoopback() || ip.IsUnspecified())
}

func pageContext(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), pageTimeout)
}

// home is the dashboard.
func (s *Server) home(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	v := templates.HomeView{Page: s.page(c, "Dashboard", "home"), Form: templates.DefaultForm}
	if err := s.fillHome(ctx, &v); err != nil {
		v.Error = app.ErrorMessage(err)
		return s.render(c, statusOf(app.ErrorCode(err)), templates.Home(v))
	}
	return s.render(c, http.StatusOK, templates.Home(v))
}

// fillHome reads what the dashboard shows: one read of the recent runs gives the recent
// list, the latest finished run of each mode and their sequential baselines.
func (s *Server) fillHome(ctx context.Context, v *templates.HomeView) error {
	v.Targets = append([]string{app.BuiltinTarget}, s.core.Config.Limits.Allowlist...)
	v.Capacity = s.capacity(ctx)
	runs, next, err := s.core.Runs.List(ctx, app.ListQuery{Limit: homeScan})
	if err != nil {
		return err
	}
	v.Recent = runs[:min(len(runs), homeRecent)]
	for _, m := range app.Modes {
		var latest *app.Run
		for _, r := range runs {
			if r.Mode == m && r.Status == app.StatusFinished {
				latest = r
				break
			}
		}
		if latest == nil && next != "" {
			found, _, err := s.core.Runs.List(ctx, app.ListQuery{Mode: m, Status: app.StatusFinished, Limit: 1})
			if err != nil {
				return err
			}
			if len(found) > 0 {
				latest = found[0]
			}
		}
		if latest == nil {
			continue
		}
		cp := *latest
		baseline := app.BaselineOf(&cp, runs)
		if baseline == nil && next != "" {
			baseline, _ = s.core.Runs.Baseline(ctx, &cp)
		}
		v.Results = append(v.Results, withBaseline(&cp, baseline))
	}
	return nil
}

// withBaseline sets r's speed-up as the API does, and its reduction, against baseline.
func withBaseline(r *app.Run, baseline *app.Run) templates.Result {
	return templates.Result{Run: r, Reduction: app.Summarize(r, baseline).ReductionPct}
}

// resultRow reads r's baseline and returns its results row.
func (s *Server) resultRow(ctx context.Context, r *app.Run) (templates.Result, *app.Run) {
	var baseline *app.Run
	if r.Status == app.StatusFinished {
		baseline, _ = s.core.Runs.Baseline(ctx, r)
	}
	return withBaseline(r, baseline), baseline
}

// capacity is the live workers of the queue.
func (s *Server) capacity(ctx context.Context) templates.Capacity {
	servers, err := s.core.Launcher.Servers(ctx)
	if err != nil {
		return templates.Capacity{Err: app.ErrorMessage(err)}
	}
	c := templates.Capacity{Workers: len(servers)}
	for _, sv := range servers {
		c.Slots = append(c.Slots, sv.Concurrency)
		c.Total += sv.Concurrency
	}
	return c
}

func (s *Server) capacityPartial(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	var buf bytes.Buffer
	if err := templates.CapacityLine(s.capacity(ctx)).Render(ctx, &buf); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}

// formPlan reads a launch form: delay in seconds, as on the page.
func formPlan(c *fiber.Ctx, mode app.Mode) (app.Plan, templates.LaunchForm, error) {
	f := templates.LaunchForm{
		Tasks:       strings.TrimSpace(c.FormValue("tasks", templates.DefaultForm.Tasks)),
		Delay:       strings.TrimSpace(c.FormValue("delay", templates.DefaultForm.Delay)),
		Parallelism: strings.TrimSpace(c.FormValue("parallelism", templates.DefaultForm.Parallelism)),
		Target:      strings.TrimSpace(c.FormValue("target", app.BuiltinTarget)),
		FailureRate: strings.TrimSpace(c.FormValue("failure_rate", "0")),
	}
	p := app.Plan{Mode: mode, Target: f.Target}
	var err error
	if p.Tasks, err = strconv.Atoi(f.Tasks); err != nil {
		return p, f, app.Invalid("tasks", "must be a whole number; got %q", f.Tasks)
	}
	delay, err := strconv.ParseFloat(f.Delay, 64)
	if err != nil || math.IsNaN(delay) || math.IsInf(delay, 0) {
		return p, f, app.Invalid("delay", "must be a number of seconds; got %q", f.Delay)
	}
	// Far outside any limit is said as typed, before milliseconds could overflow.
	if delay < 0 || delay > 1e9 {
		return p, f, app.Invalid("delay", "must be a number of seconds within MAX_DELAY; got %q", f.Delay)
	}
	p.DelayMS = int64(math.Round(delay * 1000))
	if mode == app.Concurrent {
		if p.Parallelism, err = strconv.Atoi(f.Parallelism); err != nil {
			return p, f, app.Invalid("parallelism", "must be a whole number; got %q", f.Parallelism)
		}
	}
	if f.FailureRate != "" {
		if p.FailureRate, err = strconv.ParseFloat(f.FailureRate, 64); err != nil {
			return p, f, app.Invalid("failure_rate", "must be a number between 0 and 1; got %q", f.FailureRate)
		}
	}
	return p, f, nil
}

// launchForm launches a run from a form and shows it; an error is shown on the dashboard.
func (s *Server) launchForm(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	p, form, err := formPlan(c, app.Mode(c.FormValue("mode")))
	var r *app.Run
	if err == nil {
		r, err = s.core.Launcher.Launch(ctx, p)
	}
	if err != nil {
		return s.homeWithError(c, ctx, form, err)
	}
	return c.Redirect("/runs/"+r.ID, http.StatusSeeOther)
}

// race launches the same plan sequentially and distributed, and opens them side by side.
func (s *Server) race(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	p, form, err := formPlan(c, app.Sequential)
	if err != nil {
		return s.homeWithError(c, ctx, form, err)
	}
	// Distributed first: it is the launch that can be refused (no live worker).
	dp := p
	dp.Mode = app.Distributed
	dist, err := s.core.Launcher.Launch(ctx, dp)
	if err != nil {
		return s.homeWithError(c, ctx, form, err)
	}
	seq, err := s.core.Launcher.Launch(ctx, p)
	if err != nil {
		s.core.Launcher.Cancel(context.WithoutCancel(ctx), dist.ID)
		return s.homeWithError(c, ctx, form, err)
	}
	return c.Redirect("/compare?runs="+seq.ID+","+dist.ID, http.StatusSeeOther)
}

func (s *Server) homeWithError(c *fiber.Ctx, ctx context.Context, form templates.LaunchForm, err error) error {
	v := templates.HomeView{Page: s.page(c, "Dashboard", "home"), Form: form, Error: app.ErrorMessage(err)}
	if ferr := s.fillHome(ctx, &v); ferr != nil {
		s.logger.Warn("dashboard: cannot read runs", "err", ferr)
	}
	return s.render(c, statusOf(app.ErrorCode(err)), templates.Home(v))
}

// runsPage is the history, newest first, filtered and paginated with the API's cursor.
func (s *Server) runsPage(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	v := templates.RunsView{Page: s.page(c, "Runs", "runs"), Mode: c.Query("mode"), Status: c.Query("status"), Cursor: c.Query("cursor")}
	var err error
	switch {
	case v.Mode != "" && !validMode(v.Mode):
		err = app.Invalid("mode", "must be one of sequential, concurrent, distributed; got %q", v.Mode)
	case v.Status != "" && !validStatus(v.Status):
		err = app.Invalid("status", "must be one of %s; got %q", strings.Join(app.RunStatuses, ", "), v.Status)
	case v.Cursor != "" && !app.ValidRunID(v.Cursor):
		err = app.Invalid("cursor", "must be a run ID from a previous page; got %q", v.Cursor)
	}
	if err == nil {
		v.Runs, v.Next, err = s.core.Runs.List(ctx, app.ListQuery{Mode: app.Mode(v.Mode), Status: v.Status, Limit: historyPage, Cursor: v.Cursor})
	}
	if err != nil {
		v.Error = app.ErrorMessage(err)
		return s.render(c, statusOf(app.ErrorCode(err)), templates.Runs(v))
	}
	return s.render(c, http.StatusOK, templates.Runs(v))
}

func validMode(m string) bool {
	for _, v := range app.Modes {
		if string(v) == m {
			return true
		}
	}
	return false
}

func validStatus(st string) bool {
	for _, v := range app.RunStatuses {
		if v == st {
			return true
		}
	}
	return false
}

// runView reads a run and its events into what its page shows.
func (s *Server) runView(ctx context.Context, id string, page int) (*templates.RunView, error) {
	tl, evs, err := s.runEvents(ctx, id)
	if err != nil {
		return nil, err
	}
	r := tl.Run
	v := &templates.RunView{Run: r, Pinned: r.Pinned, Lanes: lanesOf(r, evs), ScaleMS: templates.ScaleOf(r),
		Procs: procTallies(tl.Tasks), Lost: templates.LostWorkersOf(tl.Tasks)}
	if r.Mode == app.Distributed {
		v.Queue = s.core.Config.Queue
	}
	if n := len(evs); n > 0 {
		v.After = evs[n-1].ID
	}
	v.Baseline = tl.Compared
	v.Pages = max(1, (len(tl.Tasks)+tasksPerPage-1)/tasksPerPage)
	v.PageNo = min(max(page, 1), v.Pages)
	v.First = (v.PageNo - 1) * tasksPerPage
	v.Tasks = tl.Tasks[v.First:min(len(tl.Tasks), v.First+tasksPerPage)]
	for _, t := range tl.Tasks {
		if t.State == app.TaskStateRunning {
			v.Running++
		}
	}
	return v, nil
}

// procTallies counts the tasks each worker process took, in order of host and pid; a
// process holding an orphaned task is lost.
func procTallies(tasks []*app.Task) []templates.ProcTally {
	type proc struct {
		w     app.Worker
		tally templates.ProcTally
	}
	at := map[string]int{}
	var procs []proc
	for _, t := range tasks {
		if t.Worker == nil {
			continue
		}
		name := t.Worker.Process()
		i, ok := at[name]
		if !ok {
			i = len(procs)
			at[name] = i
			procs = append(procs, proc{w: *t.Worker, tally: templates.ProcTally{Process: name}})
		}
		procs[i].tally.Tasks++
		procs[i].tally.Lost = procs[i].tally.Lost || t.Orphaned != nil
	}
	slices.SortStableFunc(procs, func(a, b proc) int { return compareWorkers(a.w, b.w, false) })
	out := make([]templates.ProcTally, len(procs))
	for i, p := range procs {
		out[i] = p.tally
	}
	return out
}

// compareWorkers orders workers by host, then pid, then (with slots) slot.
func compareWorkers(a, b app.Worker, slots bool) int {
	if c := cmp.Compare(a.Host, b.Host); c != 0 {
		return c
	}
	if c := cmp.Compare(a.PID, b.PID); c != 0 || !slots {
		return c
	}
	return cmp.Compare(a.Slot, b.Slot)
}

// lanesOf lays a run's attempts out in lanes, one per worker slot, in slot order process by
// process, as a worker's slots are numbered. An ended attempt is placed by its end time and
// duration, as the stream places it.
func lanesOf(r *app.Run, evs []*app.Event) []templates.Lane {
	type slot struct {
		w    app.Worker
		lane templates.Lane
	}
	var slots []slot
	laneOf := map[string]int{}
	type key struct{ index, attempt int }
	where := map[key][2]int{} // lane, bar
	for _, e := range evs {
		if e.Terminal() {
			break
		}
		if e.Index == nil || e.Worker == nil {
			continue
		}
		w := e.Worker.String()
		li, ok := laneOf[w]
		if !ok {
			li = len(slots)
			laneOf[w] = li
			slots = append(slots, slot{w: *e.Worker, lane: templates.Lane{Worker: w}})
		}
		k := key{*e.Index, e.Attempt}
		switch e.Type {
		case app.TaskStarted:
			where[k] = [2]int{li, len(slots[li].lane.Bars)}
			slots[li].lane.Bars = append(slots[li].lane.Bars, startedBar(r, e))
		case app.TaskFinished, app.TaskFailed:
			b := endedBar(r, e)
			if at, ok := where[k]; ok {
				slots[at[0]].lane.Bars[at[1]] = b
			} else {
				slots[li].lane.Bars = append(slots[li].lane.Bars, b)
			}
		}
	}
	slices.SortStableFunc(slots, func(a, b slot) int { return compareWorkers(a.w, b.w, true) })
	lanes := make([]templates.Lane, len(slots))
	for i, s := range slots {
		lanes[i] = s.lane
	}
	return lanes
}

func startedBar(r *app.Run, e *app.Event) templates.Bar {
	return templates.Bar{Index: *e.Index, Attempt: e.Attempt, State: app.TaskStateRunning,
		StartMS: templates.SinceMS(r, e.At), DurMS: float64(r.DelayMS)}
}

func endedBar(r *app.Run, e *app.Event) templates.Bar {
	var dur float64
	if e.DurationMS != nil {
		dur = *e.DurationMS
	}
	state := app.TaskStateDone
	if e.Type == app.TaskFailed {
		state = app.TaskStateFailed
		if e.Retry != nil && *e.Retry {
			state = app.TaskStateRetrying
		}
	}
	return templates.Bar{Index: *e.Index, Attempt: e.Attempt, State: state,
		StartMS: math.Max(0, templates.SinceMS(r, e.At)-dur), DurMS: dur}
}

// runPage shows one run, live or finished, from its record and event log.
func (s *Server) runPage(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	page, _ := strconv.Atoi(c.Query("page"))
	v, err := s.runView(ctx, c.Params("id"), page)
	if err != nil {
		return s.pageError(c, err)
	}
	v.Present = c.Query("present") == "1"
	v.URL = s.baseURL(c) + "/runs/" + v.Run.ID
	v.QR = qrSVG(v.URL)
	v.Loopback = loopbackURL(v.URL)
	v.OGLine = templates.OGLine(v.Run)
	p := s.page(c, templates.ModeName(v.Run.Mode)+" run "+v.Run.ID[len(v.Run.ID)-8:], "runs")
	p.Title = v.OGLine
	p.Description = v.OGLine + " · " + templates.PlanLine(v.Run)
	p.URL = v.URL
	p.Scripts = []string{"js/replay.js"}
	return s.render(c, http.StatusOK, templates.RunPage(p, v))
}

// runWorkersPartial is what a live distributed run's page refreshes every few seconds: the
// lost workers and the tasks each worker took, one element a line.
func (s *Server) runWorkersPartial(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	tl, err := s.timeline(ctx, c.Params("id"))
	if err != nil {
		return s.pageError(c, err)
	}
	var buf bytes.Buffer
	for _, part := range []templ.Component{
		templates.LostWorkers(tl.Run.ID, templates.LostWorkersOf(tl.Tasks)),
		templates.ProcTallies(tl.Run.ID, procTallies(tl.Tasks)),
	} {
		var b bytes.Buffer
		if err := part.Render(ctx, &b); err != nil {
			return err
		}
		buf.Write(bytes.ReplaceAll(bytes.ReplaceAll(b.Bytes(), []byte("\r"), nil), []byte("\n"), []byte(" ")))
		buf.WriteByte('\n')
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}

// cancelForm cancels a run from its page and shows the page again.
func (s *Server) cancelForm(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	id := strings.Clone(c.Params("id"))
	if _, err := s.core.Launcher.Cancel(ctx, id); err != nil {
		return s.pageError(c, err)
	}
	return c.Redirect("/runs/"+id, http.StatusSeeOther)
}

// pinForm pins or unpins a run from its page.
func (s *Server) pinForm(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	id := strings.Clone(c.Params("id"))
	if !app.ValidRunID(id) {
		return s.pageError(c, app.Errorf(app.ENotFound, "run %q not found: not a run ID", id))
	}
	if err := s.core.Runs.Pin(ctx, id, c.FormValue("pinned", "1") == "1"); err != nil {
		return s.pageError(c, err)
	}
	return c.Redirect("/runs/"+id, http.StatusSeeOther)
}

// compareIDs parses runs=a,b[,c].
func compareIDs(q string) ([]string, error) {
	var ids []string
	for id := range strings.SplitSeq(q, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) > 3 {
		return nil, app.Invalid("runs", "compares at most 3 runs; got %d", len(ids))
	}
	for _, id := range ids {
		if !app.ValidRunID(id) {
			return nil, app.Invalid("runs", "must be run IDs separated by commas; got %q", id)
		}
	}
	return ids, nil
}

// comparePage shows runs side by side on one time axis.
func (s *Server) comparePage(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	v := templates.CompareView{Page: s.page(c, "Compare", "compare"), IDs: c.Query("runs")}
	ids, err := compareIDs(v.IDs)
	for _, id := range ids {
		if err != nil {
			break
		}
		var rv *templates.RunView
		if rv, err = s.runView(ctx, id, 1); err == nil {
			v.Runs = append(v.Runs, rv)
			v.ScaleMS = math.Max(v.ScaleMS, rv.ScaleMS)
			res, _ := s.resultRow(ctx, rv.Run)
			v.Results = append(v.Results, res)
		}
	}
	if err != nil {
		v.Runs, v.Results = nil, nil
		v.Error = app.ErrorMessage(err)
		return s.render(c, statusOf(app.ErrorCode(err)), templates.Compare(v))
	}
	if len(v.Runs) > 0 {
		parts := make([]string, len(v.Runs))
		for i, r := range v.Runs {
			parts[i] = templates.ModeName(r.Run.Mode)
		}
		v.Page.Title = "Compare: " + strings.Join(parts, " vs ")
	}
	return s.render(c, http.StatusOK, templates.Compare(v))
}

// cancelAllForm cancels every compared run that still runs.
func (s *Server) cancelAllForm(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	q := strings.Clone(c.FormValue("runs"))
	ids, err := compareIDs(q)
	if err != nil {
		return s.pageError(c, err)
	}
	for _, id := range ids {
		_, err := s.core.Launcher.Cancel(ctx, id)
		if err != nil && app.ErrorCode(err) != app.EConflict {
			return s.pageError(c, err)
		}
	}
	return c.Redirect("/compare?runs="+strings.Join(ids, ","), http.StatusSeeOther)
}
