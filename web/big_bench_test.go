package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
)

// Benchmarks of big runs (figures in docs/benchmarks.md, "Big runs stay light"):
//
//	go test ./web -run '^$' -bench 'BenchmarkRunPage5k|BenchmarkStream5k|BenchmarkRunDetail10k' -benchtime 20x

// browserEncodings is what a browser accepts, as Chromium sends it.
const browserEncodings = "gzip, deflate, br, zstd"

// getAs gets url accepting the given encodings ("" for none), and returns the bytes
// transferred (the body as sent, compressed or not) and its Content-Encoding. The client
// must not ask for compression itself.
func getAs(tb testing.TB, client *http.Client, url, encodings string) (int64, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if encodings != "" {
		req.Header.Set("Accept-Encoding", encodings)
	}
	res, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d", url, res.StatusCode)
	}
	return n, res.Header.Get("Content-Encoding")
}

// BenchmarkRunPage5k is GET /runs/{id} of a finished 5,000-task run, as a browser asks for
// it: the bytes transferred, the page's size before compression, and the time to the last
// byte over loopback.
func BenchmarkRunPage5k(b *testing.B) {
	s := newBenchServer(b)
	r := s.runToEnd(b, app.Plan{Mode: app.Concurrent, Tasks: 5_000, DelayMS: 0, Parallelism: 50})
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}}
	url := s.base + "/runs/" + r.ID
	raw, _ := getAs(b, client, url, "")
	gz, _ := getAs(b, client, url, "gzip")
	var sent int64
	var enc string
	times := make([]float64, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		sent, enc = getAs(b, client, url, browserEncodings)
		times = append(times, float64(time.Since(t0).Microseconds())/1000)
	}
	b.ReportMetric(percentile(times, 0.5), "p50_ms")
	b.ReportMetric(percentile(times, 0.99), "p99_ms")
	b.ReportMetric(float64(sent)/1000, "KB_sent")
	b.ReportMetric(float64(gz)/1000, "KB_gzip")
	b.ReportMetric(float64(raw)/1000, "KB_raw")
	b.Logf("Content-Encoding: %q", enc)
}

// BenchmarkStream5k is the HTML stream of a 5,000-task run as one viewer of its first page
// receives it, from the run's start to its end: the bytes per viewer (the frames as sent;
// streams are not compressed) and the frames.
func BenchmarkStream5k(b *testing.B) {
	s := newBenchServer(b)
	addr := strings.TrimPrefix(s.base, "http://")
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		// 100 ms tasks, 100 at a time: a run of some five seconds, events at up to 2,000 a second.
		r, err := s.core.Launcher.Launch(ctx, app.Plan{Mode: app.Concurrent, Tasks: 5_000, DelayMS: 100, Parallelism: 100})
		if err != nil {
			b.Fatal(err)
		}
		n, frames, err := streamBytes(ctx, addr, "/runs/"+r.ID+"/stream?page=1")
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/1e6, "MB/viewer")
		b.ReportMetric(float64(frames), "frames/viewer")
	}
}

// streamBytes reads a stream to its end over a raw connection and counts the bytes received
// after the response's header, and the frames.
func streamBytes(ctx context.Context, addr, path string) (int64, int, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nAccept-Encoding: %s\r\n\r\n", path, addr, browserEncodings)
	br := bufio.NewReaderSize(conn, 64<<10)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, 0, err
	}
	if res.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("status %d", res.StatusCode)
	}
	if enc := res.Header.Get("Content-Encoding"); enc != "" {
		return 0, 0, fmt.Errorf("the stream came %s-encoded", enc)
	}
	var n int64
	frames := 0
	rd := bufio.NewReaderSize(res.Body, 64<<10)
	for {
		line, err := rd.ReadSlice('\n')
		n += int64(len(line))
		if err == io.EOF {
			return n, frames, nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return n, frames, err
		}
		if len(line) == 1 {
			frames++
		}
		if strings.HasPrefix(string(line), "event: end") {
			// The end frame follows; read it and stop.
			for {
				line, err := rd.ReadSlice('\n')
				n += int64(len(line))
				if err == bufio.ErrBufferFull {
					continue
				}
				if err != nil || len(line) == 1 {
					return n, frames + 1, nil
				}
			}
		}
	}
}
