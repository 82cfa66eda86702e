package web

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/taskrace/taskrace/live"
)

// BenchmarkTasksPageViewers: 100 viewers follow /tasks/stream while another application
// records 1,000 tasks a second (through the recorder's direct calls, as fast as asynq would
// hand them out). For every frame a viewer receives, its delay is counted from the start of
// the oldest task it could be the first to show: the newest task of the frame before. It
// reports those delays' p50 and p99, the frames a viewer gets a second, and the process's
// peak RSS (server, load and viewers together: an upper bound for serve alone).
//
//	go test -run '^$' -bench BenchmarkTasksPageViewers -benchtime 1x ./web
func BenchmarkTasksPageViewers(b *testing.B) {
	const (
		viewers = 100
		perSec  = 1000
		measure = 20 * time.Second
	)
	s := newBenchServer(b)
	for range b.N {
		rec, err := live.NewRecorder(s.core.Redis.Opt, live.Options{Concurrency: 64, Host: "load"})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), measure)
		var wg sync.WaitGroup
		// The load: every millisecond a task starts, and ends 20 ms later.
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / perSec)
			defer tick.Stop()
			var open []*live.Attempt
			for n := 0; ctx.Err() == nil; n++ {
				open = append(open, rec.Start(live.Info{Queue: "load", ID: "t." + strconv.Itoa(n), Type: "load:" + strconv.Itoa(n%5), MaxRetry: 1}))
				if len(open) > 20 {
					open[0].End(ctx, nil)
					open = open[1:]
				}
				select {
				case <-tick.C:
				case <-ctx.Done():
				}
			}
		}()
		var mu sync.Mutex
		var delays []float64
		frames := 0
		start := time.Now()
		for range viewers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(ctx, "GET", s.base+"/tasks/stream", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				defer resp.Body.Close()
				sc := bufio.NewScanner(resp.Body)
				sc.Buffer(make([]byte, 64<<10), 1<<22) // a frame is one line of about 30 KB
				var prev time.Time
				for sc.Scan() {
					line := sc.Text()
					if !strings.HasPrefix(line, `data: <tbody id="tasks-rows"`) {
						continue
					}
					got := time.Now()
					i := strings.Index(line, `<time datetime="`)
					if i < 0 {
						continue
					}
					rest := line[i+len(`<time datetime="`):]
					newest, err := time.Parse(time.RFC3339Nano, rest[:strings.IndexByte(rest, '"')])
					if err != nil {
						continue
					}
					if !prev.IsZero() && time.Since(start) > 2*time.Second { // past the warm-up
						mu.Lock()
						delays = append(delays, float64(got.Sub(prev).Microseconds())/1000)
						frames++
						mu.Unlock()
					}
					prev = newest
				}
			}()
		}
		wg.Wait()
		cancel()
		rec.Close()
		slices.Sort(delays)
		if len(delays) == 0 {
			b.Fatal("no frame reached a viewer")
		}
		q := func(p float64) float64 { return delays[min(len(delays)-1, int(p*float64(len(delays))))] }
		b.ReportMetric(q(0.5), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(float64(frames)/float64(viewers)/(measure-2*time.Second).Seconds(), "frames/s/viewer")
		b.ReportMetric(peakRSSMB(), "peak-RSS-MB")
	}
}

// peakRSSMB is the process's peak resident set, from /proc (0 elsewhere).
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkTasksPageMainThread: one Chromium viewer of /tasks under the same 1,000 tasks a
// second; the page's long tasks (main-thread work over 50 ms, by the browser's Long Tasks
// API) over 15 s: how many, and the longest.
//
//	go test ./web -run '^$' -bench BenchmarkTasksPageMainThread -benchtime 1x
func BenchmarkTasksPageMainThread(b *testing.B) {
	const perSec, measure = 1000, 15 * time.Second
	s := newBenchServer(b)
	path, err := exec.LookPath("chromium")
	if err != nil {
		b.Skip("no chromium on PATH")
	}
	for range b.N {
		rec, err := live.NewRecorder(s.core.Redis.Opt, live.Options{Concurrency: 64, Host: "load"})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), measure+30*time.Second)
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(time.Second / perSec)
			defer tick.Stop()
			var open []*live.Attempt
			for n := 0; ctx.Err() == nil; n++ {
				open = append(open, rec.Start(live.Info{Queue: "load", ID: "m." + strconv.Itoa(n), Type: "load:" + strconv.Itoa(n%5), MaxRetry: 1}))
				if len(open) > 20 {
					open[0].End(ctx, nil)
					open = open[1:]
				}
				select {
				case <-tick.C:
				case <-ctx.Done():
				}
			}
		}()
		alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
			chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(b.TempDir()), chromedp.WindowSize(1280, 900))
		tab, cancelTab := chromedp.NewContext(alloc)
		if err := chromedp.Do(tab, chromedp.Navigate(s.base+"/tasks")); err != nil {
			b.Fatal(err)
		}
		if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`(window.__long = [], new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); }).observe({type: 'longtask'}), true)`)); err != nil {
			b.Fatal(err)
		}
		time.Sleep(measure) // the span measured, not a wait for an event
		long, err := chromedp.Run(tab, chromedp.Evaluate[[]float64](`window.__long`))
		if err != nil {
			b.Fatal(err)
		}
		updates, _ := chromedp.Run(tab, chromedp.Evaluate[float64](`Number(document.querySelector('[data-tasks]').dataset.updates || 0)`))
		cancelTab()
		cancelAlloc()
		cancel()
		<-done
		rec.Close()
		longest := 0.0
		for _, d := range long {
			longest = max(longest, d)
		}
		b.ReportMetric(float64(len(long)), "long-tasks")
		b.ReportMetric(longest, "longest-ms")
		b.ReportMetric(updates/measure.Seconds(), "updates/s")
	}
}
