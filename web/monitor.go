package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/hibiken/asynqmon"

	"github.com/taskrace/taskrace/app"
)

// monitorRoot is where asynqmon is mounted.
const monitorRoot = "/monitor"

// monitor is asynqmon, embedded: one handler that may change queues (for the admin) and
// one that may only read (for everyone else). Its page is rewritten so that it loads
// nothing from outside hosts, and is served under a CSP that allows exactly its own inline
// scripts, by hash.
type monitor struct {
	rw, ro   http.Handler
	embedded bool
	closers  []func() error
}

func newMonitor(core *app.Core, embedded bool) *monitor {
	opts := asynqmon.Options{
		RootPath:         monitorRoot,
		RedisConnOpt:     core.Redis.Opt,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(formatPayload),
		ResultFormatter:  asynqmon.ResultFormatterFunc(formatResult),
	}
	rw := asynqmon.New(opts)
	opts.ReadOnly = true
	ro := asynqmon.New(opts)
	return &monitor{rw: rw, ro: ro, embedded: embedded, closers: []func() error{rw.Close, ro.Close}}
}

// formatPayload makes a taskrace task readable in the monitor's task lists.
func formatPayload(taskType string, payload []byte) string {
	if taskType != app.TypeFetch {
		return asynqmon.DefaultPayloadFormatter.FormatPayload(taskType, payload)
	}
	p, err := app.ParseTaskPayload(payload)
	if err != nil {
		return asynqmon.DefaultPayloadFormatter.FormatPayload(taskType, payload)
	}
	return fmt.Sprintf("run %s · task %d of %d · delay %s · target %s", p.ID, p.Index, p.Tasks, p.Delay(), p.Target)
}

// formatResult makes a taskrace task's result readable in the monitor.
func formatResult(taskType string, result []byte) string {
	var r app.TaskResult
	if taskType != app.TypeFetch || json.Unmarshal(result, &r) != nil {
		return asynqmon.DefaultResultFormatter.FormatResult(taskType, result)
	}
	by := ""
	if r.Worker != nil {
		by = " on " + r.Worker.String()
	}
	if r.Error != "" {
		return "failed" + by + ": " + r.Error
	}
	took := ""
	if r.DurationMS != nil {
		took = fmt.Sprintf(" in %.1f ms", *r.DurationMS)
	}
	return fmt.Sprintf("HTTP %d%s%s", r.Status, took, by)
}

// registerMonitor mounts asynqmon at /monitor and below (not with Use: that would also match
// /monitorx).
func (s *Server) registerMonitor() {
	m := newMonitor(s.core, s.cfg.Embedded)
	s.monitor = m
	h := func(c *fiber.Ctx) error {
		handler := m.ro
		if s.isAdmin(c) {
			handler = m.rw
		}
		boundPage(c)
		if m.embedded && strings.HasSuffix(c.Path(), "/api/redis_info") {
			return m.embeddedRedisInfo(c, handler)
		}
		if err := adaptor.HTTPHandler(handler)(c); err != nil {
			return err
		}
		if c.Method() == fiber.MethodPost || c.Method() == fiber.MethodDelete {
			if c.Response().StatusCode() == http.StatusMethodNotAllowed {
				// asynqmon's read-only mode: say why, as every other refusal does.
				return writeProblem(c, newProblem(http.StatusForbidden, "the monitor is read-only: only the admin (ADMIN_TOKEN) may change queues"))
			}
		}
		if strings.HasPrefix(c.Path(), monitorRoot+"/api/") && c.Response().StatusCode() >= 400 &&
			bytes.HasPrefix(c.Response().Header.ContentType(), []byte("text/plain")) {
			return s.monitorAPIError(c)
		}
		if bytes.HasPrefix(c.Response().Header.ContentType(), []byte("text/html")) {
			page, scripts := rewriteMonitorPage(c.Response().Body())
			c.Response().SetBodyRaw(page)
			allowScripts(c, scripts)
		}
		return nil
	}
	// Reading is open (non-admins get asynqmon's read-only mode); every write is the admin's.
	for _, path := range []string{monitorRoot, monitorRoot + "/*"} {
		s.route(fiber.MethodGet, path, open, h)
		for _, m := range []string{fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete} {
			s.route(m, path, admin, h)
		}
	}
}

// monitorAPIError words an error answer of asynqmon's API, which is its raw error text as
// text/plain (a 500 for any Redis failure). The text is logged, never sent: a 5xx becomes
// 503 naming the cause when Redis does not answer a ping (500 otherwise); a 4xx keeps its
// status and asynqmon's message, which is about the request.
//
// The monitor's page shows an error answer's body as text (its HTTP client parses a JSON
// body into an object, which the page cannot show), and it lists text/plain in Accept:
// requests that do get the same words as text; every other client gets problem+json.
func (s *Server) monitorAPIError(c *fiber.Ctx) error {
	status := c.Response().StatusCode()
	raw := strings.TrimSpace(string(c.Response().Body()))
	var p *Problem
	if status >= 500 {
		ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
		defer cancel()
		if err := s.core.Redis.Client.Ping(ctx).Err(); err != nil {
			p = s.problem(ctx, app.Unavailable("the monitor cannot read the queues", err))
		} else {
			p = s.problem(ctx, fmt.Errorf("monitor: %s %s: %d %s", c.Method(), c.Path(), status, raw))
		}
	} else {
		p = newProblem(status, strings.TrimPrefix(raw, "asynq: "))
	}
	if strings.Contains(c.Get(fiber.HeaderAccept), "text/plain") {
		c.Status(p.Status)
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.SendString(p.Detail)
	}
	return writeProblem(c, p)
}

// monitorPageMax is the most tasks one page of the monitor lists: its own page sizes go up
// to 100, and a page of every task of a busy queue is a way to slow the server for all.
const monitorPageMax = 100

// boundPage keeps the monitor's paging within 1 … monitorPageMax tasks a page.
func boundPage(c *fiber.Ctx) {
	args := c.Request().URI().QueryArgs()
	changed := false
	if v := args.Peek("size"); v != nil {
		if n, err := strconv.Atoi(string(v)); err != nil || n < 1 || n > monitorPageMax {
			args.Set("size", strconv.Itoa(monitorPageMax))
			changed = true
		}
	}
	if v := args.Peek("page"); v != nil {
		if n, err := strconv.Atoi(string(v)); err != nil || n < 1 {
			args.Set("page", "1")
			changed = true
		}
	}
	if changed {
		// asynqmon reads the request line, not the parsed query.
		c.Request().SetRequestURI(string(c.Request().URI().Path()) + "?" + string(args.QueryString()))
	}
}

var (
	outsideLink  = regexp.MustCompile(`<link[^>]+href="https?://[^"]*"[^>]*/?>`)
	inlineScript = regexp.MustCompile(`<script>(.*?)</script>`)
)

// monitorChrome is what taskrace adds to asynqmon's page: a link back to taskrace and, on a
// screen too narrow for asynqmon's side menu and charts, a plain note instead of its page.
// It is markup and a style sheet only: the page's CSP allows no script but asynqmon's own.
const monitorChrome = `<style>
.taskrace-back{position:fixed;right:16px;bottom:16px;z-index:1400;padding:8px 14px;border-radius:6px;
background:#3730a3;color:#fff;font:600 14px/1.4 system-ui,sans-serif;text-decoration:none;box-shadow:0 2px 6px rgb(0 0 0/.3)}
.taskrace-back:focus-visible{outline:2px solid #3730a3;outline-offset:2px}
.taskrace-narrow{display:none}
@media (max-width:` + monitorMinWidth + `){
#root,.taskrace-back{display:none}
.taskrace-narrow{display:block;max-width:36rem;margin:0 auto;padding:24px 16px;font:16px/1.5 system-ui,sans-serif;color:#0f172a}
.taskrace-narrow h1{font-size:20px;margin:0 0 8px}
.taskrace-narrow a{color:#3730a3;font-weight:600}
}
</style>
<a class="taskrace-back" href="/" data-monitor-back>← Back to taskrace</a>
<main class="taskrace-narrow" data-monitor-narrow>
<p><a href="/">← Back to taskrace</a></p>
<h1>The queue monitor needs a wider screen</h1>
<p>asynqmon, the queue monitor embedded here, lays out its menu and charts for a screen at least 720 px wide: open it on a computer or a tablet.</p>
<p>On this screen, taskrace's own pages follow the runs and the workers live: <a href="/runs">runs</a> · <a href="/workers">workers</a>.</p>
</main>
`

// monitorMinWidth is the widest screen that gets the note instead of asynqmon.
const monitorMinWidth = "719px"

// rewriteMonitorPage drops asynqmon's links to outside hosts (web fonts: the system's fonts
// serve), adds monitorChrome, and returns the page with the hashes of its inline scripts,
// for the CSP.
func rewriteMonitorPage(page []byte) ([]byte, []string) {
	page = outsideLink.ReplaceAll(page, nil)
	page = bytes.Replace(page, []byte("<body>"), []byte("<body>"+monitorChrome), 1)
	var hashes []string
	for _, m := range inlineScript.FindAllSubmatch(page, -1) {
		sum := sha256.Sum256(m[1])
		hashes = append(hashes, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	return page, hashes
}

// monitorRedisFields are the figures asynqmon's Redis page shows; embedded Redis reports
// none of them.
var monitorRedisFields = []string{"redis_version", "uptime_in_days", "connected_clients",
	"used_memory_human", "used_memory_peak_human", "mem_fragmentation_ratio"}

const noFigures = "n/a: embedded Redis has no such figures"

// embeddedRedisInfo answers asynqmon's Redis page on embedded Redis, saying plainly which
// figures it does not have instead of letting the page show "undefined".
func (m *monitor) embeddedRedisInfo(c *fiber.Ctx, handler http.Handler) error {
	rec := httptest.NewRecorder()
	req, err := adaptorRequest(c)
	if err != nil {
		return err
	}
	handler.ServeHTTP(rec, req)
	var info struct {
		Addr    string            `json:"address"`
		Info    map[string]string `json:"info"`
		RawInfo string            `json:"raw_info"`
		Cluster bool              `json:"cluster"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &info) != nil {
		return writeProblem(c, newProblem(http.StatusServiceUnavailable, "cannot read Redis's info: Redis may be unreachable"))
	}
	// Embedded Redis ends its INFO lines with \n alone, which asynqmon's parser does not
	// split: parse them here.
	info.Info = map[string]string{}
	for _, line := range strings.Split(info.RawInfo, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && !strings.HasPrefix(k, "#") {
			info.Info[k] = v
		}
	}
	for _, k := range monitorRedisFields {
		if info.Info[k] == "" {
			info.Info[k] = noFigures
		}
	}
	info.Addr = "embedded (in memory, in this process)"
	info.RawInfo = "# Embedded Redis (in memory): it reports only these sections.\n" + info.RawInfo
	return c.JSON(info)
}

// adaptorRequest turns the Fiber request into a net/http one.
func adaptorRequest(c *fiber.Ctx) (*http.Request, error) {
	req, err := adaptor.ConvertRequest(c, false)
	if err != nil {
		return nil, err
	}
	return req, nil
}
