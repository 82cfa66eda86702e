package web

import (
	"bytes"
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

	// liveMargin is how far behind now a live run's page is drawn: about what an event takes
	// to reach the page, so that nothing drawn runs past an event still on its way. The
	// page's clock (static/js/live.js, MARGIN_MS) keeps the same margin.
	liveMargin = 100 * time.Millisecond
)

func (s *Server) registerPages() {
	s.route(fiber.MethodGet, "/", open, s.home)
	s.route(fiber.MethodPost, "/runs", launch, s.launchForm)
	s.route(fiber.MethodPost, "/race", launch, s.race)
	s.route(fiber.MethodGet, "/runs", open, s.runsPage)
	s.route(fiber.MethodGet, "/runs/:id", open, s.runPage)
	s.route(fiber.MethodGet, "/runs/:id/stream", open, s.htmlStream)
	s.route(fiber.MethodGet, "/runs/:id/replay", open, s.replayFrames)
	s.route(fiber.MethodPost, "/runs/:id/cancel", admin, s.cancelForm)
	s.route(fiber.MethodPost, "/runs/:id/pin", admin, s.pinForm)
	s.route(fiber.MethodGet, "/compare", open, s.comparePage)
	s.route(fiber.MethodPost, "/compare/cancel", admin, s.cancelAllForm)
	s.route(fiber.MethodGet, "/partials/capacity", open, s.capacityPartial)
	s.registerWorkerPages()
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
	status, msg := s.failure(c, err)
	p := s.page(c, http.StatusText(status), "")
	return s.render(c, status, templates.ErrorPage(templates.ErrorView{Page: p, Status: status, Message: msg}))
}

// failure is what a page shows of err, as an error page or inline: the status and message
// of its problem (see Server.problem, which logs an internal cause and never shows it).
func (s *Server) failure(c *fiber.Ctx, err error) (status int, msg string) {
	p := s.problem(c.UserContext(), err)
	return p.Status, p.Detail
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
	if err := s.fillHome(ctx, &v, true); err != nil {
		status, msg := s.failure(c, err)
		v.Error = msg
		return s.render(c, status, templates.Home(v))
	}
	return s.render(c, http.StatusOK, templates.Home(v))
}

// fillHome reads what the dashboard shows: one read of the recent runs gives the recent
// list, the plan of the latest finished run, the latest finished run of each mode of that
// plan and their sequential baselines. With setForm, the form holds that plan.
func (s *Server) fillHome(ctx context.Context, v *templates.HomeView, setForm bool) error {
	v.Targets = append([]string{app.BuiltinTarget}, s.core.Config.Limits.Allowlist...)
	v.Capacity = s.capacity(ctx)
	runs, next, err := s.core.Runs.List(ctx, app.ListQuery{Limit: homeScan})
	if err != nil {
		return err
	}
	v.Recent = runs[:min(len(runs), homeRecent)]
	var latest *app.Run
	for _, r := range runs {
		if r.Status == app.StatusFinished {
			latest = r
			break
		}
	}
	if latest == nil && next != "" {
		found, _, err := s.core.Runs.List(ctx, app.ListQuery{Status: app.StatusFinished, Limit: 1})
		if err != nil {
			return err
		}
		if len(found) > 0 {
			latest = found[0]
		}
	}
	if latest == nil {
		return nil
	}
	plan := latest.Plan
	v.Compared = &plan
	if setForm {
		v.Form = formOf(latest)
	}
	pool := runs
	if next != "" {
		// Older runs of the plan, past the first page, for a mode the page lacks.
		for _, m := range app.Modes {
			if slices.ContainsFunc(app.LatestOfEachMode(runs, plan), func(r *app.Run) bool { return r.Mode == m }) {
				continue
			}
			more, _, err := s.core.Runs.List(ctx, app.ListQuery{Mode: m, Status: app.StatusFinished, Limit: homeScan})
			if err != nil {
				return err
			}
			pool = append(pool, more...)
		}
	}
	for _, r := range app.LatestOfEachMode(pool, plan) {
		cp := *r
		baseline := app.BaselineOf(&cp, pool)
		if baseline == nil && next != "" {
			baseline, _ = s.core.Runs.Baseline(ctx, &cp)
		}
		v.Results = append(v.Results, resultOf(&cp, baseline))
	}
	return nil
}

// formOf is the launch form holding r's plan.
func formOf(r *app.Run) templates.LaunchForm {
	f := templates.LaunchForm{Tasks: strconv.Itoa(r.Tasks), Delay: templates.F(float64(r.DelayMS) / 1000),
		Parallelism: templates.DefaultForm.Parallelism, Target: r.Target, FailureRate: templates.F(r.FailureRate)}
	if r.Mode == app.Concurrent {
		f.Parallelism = strconv.Itoa(r.Parallelism)
	}
	return f
}

// resultOf is r's results row against baseline (nil: against tasks × delay); it sets r's
// speed-up as the API does.
func resultOf(r *app.Run, baseline *app.Run) templates.Result {
	res := templates.Result{Run: r, Sum: app.Summarize(r, baseline)}
	if res.Sum.Baseline != "" {
		res.Baseline = baseline
	}
	return res
}

// capacity is the live workers of the queue.
func (s *Server) capacity(ctx context.Context) templates.Capacity {
	servers, err := s.core.Launcher.Servers(ctx)
	if err != nil {
		return templates.Capacity{Err: s.problem(ctx, err).Detail}
	}
	return templates.Capacity{Capacity: app.CapacityOf(servers)}
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
	return c.Redirect(keepPresent(c, "/runs/"+r.ID), http.StatusSeeOther)
}

// keepPresent is path in presentation mode when the request was: a launch from a
// presented page lands on a presented one.
func keepPresent(c *fiber.Ctx, path string) string {
	if c.Query("present") == "1" {
		return templates.PresentURL(path)
	}
	return path
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
	return c.Redirect(keepPresent(c, "/compare?runs="+seq.ID+","+dist.ID), http.StatusSeeOther)
}

func (s *Server) homeWithError(c *fiber.Ctx, ctx context.Context, form templates.LaunchForm, err error) error {
	status, msg := s.failure(c, err)
	v := templates.HomeView{Page: s.page(c, "Dashboard", "home"), Form: form, Error: msg}
	if ferr := s.fillHome(ctx, &v, false); ferr != nil {
		s.failure(c, ferr) // logged if internal; the page shows the launch's error
	}
	return s.render(c, status, templates.Home(v))
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
		status, msg := s.failure(c, err)
		v.Error = msg
		return s.render(c, status, templates.Runs(v))
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

// runView reads a run into what its page shows: its projection as of now,
// and the window of page of its task list.
func (s *Server) runView(ctx context.Context, id string, page int) (*templates.RunView, error) {
	p, last, err := s.core.ReadRun(ctx, id, time.Now().Add(-liveMargin))
	if err != nil {
		return nil, err
	}
	v := &templates.RunView{P: p, Procs: p.Processes(), Lost: p.LostWorkers()}
	if p.Run.Mode == app.Distributed {
		v.Queue = s.core.Config.Queue
	}
	v.After = last
	v.Pages = max(1, (len(p.Tasks)+tasksPerPage-1)/tasksPerPage)
	v.PageNo = min(max(page, 1), v.Pages)
	v.First = (v.PageNo - 1) * tasksPerPage
	v.Tasks = p.Tasks[v.First:min(len(p.Tasks), v.First+tasksPerPage)]
	return v, nil
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
	r := v.Run()
	v.URL = s.baseURL(c) + "/runs/" + r.ID
	v.QR = qrSVG(v.URL)
	v.Loopback = loopbackURL(v.URL)
	p := s.page(c, templates.OGLine(r), "runs")
	p.TitleID = "title-" + r.ID
	p.Description = templates.OGLine(r) + " · " + templates.PlanLine(r)
	p.URL = v.URL
	p.Scripts = []string{"js/replay.js"}
	return s.render(c, http.StatusOK, templates.RunPage(p, v))
}

// runWorkersPartial is what a live distributed run's page refreshes every few seconds: the
// workers that are gone with some of its tasks in hand, which no event tells.
func (s *Server) runWorkersPartial(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	p, err := s.timeline(ctx, c.Params("id"))
	if err != nil {
		return s.pageError(c, err)
	}
	var buf bytes.Buffer
	if err := templates.LostWorkers(p.Run.ID, p.LostWorkers()).Render(ctx, &buf); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(oneLine(buf.Bytes()))
}

// oneLine puts a fragment on one line: a page applies fragments line by line.
func oneLine(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), []byte(" "))
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
			v.ScaleMS = max(v.ScaleMS, templates.AxisExtent(rv.P.Summary))
			v.Results = append(v.Results, templates.Result{Run: rv.P.Run, Sum: rv.P.Summary, Baseline: rv.P.Compared})
		}
	}
	if err != nil {
		v.Runs, v.Results = nil, nil
		status, msg := s.failure(c, err)
		v.Error = msg
		return s.render(c, status, templates.Compare(v))
	}
	if len(v.Runs) > 0 {
		parts := make([]string, len(v.Runs))
		for i, r := range v.Runs {
			parts[i] = templates.ModeName(r.Run().Mode)
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
