package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/live"
)

// BenchmarkRecordedTasks records 100,000 tasks of five types (one in ten failed after a
// retry, one in fifty with a refused connection), serves them with `taskrace serve
// --worker=false` as compose runs it, and reports the p50 time of GET /api/tasks for four
// queries, taken round-robin, and the serve process's RSS.
//
//	go test . -run '^$' -bench RecordedTasks -benchtime 1x
func BenchmarkRecordedTasks(b *testing.B) {
	const tasks, rounds = 100_000, 41
	types := []string{"email:send", "image:resize", "report:build", "webhook:deliver", "crm:sync"}
	tp := newTopology(b)
	opt := asynq.RedisClientOpt{Addr: tp.redis.Addr()}
	rec, err := live.NewRecorder(opt, live.Options{MaxEvents: 3 * tasks, Buffer: 2 * tasks, Durable: false})
	if err != nil {
		b.Fatal(err)
	}
	fill := time.Now()
	for i := range tasks {
		typ := types[i%len(types)]
		id := fmt.Sprintf("%s-%07d", strings.Split(typ, ":")[0], i)
		a := rec.Start(live.Info{Queue: "bench", ID: id, Type: typ, MaxRetry: 1})
		var failure error
		switch {
		case i%50 == 7:
			failure = errors.New("dial tcp 10.1.2.3:443: connect: connection refused")
		case i%10 == 3:
			failure = errors.New("upstream answered 502 Bad Gateway")
		}
		a.End(context.Background(), failure)
		if failure != nil {
			a := rec.Start(live.Info{Queue: "bench", ID: id, Type: typ, Attempt: 2, MaxRetry: 1})
			a.End(context.Background(), failure)
		}
		if i%10_000 == 9_999 {
			rec.Flush(context.Background())
		}
	}
	if err := rec.Close(); err != nil {
		b.Fatal(err)
	}
	if n := rec.Dropped(); n > 0 {
		b.Fatalf("%d facts dropped while filling", n)
	}
	b.Logf("recorded %d tasks in %s", tasks, time.Since(fill).Round(time.Millisecond))

	loaded := time.Now()
	s := tp.serve("WORKER=false")
	var page struct {
		Total  int            `json:"total"`
		Counts map[string]int `json:"counts"`
	}
	waitUntil(b, time.Minute, "serve to read every recorded task", func() bool {
		return s.getJSON("/api/tasks?limit=1", &page) == http.StatusOK && page.Total == tasks
	})
	b.Logf("serve holds %d tasks %s after it started: %v", page.Total, time.Since(loaded).Round(time.Millisecond), page.Counts)

	queries := []string{"state:failed", "type:report:build", "refused", ""}
	took := map[string][]float64{}
	client := &http.Client{Timeout: 10 * time.Second}
	for b.Loop() {
		for range rounds {
			for _, q := range queries {
				start := time.Now()
				res, err := client.Get(s.base + "/api/tasks?limit=50&q=" + url.QueryEscape(q))
				if err != nil {
					b.Fatal(err)
				}
				var body struct {
					Tasks []struct {
						ID string `json:"id"`
					} `json:"tasks"`
				}
				err = json.NewDecoder(res.Body).Decode(&body)
				res.Body.Close()
				if err != nil || res.StatusCode != http.StatusOK {
					b.Fatalf("q=%q: %d, %v", q, res.StatusCode, err)
				}
				took[q] = append(took[q], float64(time.Since(start).Microseconds())/1000)
				if len(body.Tasks) == 0 {
					b.Fatalf("q=%q selected nothing", q)
				}
			}
		}
	}
	for _, q := range queries {
		name := q
		if name == "" {
			name = "all"
		}
		name = strings.NewReplacer(":", "=", " ", "_").Replace(name)
		b.ReportMetric(percentile(took[q], 0.5), name+"-p50-ms")
		b.ReportMetric(percentile(took[q], 0.99), name+"-p99-ms")
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(s.pid()) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		for _, field := range []string{"VmRSS", "VmHWM"} {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				kb, _ := strconv.Atoi(strings.Fields(v)[0])
				b.ReportMetric(float64(kb)/1024, field+"-MB")
			}
		}
	}
}

func percentile(v []float64, q float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
