package web

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/worker"
)

// benchServer is a server like the tests' harness, for benchmarks (which have no
// *testing.T): a real listener, a real Redis database, an in-process worker.
type benchServer struct {
	core *app.Core
	base string
}

func newBenchServer(b *testing.B) *benchServer {
	b.Helper()
	r, err := app.OpenRedis(redisServer.URL(redisServer.NextDB()))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := app.DefaultConfig()
	cfg.BuiltinURL = base + "/httpbin"
	cfg.MaxActiveRuns = 1000
	core := app.NewCore(cfg, r, testLogger())
	core.Fetcher.SetBuiltin(base + "/httpbin")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := core.Start(ctx); err != nil {
		b.Fatal(err)
	}
	srv := New(core, Config{Version: "bench", MaxDelay: cfg.Limits.MaxDelay}, testLogger())
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ln) }()
	w := worker.New(core, worker.Config{Concurrency: 5, ShutdownTimeout: time.Second})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-served
		w.Shutdown()
		core.Shutdown(sctx)
		r.Close()
	})
	// asynq's server list has no event to wait on: poll it, with a deadline.
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if n, err := core.Launcher.Capacity(ctx); err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the worker did not register")
		}
		<-tick.C
	}
	return &benchServer{core: core, base: base}
}

// runToEnd launches p and waits for its terminal event.
func (s *benchServer) runToEnd(b *testing.B, p app.Plan) *app.Run {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := s.core.Launcher.Launch(ctx, p)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.core.Feed.Watch(ctx, r.ID, "", func(*app.Event) error { return nil }); err != nil {
		b.Fatal(err)
	}
	return r
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkHomePage measures GET / with 100 runs in history, over loopback.
func BenchmarkHomePage(b *testing.B) {
	s := newBenchServer(b)
	for i := range 100 {
		s.runToEnd(b, app.Plan{Mode: app.Modes[i%3], Tasks: 2, DelayMS: 1, Parallelism: 2})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	get := func() {
		res, err := client.Get(s.base + "/")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("GET /: %d", res.StatusCode)
		}
	}
	get() // warm the connection and the asset catalog
	times := make([]float64, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		get()
		times = append(times, float64(time.Since(t0).Microseconds())/1000)
	}
	b.ReportMetric(percentile(times, 0.5), "p50_ms")
	b.ReportMetric(percentile(times, 0.99), "p99_ms")
}

// TestRunPageAssetWeight keeps a run page's CSS and JS small: at most 100 KB gzipped.
func TestRunPageAssetWeight(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	r := h.launch(map[string]any{"mode": "distributed", "tasks": 3, "delay_ms": 10})
	h.follow(r.ID)
	total := runPageAssets(t, h.base+"/runs/"+r.ID)
	t.Logf("run page CSS + JS: %d bytes gzipped", total)
	if total > 100<<10 {
		t.Errorf("run page CSS + JS = %d bytes gzipped, want ≤ 100 KB", total)
	}
}

func runPageAssets(t testing.TB, pageURL string) int {
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	res, err := raw.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	base := pageURL[:strings.Index(pageURL[len("http://"):], "/")+len("http://")]
	total := 0
	for _, m := range regexp.MustCompile(`(?:src|href)="(/static/[^"]+\.(?:css|js))"`).FindAllStringSubmatch(string(page), -1) {
		req, _ := http.NewRequest("GET", base+m[1], nil)
		req.Header.Set("Accept-Encoding", "gzip")
		res, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.Header.Get("Content-Encoding") != "gzip" {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(body)
			zw.Close()
			body = buf.Bytes()
		}
		total += len(body)
	}
	return total
}

// BenchmarkRunPageAssets reports a run page's CSS + JS, gzipped.
func BenchmarkRunPageAssets(b *testing.B) {
	s := newBenchServer(b)
	r := s.runToEnd(b, app.Plan{Mode: app.Distributed, Tasks: 3, DelayMS: 10})
	var n int
	for b.Loop() {
		n = runPageAssets(b, s.base+"/runs/"+r.ID)
	}
	b.ReportMetric(float64(n)/1024, "KB_gzip")
}

// viewer is one bounded SSE client on a raw connection: it reads frames and records, for
// each, the delay from the event's append (its stream entry ID is Redis's clock, in ms)
// to its arrival.
type viewer struct {
	conn   net.Conn
	events int
	lat    []float64
	err    error
}

func dialViewer(addr, path string) (*viewer, *bufio.Reader, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, addr)
	br := bufio.NewReaderSize(conn, 4096)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if res.StatusCode != http.StatusOK {
		conn.Close()
		body, _ := io.ReadAll(io.LimitReader(res.Body, 300))
		return nil, nil, fmt.Errorf("status %d: %s", res.StatusCode, body)
	}
	// Read up to the first frame (the retry: preamble): the stream is open. res.Body
	// undoes the chunked encoding of the JSON stream, or reads to the close of the HTML one.
	rd := bufio.NewReaderSize(res.Body, 4096)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			conn.Close()
			return nil, nil, err
		}
		if line == "\n" {
			break
		}
	}
	return &viewer{conn: conn}, rd, nil
}

func (v *viewer) read(rd *bufio.Reader, after time.Time, done func()) {
	defer done()
	defer v.conn.Close()
	v.conn.SetReadDeadline(time.Now().Add(time.Minute))
	for {
		line, err := rd.ReadString('\n')
		now := time.Now()
		if err != nil {
			if err != io.EOF {
				v.err = err
			}
			return
		}
		if !strings.HasPrefix(line, "id: ") {
			continue
		}
		v.events++
		id := strings.TrimSpace(line[4:])
		msPart, _, _ := strings.Cut(id, "-")
		ms, _ := strconv.ParseInt(msPart, 10, 64)
		at := time.UnixMilli(ms)
		if at.After(after) {
			v.lat = append(v.lat, float64(now.Sub(at).Microseconds())/1000)
		}
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// benchViewers opens n viewers of a 10-task distributed run on path (%s: the run ID) and
// reports: every viewer got every event, append → received p50/p99 over the events that
// happened after all viewers were connected, and the memory growth per viewer.
func benchViewers(b *testing.B, n int, pathFmt string, html bool) {
	s := newBenchServer(b)
	addr := strings.TrimPrefix(s.base, "http://")
	for b.Loop() {
		before := heapInUse()
		goroutines := runtime.NumGoroutine()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		// 10 tasks of 3 s on 5 slots: two rounds; the second round's events and the end
		// happen after every viewer is connected.
		r, err := s.core.Launcher.Launch(ctx, app.Plan{Mode: app.Distributed, Tasks: 10, DelayMS: 3000})
		if err != nil {
			b.Fatal(err)
		}
		path := fmt.Sprintf(pathFmt, r.ID)
		viewers := make([]*viewer, n)
		readers := make([]*bufio.Reader, n)
		var dial sync.WaitGroup
		sem := make(chan struct{}, 64)
		var dialErr error
		var mu sync.Mutex
		for i := range n {
			dial.Add(1)
			sem <- struct{}{}
			go func() {
				defer dial.Done()
				defer func() { <-sem }()
				v, rd, err := dialViewer(addr, path)
				if err != nil {
					mu.Lock()
					dialErr = err
					mu.Unlock()
					return
				}
				viewers[i], readers[i] = v, rd
			}()
		}
		dial.Wait()
		if dialErr != nil {
			b.Fatalf("connecting viewers: %v", dialErr)
		}
		connected := time.Now()
		var wg sync.WaitGroup
		for i, v := range viewers {
			wg.Add(1)
			go v.read(readers[i], connected, wg.Done)
		}
		mem := heapInUse()
		perViewer := float64(runtime.NumGoroutine()-goroutines) / float64(n)
		wg.Wait()
		cancel()
		evs, err := s.core.Log.ReadAll(context.Background(), r.ID)
		if err != nil {
			b.Fatal(err)
		}
		want := len(evs)
		if html {
			want = 0 // run.created and tasks.queued carry no fragment
			for _, e := range evs {
				if e.Type != app.RunCreated && e.Type != app.TasksQueued && e.Type != app.TaskQueued {
					want++
				}
			}
		}
		var lat []float64
		for i, v := range viewers {
			if v.err != nil || v.events != want {
				b.Fatalf("viewer %d got %d of %d events (%v)", i, v.events, want, v.err)
			}
			lat = append(lat, v.lat...)
		}
		b.ReportMetric(percentile(lat, 0.5), "p50_ms")
		b.ReportMetric(percentile(lat, 0.99), "p99_ms")
		b.ReportMetric(float64(len(lat)/n), "live_events/viewer")
		b.ReportMetric(float64(int64(mem)-int64(before))/float64(n)/1024, "KB/viewer")
		b.ReportMetric(perViewer, "goroutines/viewer")
	}
}

// BenchmarkViewersJSON: 1,000 viewers of one distributed run on /api/runs/{id}/events.
// The figure per viewer includes this bounded client's own buffers (about 15 KB: two 4 KB
// readers, a connection and a goroutine); see BenchmarkViewerClientOnly.
func BenchmarkViewersJSON(b *testing.B) { benchViewers(b, 1000, "/api/runs/%s/events", false) }

// BenchmarkViewersHTML: 1,000 viewers of a 10-task run on /runs/{id}/stream.
func BenchmarkViewersHTML(b *testing.B) { benchViewers(b, 1000, "/runs/%s/stream", true) }

// BenchmarkViewerClientOnly measures the test client's own memory per connection against
// a server that only holds the connections, to subtract from the figures above.
func BenchmarkViewerClientOnly(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\nf\r\nretry: 2000\n\n\n\r\n")
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}()
		}
	}()
	const n = 1000
	for b.Loop() {
		before := heapInUse()
		viewers := make([]*viewer, 0, n)
		readers := make([]*bufio.Reader, 0, n)
		for range n {
			v, rd, err := dialViewer(ln.Addr().String(), "/x")
			if err != nil {
				b.Fatal(err)
			}
			viewers, readers = append(viewers, v), append(readers, rd)
		}
		var wg sync.WaitGroup
		for i, v := range viewers {
			wg.Add(1)
			go v.read(readers[i], time.Now(), wg.Done)
		}
		after := heapInUse()
		b.ReportMetric(float64(int64(after)-int64(before))/n/1024, "KB/viewer")
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		held = nil
		mu.Unlock()
		wg.Wait()
	}
}
