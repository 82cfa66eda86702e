package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/png"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/templates"
)

// chromiumPath is the browser the tests drive: CHROME_PATH when set, else the first of
// Chromium's usual names on PATH (Debian's package is chromium).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found on PATH (or in CHROME_PATH): install it with apt-get install -y chromium, or run make test, which does")
	return ""
}

// pageProbe runs in every document before its scripts: it records each task row's states
// as the page shows them, and each progress block's counts, so a test can check the
// transitions after the fact instead of racing them.
const pageProbe = `(() => {
  const states = {}; const bumps = {};
  window.__taskStates = states; window.__bumps = bumps;
  const seen = (row) => {
    const id = row.id, st = row.getAttribute('data-state');
    const list = states[id] || (states[id] = []);
    if (list[list.length - 1] !== st) list.push(st);
  };
  const scan = (root) => {
    if (!root.querySelectorAll) return;
    if (root.matches && root.matches('tr[data-task]')) seen(root);
    root.querySelectorAll('tr[data-task]').forEach(seen);
    const blocks = root.matches && root.matches('[data-progress]') ? [root] : root.querySelectorAll('[data-progress]');
    blocks.forEach((b) => { (bumps[b.id] || (bumps[b.id] = [])).push([performance.now(), Number(b.getAttribute('data-done'))]); });
  };
  new MutationObserver((muts) => {
    for (const m of muts) {
      if (m.type === 'attributes') { scan(m.target); continue; }
      m.addedNodes.forEach(scan);
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state', 'data-done'] });
  document.addEventListener('DOMContentLoaded', () => scan(document));
})();`

// browser is a headless Chromium driven over the DevTools protocol, with every console
// error and uncaught exception of its pages recorded.
type browser struct {
	t     *testing.T
	ctx   context.Context
	alloc context.Context
	base  string

	mu      sync.Mutex
	errors  []string
	allowed []string // console errors a test causes on purpose
}

// allow keeps console errors containing text from failing the test.
func (b *browser) allow(text string) {
	b.mu.Lock()
	b.allowed = append(b.allowed, text)
	b.mu.Unlock()
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		// No network but loopback: a page that needs an outside host breaks here.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	b := &browser{t: t, ctx: ctx, alloc: alloc, base: base}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	b.watch(ctx)
	return b
}

// watch starts the tab of ctx, installs the probe and records console errors.
func (b *browser) watch(ctx context.Context) {
	b.t.Helper()
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: pageProbe})
		return err
	})); err != nil {
		b.t.Fatalf("starting chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type != "error" && !m.IsException() {
				continue
			}
			b.mu.Lock()
			ok := slices.ContainsFunc(b.allowed, func(a string) bool { return strings.Contains(m.Text, a) })
			if !ok {
				b.errors = append(b.errors, m.String())
			}
			b.mu.Unlock()
		}
	}()
}

// fresh opens a tab in a new browser context: no cookies, storage or cache shared.
func (b *browser) fresh() context.Context {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	b.watch(ctx)
	return ctx
}

// noConsoleErrors fails the test if any page logged an error.
func (b *browser) noConsoleErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errors {
		b.t.Errorf("console: %s", e)
	}
	b.errors = nil
}

func (b *browser) do(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	// A query waits for its element; bound the wait so a missing one fails, not hangs.
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// open navigates and waits until the page's own scripts have run.
func (b *browser) open(ctx context.Context, path string) {
	b.t.Helper()
	b.do(ctx, chromedp.Navigate(b.base+path))
	b.until(ctx, 10*time.Second, "the page to load", `document.readyState === 'complete'`)
}

// eval evaluates expr in the page and decodes its value into T.
func eval[T any](b *browser, ctx context.Context, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// until waits for a JavaScript condition to hold, across navigations, within a deadline.
func (b *browser) until(ctx context.Context, within time.Duration, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`))
		if err == nil && ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			b.t.Fatalf("gave up after %s waiting for %s (%s); last error: %v", within, what, expr, last)
		}
		<-tick.C
	}
}

// screenshot writes a PNG of the viewport to artifacts/ and, when readme is set and
// UPDATE_SCREENSHOTS=1 (make screenshots), a half-scale copy to docs/screenshots/ for the
// README: the committed pictures change only when someone means them to.
func (b *browser) screenshot(ctx context.Context, name string, readme bool) {
	readme = readme && os.Getenv("UPDATE_SCREENSHOTS") == "1"
	b.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	root := repoRoot(b.t)
	writeFile(b.t, filepath.Join(root, "artifacts", name+".png"), png)
	if readme {
		small, err := chromedp.Run(ctx, chromedp.Action[[]byte](func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
			m, err := cdp.Call(ctx, t, page.GetLayoutMetrics, cdp.Empty{})
			if err != nil {
				return nil, err
			}
			vp := m.CSSLayoutViewport
			r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
				Format: page.CaptureScreenshotFormatPng,
				Clip:   &page.Viewport{X: float64(vp.PageX), Y: float64(vp.PageY), Width: float64(vp.ClientWidth), Height: float64(vp.ClientHeight), Scale: 0.5},
			})
			if err != nil {
				return nil, err
			}
			return r.Data, nil
		}))
		if err != nil {
			b.t.Fatalf("screenshot %s: %v", name, err)
		}
		writeFile(b.t, filepath.Join(root, "docs", "screenshots", name+".png"), small)
	}
}

func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the source directory")
	}
	return filepath.Dir(filepath.Dir(file))
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// apiRun is GET /api/runs/{id}.
func (h *harness) apiRun(id string) *app.Projection {
	h.t.Helper()
	res := h.get("/api/runs/" + id)
	if res.status != http.StatusOK {
		h.t.Fatalf("GET /api/runs/%s: %d %s", id, res.status, res.body)
	}
	var tl app.Projection
	res.json(h.t, &tl)
	return &tl
}

// runIDFromURL is the run ID of a /runs/{id} URL.
func runIDFromURL(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil || !strings.HasPrefix(p.Path, "/runs/") {
		t.Fatalf("not a run page: %s", u)
	}
	return strings.TrimPrefix(p.Path, "/runs/")
}

// checkSummary compares the finished page's results with the API's figures.
func checkSummary(t *testing.T, b *browser, ctx context.Context, tl *app.Projection) {
	t.Helper()
	r := tl.Run
	got := eval[map[string]string](b, ctx, `Object.fromEntries([...document.querySelectorAll('[data-stat]')].map(e => [e.dataset.stat, e.textContent.trim()]))`)
	want := map[string]string{
		"wall":       templates.Wall(r),
		"ideal":      templates.Seconds(r.IdealMS),
		"efficiency": templates.Percent(r.Efficiency),
		"speedup":    templates.SpeedUp(r.SpeedUp),
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("summary %s = %q on the page, %q from the API (%s)", k, got[k], w, r.ID)
		}
	}
}

// taskStates returns, per row, the states the page showed.
func taskStates(b *browser, ctx context.Context) map[string][]string {
	return eval[map[string][]string](b, ctx, `window.__taskStates`)
}

func TestBrowserLaunchEachModeLive(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	b := newBrowser(t, h.base)
	ctx := b.ctx

	cases := []struct {
		mode        string
		tasks       string
		parallelism string
	}{
		{"sequential", "3", "1"},
		{"concurrent", "6", "3"},
		{"distributed", "8", "5"},
	}
	var finished string
	for _, c := range cases {
		b.open(ctx, "/")
		b.do(ctx,
			chromedp.SetValue(chromedp.CSS("#tasks"), c.tasks),
			chromedp.SetValue(chromedp.CSS("#delay"), "0.4"),
			chromedp.SetValue(chromedp.CSS("#parallelism"), c.parallelism),
			chromedp.Click(chromedp.CSS(`button[data-launch="`+c.mode+`"]`)),
		)
		b.until(ctx, 10*time.Second, "the run page", `location.pathname.startsWith('/runs/') && document.querySelector('[data-run-id]')`)
		loc := eval[string](b, ctx, `location.href`)
		id := runIDFromURL(t, loc)
		if c.mode == "distributed" {
			b.until(ctx, 10*time.Second, "the second round of tasks", `document.querySelector('tr[data-state=running]') && +document.querySelector('[data-progress]').dataset.done >= 5`)
			b.screenshot(ctx, "run-live-short", false)
		}
		b.until(ctx, 20*time.Second, c.mode+" run to end", `document.querySelector('[data-status=finished]') && !document.querySelector('[data-stat=wall]')?.textContent.includes('—')`)
		// Every row ended done, and some went through all of queued → running → done live.
		states := taskStates(b, ctx)
		full := 0
		for i := range len(states) {
			row := templates.RowID(id, i)
			seq := states[row]
			if len(seq) == 0 || seq[len(seq)-1] != app.TaskStateDone {
				t.Errorf("%s: row %d showed %v, want it to end done", c.mode, i, seq)
			}
			if strings.Join(seq, ",") == "queued,running,done" {
				full++
			}
		}
		if len(states) != mustAtoi(t, c.tasks) {
			t.Errorf("%s: %d rows, want %s", c.mode, len(states), c.tasks)
		}
		if full == 0 {
			t.Errorf("%s: no row went queued → running → done on the page: %v", c.mode, states)
		}
		tl := h.apiRun(id)
		checkSummary(t, b, ctx, tl)
		if got := eval[int](b, ctx, `document.querySelectorAll('rect[data-state=done]').length`); got != len(tl.Tasks) {
			t.Errorf("%s: %d done bars on the timeline, want %d", c.mode, got, len(tl.Tasks))
		}
		finished = id
	}
	b.screenshot(ctx, "run-finished-short", false)

	t.Run("run again", func(t *testing.T) {
		b.do(ctx, chromedp.Click(chromedp.CSS(`button[data-run-again]`)))
		b.until(ctx, 10*time.Second, "a new run page", fmt.Sprintf(`location.pathname.startsWith('/runs/') && !location.pathname.endsWith(%q) && document.querySelector('[data-run-id]')`, finished))
		again := runIDFromURL(t, eval[string](b, ctx, `location.href`))
		b.until(ctx, 20*time.Second, "the new run to end", `document.querySelector('[data-status=finished]')`)
		a, o := h.apiRun(again).Run, h.apiRun(finished).Run
		if a.Mode != o.Mode || a.Tasks != o.Tasks || a.DelayMS != o.DelayMS || a.Target != o.Target {
			t.Errorf("run again launched %+v, want the plan of %+v", a.Plan, o.Plan)
		}
	})

	t.Run("permalink in a fresh browser, replay", func(t *testing.T) {
		fctx := b.fresh()
		b.open(fctx, "/runs/"+finished)
		tl := h.apiRun(finished)
		if n := eval[int](b, fctx, `document.querySelectorAll('rect[data-state=done]').length`); n != len(tl.Tasks) {
			t.Fatalf("the permalink shows %d of %d bars", n, len(tl.Tasks))
		}
		if eval[bool](b, fctx, `!!document.querySelector('[data-stream-url]')`) {
			t.Error("a finished run's page still follows a stream")
		}
		checkSummary(t, b, fctx, tl)
		// Replay at 4×: each bar must appear at its recorded offset ÷ 4.
		b.do(fctx, chromedp.Click(chromedp.CSS(`button[data-replay="4"]`)))
		b.until(fctx, 10*time.Second, "the replay to end", `document.querySelector('[data-timeline-group][data-replay=done]')`)
		type bar struct {
			Start, Shown, End, Dur float64
		}
		bars := eval[[]bar](b, fctx, `[...document.querySelectorAll('rect[data-start-ms]')].map(r => ({Start: +r.dataset.startMs, Dur: +r.dataset.durMs, Shown: +r.dataset.replayStart, End: +r.dataset.replayEnd}))`)
		if len(bars) != len(tl.Tasks) {
			t.Fatalf("%d bars replayed, want %d", len(bars), len(tl.Tasks))
		}
		const slack = 150.0 // ms of browser frame timing
		for i, x := range bars {
			if d := x.Shown - x.Start/4; d < -1 || d > slack {
				t.Errorf("bar %d appeared at %.0f ms of the replay, recorded at %.0f ms (÷4 = %.0f)", i, x.Shown, x.Start, x.Start/4)
			}
			if d := x.End - (x.Start+x.Dur)/4; d < -1 || d > slack {
				t.Errorf("bar %d ended at %.0f ms of the replay, want %.0f", i, x.End, (x.Start+x.Dur)/4)
			}
		}
		if st := eval[string](b, fctx, `document.querySelector('tr[data-task]').dataset.state`); st != app.TaskStateDone {
			t.Errorf("after the replay a row shows %q", st)
		}
	})

	t.Run("QR code decodes to the run URL", func(t *testing.T) {
		// A screenshot taken while the page still lays out can catch the code mid-move:
		// a few fresh ones, each decoded as a pure barcode.
		hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
		var res *gozxing.Result
		var err error
		for attempt := 0; attempt < 3 && res == nil; attempt++ {
			png, serr := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`[data-qr]`)))
			if serr != nil {
				t.Fatal(serr)
			}
			img, _, derr := image.Decode(bytes.NewReader(png))
			if derr != nil {
				t.Fatal(derr)
			}
			bmp, berr := gozxing.NewBinaryBitmapFromImage(img)
			if berr != nil {
				t.Fatal(berr)
			}
			res, err = gozxingqr.NewQRCodeReader().Decode(bmp, hints)
		}
		if err != nil {
			t.Fatalf("the QR code does not decode: %v", err)
		}
		want := eval[string](b, ctx, `location.origin + location.pathname`)
		if res.GetText() != want {
			t.Errorf("QR code says %q, want %q", res.GetText(), want)
		}
	})
	b.noConsoleErrors()
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBrowserRaceOnCompare(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	b := newBrowser(t, h.base)
	ctx := b.ctx
	b.open(ctx, "/")
	b.do(ctx,
		chromedp.SetValue(chromedp.CSS("#tasks"), "10"),
		chromedp.SetValue(chromedp.CSS("#delay"), "0.5"),
		chromedp.Click(chromedp.CSS(`button[data-launch="race"]`)),
	)
	b.until(ctx, 10*time.Second, "the compare page", `location.pathname === '/compare' && document.querySelectorAll('[data-stream-url]').length === 2`)
	ids := strings.Split(eval[string](b, ctx, `new URLSearchParams(location.search).get('runs')`), ",")
	if len(ids) != 2 {
		t.Fatalf("compare runs = %v", ids)
	}
	seq, dist := ids[0], ids[1]
	b.until(ctx, 10*time.Second, "both runs to progress", fmt.Sprintf(`+document.getElementById('progress-%s').dataset.done > 0 && +document.getElementById('progress-%s').dataset.done > 0`, seq, dist))
	b.screenshot(ctx, "compare-short", false)
	b.until(ctx, 15*time.Second, "the distributed run to end", fmt.Sprintf(`document.getElementById('status-%s').dataset.status === 'finished'`, dist))
	// Both progressed at once: the sequential run counted a task before the distributed
	// one counted its last.
	bumps := eval[map[string][][2]float64](b, ctx, `window.__bumps`)
	firstSeq, lastDist := firstBump(bumps["progress-"+seq]), lastBump(bumps["progress-"+dist])
	if firstSeq < 0 || lastDist < 0 || firstSeq > lastDist {
		t.Errorf("the runs did not progress together: sequential's first task at %.0f ms, distributed's last at %.0f ms", firstSeq, lastDist)
	}
	// A second viewer follows the page without reloading it.
	watcher := b.fresh()
	b.open(watcher, "/compare?runs="+seq+","+dist)
	eval[bool](b, watcher, `(window.__marker = 1, true)`)
	if !eval[bool](b, watcher, `!!document.querySelector('button[data-cancel-all]')`) {
		t.Error("a compare page with a running run offers no Cancel all")
	}
	// Cancel all: the sequential run, still running, is canceled.
	b.do(ctx, chromedp.Click(chromedp.CSS(`button[data-cancel-all]`)))
	b.until(watcher, 10*time.Second, "the watcher to see both runs end", fmt.Sprintf(
		`document.getElementById('status-%s')?.dataset.status === 'canceled' && document.getElementById('status-%s')?.dataset.status === 'finished'`, seq, dist))
	b.until(watcher, 5*time.Second, "Cancel all to go from the finished page", `!document.querySelector('button[data-cancel-all]')`)
	if !eval[bool](b, watcher, `window.__marker === 1`) {
		t.Error("the watching compare page reloaded")
	}
	b.until(ctx, 10*time.Second, "the sequential run canceled", fmt.Sprintf(`document.getElementById('status-%s')?.dataset.status === 'canceled'`, seq))
	if st := h.apiRun(seq).Run.Status; st != app.StatusCanceled {
		t.Errorf("sequential run is %s after Cancel all", st)
	}
	if got := eval[string](b, ctx, fmt.Sprintf(`document.querySelector('#result-%s [data-col=time]').textContent`, dist)); got != templates.Wall(h.apiRun(dist).Run) {
		t.Errorf("compare table time %q, API %q", got, templates.Wall(h.apiRun(dist).Run))
	}
	b.noConsoleErrors()
}

func firstBump(bs [][2]float64) float64 {
	for _, b := range bs {
		if b[1] > 0 {
			return b[0]
		}
	}
	return -1
}

func lastBump(bs [][2]float64) float64 {
	last := -1.0
	prev := -1.0
	for _, b := range bs {
		if b[1] > prev {
			last, prev = b[0], b[1]
		}
	}
	return last
}

// cutter is a reverse proxy in front of the server that can drop every open event stream,
// as a flaky network would.
type cutter struct {
	mu      sync.Mutex
	streams map[*http.Request]context.CancelFunc
	queries []string
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cancel := range c.streams {
		cancel()
	}
}

func newCutter(t *testing.T, target string) (*cutter, string) {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = nil
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {}
	c := &cutter{streams: map[*http.Request]context.CancelFunc{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/stream") {
			proxy.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		c.mu.Lock()
		c.streams[r] = cancel
		c.queries = append(c.queries, r.URL.RawQuery)
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			delete(c.streams, r)
			c.mu.Unlock()
			cancel()
		}()
		proxy.ServeHTTP(w, r.WithContext(ctx))
		if ctx.Err() != nil {
			// Cut mid-stream: abort, so the browser sees the stream break.
			panic(http.ErrAbortHandler)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return c, "http://" + ln.Addr().String()
}

func TestBrowserStreamResumesAfterADrop(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	cut, base := newCutter(t, h.base)
	b := newBrowser(t, base)
	// The stream cut on purpose: the browser reports the broken response.
	b.allow("ERR_INCOMPLETE_CHUNKED_ENCODING")
	ctx := b.ctx
	// Long enough (6 s) that the cut comes mid-run on a loaded machine too.
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 30, "delay_ms": 1000})
	b.open(ctx, "/runs/"+r.ID)
	b.until(ctx, 10*time.Second, "a task to end", fmt.Sprintf(`+document.getElementById('progress-%s').dataset.done >= 5`, r.ID))
	cut.cut()
	b.until(ctx, 30*time.Second, "the run to end", `document.querySelector('[data-status=finished]')`)
	cut.mu.Lock()
	queries := append([]string(nil), cut.queries...)
	cut.mu.Unlock()
	if len(queries) < 2 || !strings.Contains(queries[len(queries)-1], "after=") {
		t.Fatalf("the page did not reconnect with after=: stream requests %q", queries)
	}
	states := taskStates(b, ctx)
	for i := range 30 {
		seq := states[templates.RowID(r.ID, i)]
		if len(seq) == 0 || seq[len(seq)-1] != app.TaskStateDone {
			t.Errorf("task %d shows %v after the reconnect, want done", i, seq)
		}
	}
	if n := eval[int](b, ctx, `document.querySelectorAll('rect[data-state=done]').length`); n != 30 {
		t.Errorf("%d done bars, want 30", n)
	}
	// Counted from bumps only: a missed or repeated task.finished would show here.
	bumps := eval[map[string][][2]float64](b, ctx, `window.__bumps`)
	var maxBumped float64
	for _, x := range bumps["progress-"+r.ID] {
		maxBumped = max(maxBumped, x[1])
	}
	if maxBumped != 30 {
		t.Errorf("progress counted %v tasks, want 30", maxBumped)
	}
	b.noConsoleErrors()
}

func TestBrowserPagesThemesLayoutAndAccessibility(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker(), withWebConfig(func(c *Config) { c.Embedded = true }))
	b := newBrowser(t, h.base)
	ctx := b.ctx
	seq := h.launch(map[string]any{"mode": "sequential", "tasks": 2, "delay_ms": 50})
	dist := h.launch(map[string]any{"mode": "distributed", "tasks": 5, "delay_ms": 100})
	conc := h.launch(map[string]any{"mode": "concurrent", "tasks": 4, "delay_ms": 50, "parallelism": 2})
	for _, id := range []string{seq.ID, dist.ID, conc.ID} {
		h.follow(id)
	}
	pages := []string{"/", "/runs", "/runs?mode=distributed", "/runs/" + dist.ID, "/runs/" + seq.ID + "?present=1",
		"/compare?runs=" + seq.ID + "," + dist.ID, "/compare", "/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV"}
	axe, err := os.ReadFile(filepath.Join(repoRoot(t), "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatalf("axe-core is missing (make test installs it with npm ci): %v", err)
	}
	axeJS, _ := json.Marshal(string(axe))
	b.allow("status of 404") // the page of an unknown run, visited on purpose
	for _, theme := range []string{"light", "dark"} {
		for _, p := range pages {
			b.open(ctx, p)
			if theme == "dark" && !eval[bool](b, ctx, `document.documentElement.classList.contains('dark')`) {
				b.do(ctx, chromedp.Click(chromedp.CSS(`[data-theme-toggle]`)))
				b.until(ctx, 2*time.Second, "dark mode", `document.documentElement.classList.contains('dark')`)
				// Load again, remembered: axe must not measure colours mid-transition.
				b.open(ctx, p)
				if !eval[bool](b, ctx, `document.documentElement.classList.contains('dark')`) {
					t.Fatal("dark mode was not remembered on reload")
				}
			}
			if theme == "light" && eval[bool](b, ctx, `document.documentElement.classList.contains('dark')`) {
				t.Fatalf("%s: dark before the toggle", p)
			}
			type violation struct {
				ID, Impact, Help string
				Nodes            []struct{ Target []string }
			}
			vs := eval[[]violation](b, ctx, `(async () => { if (!window.axe) { (0, eval)(`+string(axeJS)+`); }
				const r = await axe.run(document, { resultTypes: ['violations'] });
				return r.violations.map(v => ({ID: v.id, Impact: v.impact || '', Help: v.help, Nodes: v.nodes.slice(0, 3).map(n => ({Target: n.target.map(String)}))})); })()`)
			t.Logf("%s (%s): %d axe findings", p, theme, len(vs))
			for _, v := range vs {
				t.Logf("  %s %s: %s %v", v.Impact, v.ID, v.Help, v.Nodes)
				if v.Impact == "serious" || v.Impact == "critical" {
					t.Errorf("%s (%s): axe %s %s: %s %v", p, theme, v.Impact, v.ID, v.Help, v.Nodes)
				}
			}
			// Every resource the page loaded came from this server.
			for _, u := range eval[[]string](b, ctx, `performance.getEntriesByType('resource').map(e => e.name)`) {
				if !strings.HasPrefix(u, h.base+"/") {
					t.Errorf("%s loaded %s", p, u)
				}
			}
		}
	}
	// The dark theme was remembered across pages; a fresh browser context starts light.
	b.open(ctx, "/")
	if !eval[bool](b, ctx, `document.documentElement.classList.contains('dark') && localStorage.getItem('theme') === 'dark'`) {
		t.Error("dark mode was not remembered")
	}
	b.screenshot(ctx, "home-dark", false)

	t.Run("embedded banner and presentation mode", func(t *testing.T) {
		b.open(ctx, "/runs/"+dist.ID+"?present=1")
		if !eval[bool](b, ctx, `document.body.classList.contains('present') && getComputedStyle(document.querySelector('body > header')).display === 'none' && parseFloat(getComputedStyle(document.documentElement).fontSize) > 16`) {
			t.Error("presentation mode: want large type and no navigation")
		}
		b.open(ctx, "/")
		if !eval[bool](b, ctx, `document.querySelector('[data-banner=embedded]')?.textContent.includes('in memory')`) {
			t.Error("no embedded-Redis banner")
		}
	})

	t.Run("375 px", func(t *testing.T) {
		mctx := b.fresh()
		b.do(mctx, chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile))
		for _, p := range []string{"/", "/runs/" + dist.ID, "/compare?runs=" + seq.ID + "," + dist.ID, "/runs"} {
			b.open(mctx, p)
			if w := eval[int](b, mctx, `document.documentElement.scrollWidth`); w > 375 {
				t.Errorf("%s is %d px wide at 375 px", p, w)
			}
		}
		b.open(mctx, "/")
		b.screenshot(mctx, "home-375", false)
	})

	t.Run("home screenshot", func(t *testing.T) {
		lctx := b.fresh()
		b.open(lctx, "/")
		b.until(lctx, 5*time.Second, "the results chart", `document.querySelector('[data-chart]')`)
		b.screenshot(lctx, "home-short", false)
	})
	b.noConsoleErrors()
}

func TestBrowserDocsOffline(t *testing.T) {
	t.Parallel()
	h := start(t)
	b := newBrowser(t, h.base)
	ctx := b.ctx
	b.open(ctx, "/docs")
	b.until(ctx, 15*time.Second, "Swagger UI", `document.querySelector('.opblock-summary')`)
	// Try it out: GET /healthz through the docs page, clicking as a reader would.
	op := `#operations-health-healthz`
	b.do(ctx, chromedp.Click(chromedp.CSS(op+` .opblock-summary-control`)))
	b.until(ctx, 5*time.Second, "the operation to open", `document.querySelector('`+op+` .try-out__btn')`)
	// The page starts operations in try-it-out mode; press the button only if it did not.
	eval[bool](b, ctx, `(document.querySelector('`+op+` button.execute') || document.querySelector('`+op+` .try-out__btn').click(), true)`)
	b.until(ctx, 5*time.Second, "the Execute button", `document.querySelector('`+op+` button.execute')`)
	b.do(ctx, chromedp.Click(chromedp.CSS(op+` button.execute`)))
	b.until(ctx, 10*time.Second, "the response", `document.querySelector('`+op+` .live-responses-table tbody .response-col_status')?.textContent.trim().startsWith('200')`)
	body := eval[string](b, ctx, `document.querySelector('#operations-health-healthz .live-responses-table tbody .response-col_description pre').textContent`)
	if !strings.Contains(body, `"ok"`) {
		t.Errorf("try-it-out answered %s", body)
	}
	for _, u := range eval[[]string](b, ctx, `performance.getEntriesByType('resource').map(e => e.name)`) {
		if !strings.HasPrefix(u, h.base+"/") {
			t.Errorf("/docs loaded %s", u)
		}
	}
	b.noConsoleErrors()
}

// TestBrowserDocsOfferAuthorize: with ADMIN_TOKEN set, the docs page takes the Bearer token,
// and a call made through it after Authorize carries it.
func TestBrowserDocsOfferAuthorize(t *testing.T) {
	t.Parallel()
	h := start(t, withWebConfig(func(c *Config) { c.AdminToken = speakerToken }))
	r, err := h.core.Launcher.Launch(context.Background(), app.Plan{Mode: app.Sequential, Tasks: 1, DelayMS: 0})
	if err != nil {
		t.Fatal(err)
	}
	h.follow(r.ID)
	b := newBrowser(t, h.base)
	ctx := b.ctx
	b.open(ctx, "/docs")
	b.until(ctx, 15*time.Second, "the Authorize button", `document.querySelector('button.authorize')`)
	b.do(ctx, chromedp.Click(chromedp.CSS(`button.authorize`)))
	b.until(ctx, 5*time.Second, "the token field", `document.querySelector('.auth-container input')`)
	b.do(ctx, chromedp.SendKeys(`.auth-container input`, speakerToken), chromedp.Click(chromedp.CSS(`.auth-btn-wrapper button.authorize`)))
	b.until(ctx, 5*time.Second, "the dialog to say authorized", `document.querySelector('.auth-btn-wrapper button.btn-done')`)
	b.do(ctx, chromedp.Click(chromedp.CSS(`.auth-btn-wrapper button.btn-done`)))
	// Pin the run through the page: it needs the admin.
	op := `#operations-runs-pin-run`
	b.do(ctx, chromedp.Click(chromedp.CSS(op+` .opblock-summary-control`)))
	eval[bool](b, ctx, `(document.querySelector('`+op+` button.execute') || document.querySelector('`+op+` .try-out__btn').click(), true)`)
	b.until(ctx, 5*time.Second, "the id field", `document.querySelector('`+op+` input[placeholder="id"]')`)
	b.do(ctx, chromedp.SendKeys(op+` input[placeholder="id"]`, r.ID), chromedp.Click(chromedp.CSS(op+` button.execute`)))
	b.until(ctx, 10*time.Second, "the response", `document.querySelector('`+op+` .live-responses-table tbody .response-col_status')`)
	if got := eval[string](b, ctx, `document.querySelector('`+op+` .live-responses-table tbody .response-col_status').textContent.trim()`); got != "200" {
		t.Errorf("pin through the docs page after Authorize: %s", got)
	}
	got, err := h.core.Runs.Get(context.Background(), r.ID)
	if err != nil || !got.Pinned {
		t.Errorf("the run is not pinned: %+v %v", got, err)
	}
}

// axeFindings runs axe-core on the page and fails the test on a serious or critical finding.
func axeFindings(t *testing.T, b *browser, ctx context.Context, name string) {
	t.Helper()
	axe, err := os.ReadFile(filepath.Join(repoRoot(t), "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatalf("axe-core is missing (make test installs it with npm ci): %v", err)
	}
	axeJS, _ := json.Marshal(string(axe))
	type violation struct {
		ID, Impact, Help string
		Nodes            []struct{ Target []string }
	}
	vs := eval[[]violation](b, ctx, `(async () => { if (!window.axe) { (0, eval)(`+string(axeJS)+`); }
		const r = await axe.run(document, { resultTypes: ['violations'] });
		return r.violations.map(v => ({ID: v.id, Impact: v.impact || '', Help: v.help, Nodes: v.nodes.slice(0, 3).map(n => ({Target: n.target.map(String)}))})); })()`)
	t.Logf("%s: %d axe findings", name, len(vs))
	for _, v := range vs {
		t.Logf("  %s %s: %s %v", v.Impact, v.ID, v.Help, v.Nodes)
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("%s: axe %s %s: %s %v", name, v.Impact, v.ID, v.Help, v.Nodes)
		}
	}
}

func TestBrowserMonitorListsTheQueueAndOpensATask(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	b := newBrowser(t, h.base)
	ctx := b.ctx
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 3, "delay_ms": 50})
	h.follow(r.ID)

	b.open(ctx, "/monitor/")
	b.until(ctx, 15*time.Second, "the queues page to list the taskrace queue",
		`[...document.querySelectorAll('table td, table th, table a')].some(e => e.textContent.trim() === 'taskrace')`)
	b.screenshot(ctx, "monitor-queues", false)

	// From the run's page, the task's link opens it in the monitor.
	b.open(ctx, "/runs/"+r.ID)
	task := app.TaskID(r.ID, 1)
	b.do(ctx, chromedp.Click(chromedp.CSS(`#`+templates.RowID(r.ID, 1)+` a[data-monitor-link]`)))
	b.until(ctx, 15*time.Second, "the monitor's page of task "+task,
		fmt.Sprintf(`location.pathname === '/monitor/queues/taskrace/tasks/%s' && document.body.innerText.includes(%q)`, task, task))
	b.screenshot(ctx, "monitor-task", false)
	for _, u := range eval[[]string](b, ctx, `performance.getEntriesByType('resource').map(e => e.name)`) {
		if !strings.HasPrefix(u, h.base+"/") {
			t.Errorf("the monitor loaded %s", u)
		}
	}
	b.noConsoleErrors()
}

func TestBrowserWorkersPageIsLive(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	b := newBrowser(t, h.base)
	ctx := b.ctx
	host, _ := os.Hostname()
	proc := fmt.Sprintf("%s:%d", host, os.Getpid())

	b.open(ctx, "/workers")
	if !eval[bool](b, ctx, fmt.Sprintf(`!!document.querySelector('tr[data-worker=%q]') && !document.querySelector('[data-active-task]')`, proc)) {
		t.Fatalf("the workers page does not list the idle worker %s", proc)
	}
	// Launched after the page loaded: only the stream can bring its tasks in. asynq reports
	// them on its next heartbeat, within 5 s.
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 2, "delay_ms": 20_000})
	b.until(ctx, 10*time.Second, "the page to show the run's active tasks from the stream",
		fmt.Sprintf(`document.querySelector('[data-workers]').dataset.updates > 0 && document.querySelectorAll('a[data-active-task^=%q]').length === 2`, r.ID))
	if got := eval[string](b, ctx, `document.querySelector('[data-workers-summary]').textContent`); got != "1 worker · 5 slots · 2 tasks active" {
		t.Errorf("summary %q", got)
	}
	if href := eval[string](b, ctx, `document.querySelector('a[data-active-task]').getAttribute('href')`); !strings.HasPrefix(href, "/runs/"+r.ID+"#task-") {
		t.Errorf("an active task links to %q, want its run's row", href)
	}
	b.screenshot(ctx, "workers", false)

	for _, theme := range []string{"light", "dark"} {
		if theme == "dark" {
			b.do(ctx, chromedp.Click(chromedp.CSS(`[data-theme-toggle]`)))
			b.until(ctx, 2*time.Second, "dark mode", `document.documentElement.classList.contains('dark')`)
			b.open(ctx, "/workers") // again, remembered: no colours mid-transition
		}
		b.until(ctx, 10*time.Second, "active tasks", `document.querySelector('a[data-active-task]')`)
		axeFindings(t, b, ctx, "/workers ("+theme+")")
	}
	b.screenshot(ctx, "workers-dark", false)

	mctx := b.fresh()
	b.do(mctx, chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile))
	b.open(mctx, "/workers")
	if w := eval[int](b, mctx, `document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("/workers is %d px wide at 375 px", w)
	}
	b.screenshot(mctx, "workers-375", false)
	// Done with the run; on a loaded machine it may have ended by itself.
	if _, err := h.core.Launcher.Cancel(t.Context(), r.ID); err != nil && app.ErrorCode(err) != app.EConflict {
		t.Fatal(err)
	}
	b.noConsoleErrors()
}

func TestBrowserRunPageShowsWorkerLoss(t *testing.T) {
	t.Parallel()
	h := start(t)
	b := newBrowser(t, h.base)
	ctx := b.ctx
	r, _ := orphanedRun(t, h)
	b.open(ctx, "/runs/"+r.ID)
	b.until(ctx, 5*time.Second, "the orphaned tasks", `document.querySelectorAll('tr[data-orphaned] [data-state=orphaned]').length === 2`)
	if got := eval[string](b, ctx, `document.querySelector('#`+templates.RowID(r.ID, 2)+` [data-orphan]').innerText`); !strings.Contains(got, "asynq retries between") {
		t.Errorf("the leased orphan reads %q", got)
	}
	eval[bool](b, ctx, `(document.getElementById("procs-title").scrollIntoView({block: "start"}), true)`)
	b.screenshot(ctx, "run-worker-lost", false)
	axeFindings(t, b, ctx, "a run with a lost worker")
	// The notice is refreshed while the run is live: drop it, and the next poll brings it back.
	eval[bool](b, ctx, `(document.getElementById("lost-`+r.ID+`").replaceChildren(), true)`)
	b.until(ctx, 8*time.Second, "the lost worker's notice to come back", `document.querySelector('[data-lost="lost:42"]')`)
	b.noConsoleErrors()
}
