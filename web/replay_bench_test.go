package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
)

// BenchmarkReplayFrames measures GET /runs/{id}/replay of a finished 5,000-task run: what
// a replay fetches when it starts (bytes on the wire, gzip-compressed as a browser asks,
// and unpacked) and the server's time to answer, over loopback.
func BenchmarkReplayFrames(b *testing.B) {
	s := newBenchServer(b)
	r := s.runToEnd(b, app.Plan{Mode: app.Concurrent, Tasks: 5000, DelayMS: 0, Parallelism: 50})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	var wire, raw int64
	get := func() {
		req, _ := http.NewRequest(http.MethodGet, s.base+"/runs/"+r.ID+"/replay", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("GET replay: %d", res.StatusCode)
		}
		counted := &countingReader{r: res.Body}
		var body io.Reader = counted
		if res.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(counted)
			if err != nil {
				b.Fatal(err)
			}
			body = zr
		}
		n, err := io.Copy(io.Discard, body)
		if err != nil {
			b.Fatal(err)
		}
		wire, raw = counted.n, n
	}
	get()
	times := make([]float64, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		get()
		times = append(times, float64(time.Since(t0).Microseconds())/1000)
	}
	b.ReportMetric(percentile(times, 0.5), "p50_ms")
	b.ReportMetric(float64(wire)/1024, "wire_KB")
	b.ReportMetric(float64(raw)/1024, "raw_KB")
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
