package main

// The command line without a process boundary: run(ctx, args, getenv, stdout, stderr).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/internal/redistest"
)

// env is a getenv over the given NAME=value pairs.
func env(pairs ...string) func(string) string {
	m := map[string]string{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// lockedBuffer is an output that goroutines of run may write while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runCLI runs the command line and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, getenv func(string) string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr lockedBuffer
	code := run(ctx, args, getenv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, env(), "version")
	if code != 0 || out != "taskrace "+version+"\n" {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, out, _ := runCLI(t, env(), args...)
		if code != 0 || !strings.Contains(out, "taskrace serve") || !strings.Contains(out, "taskrace worker") {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
	}
	tests := []struct {
		cmd   string
		flags []string
	}{
		{"serve", []string{"-addr", "-worker", "-concurrency", "-redis-url", "$SHUTDOWN_TIMEOUT", "$STREAM_WRITE_TIMEOUT", "$MAX_VIEWERS"}},
		{"worker", []string{"-concurrency", "-redis-url", "$HTTPBIN_URL", "-retry-delay", "$MAX_RETRY", "REDIS_URL is required", "required: the Redis that serve uses"}},
		{"run", []string{"-mode", "-tasks", "-delay", "-parallelism", "-json", "-failure-rate", "-target"}},
		{"healthcheck", []string{"-addr", "-redis"}},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, env(), tt.cmd, "--help")
			if code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
			if out != "" {
				t.Errorf("help went to stdout: %q", out)
			}
			if !strings.HasPrefix(errOut, "Usage: taskrace "+tt.cmd+" [flags]") {
				t.Errorf("help starts %q", firstLine(errOut))
			}
			for _, f := range tt.flags {
				if !strings.Contains(errOut, f) {
					t.Errorf("help does not mention %s:\n%s", f, errOut)
				}
			}
		})
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		getenv func(string) string
		args   []string
		want   string // in the first line of stderr
	}{
		{"unknown command", env(), []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", env(), []string{"serve", "--bogus"}, "bogus"},
		{"stray argument", env(), []string{"serve", "extra"}, `unexpected argument "extra"`},
		{"worker without Redis", env(), []string{"worker"}, "REDIS_URL is required"},
		{"CONCURRENCY not a number", env("CONCURRENCY=five"), []string{"serve"}, "CONCURRENCY"},
		{"CONCURRENCY zero", env("CONCURRENCY=0", "REDIS_URL=redis://127.0.0.1:1/0"), []string{"worker"}, "CONCURRENCY"},
		{"run CONCURRENCY zero", env("CONCURRENCY=0"), []string{"run"}, "CONCURRENCY"},
		{"WORKER not a bool", env("WORKER=maybe"), []string{"serve"}, "WORKER"},
		{"SHUTDOWN_TIMEOUT not a duration", env("SHUTDOWN_TIMEOUT=forever"), []string{"serve"}, "SHUTDOWN_TIMEOUT"},
		{"MAX_TASKS zero", env("MAX_TASKS=0"), []string{"serve"}, "MAX_TASKS"},
		{"MAX_DELAY negative", env("MAX_DELAY=-1s"), []string{"run"}, "MAX_DELAY"},
		{"RUN_RETENTION too short", env("RUN_RETENTION=1s"), []string{"serve"}, "RUN_RETENTION"},
		{"RETRY_DELAY under a second", env("RETRY_DELAY=250ms"), []string{"serve"}, "RETRY_DELAY must be whole seconds"},
		{"RETRY_DELAY not whole seconds", env("RETRY_DELAY=1500ms"), []string{"worker", "--redis-url", "redis://127.0.0.1:1/0"}, "RETRY_DELAY"},
		{"MAX_RETRY negative", env("MAX_RETRY=-1"), []string{"serve"}, "MAX_RETRY"},
		{"REDIS_URL scheme", env("REDIS_URL=ftp://example.com"), []string{"worker"}, "REDIS_URL"},
		{"LOG_FORMAT", env("LOG_FORMAT=xml"), []string{"serve"}, "LOG_FORMAT"},
		{"STREAM_WRITE_TIMEOUT too short", env("STREAM_WRITE_TIMEOUT=10ms"), []string{"serve"}, "STREAM_WRITE_TIMEOUT"},
		{"STREAM_WRITE_TIMEOUT not a duration", env(), []string{"serve", "--stream-write-timeout", "soon"}, "stream-write-timeout"},
		{"MAX_VIEWERS zero", env("MAX_VIEWERS=0"), []string{"serve"}, "MAX_VIEWERS"},
		{"TARGET_ALLOWLIST", env("TARGET_ALLOWLIST=not a url"), []string{"serve"}, "TARGET_ALLOWLIST"},
		{"QUEUE empty flag", env(), []string{"worker", "--queue=", "--redis-url", "redis://127.0.0.1:1/0"}, "QUEUE"},
		{"run tasks zero", env(), []string{"run", "--tasks", "0"}, "tasks"},
		{"run unknown mode", env(), []string{"run", "--mode", "parallel"}, "sequential, concurrent, distributed, all"},
		{"healthcheck --redis without REDIS_URL", env(), []string{"healthcheck", "--redis"}, "none is set"},
		{"ALLOWED_HOSTS", env("ALLOWED_HOSTS=a/b"), []string{"serve"}, "ALLOWED_HOSTS"},
		{"run delay over MAX_DELAY", env("MAX_DELAY=1s"), []string{"run", "--delay", "2s"}, "delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, tt.getenv, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.Contains(firstLine(errOut), tt.want) {
				t.Errorf("stderr does not say %q in its first line:\n%s", tt.want, errOut)
			}
		})
	}
}

func TestWorkerWithoutRedisIsOneLine(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI(t, env(), "worker")
	want := "taskrace worker: REDIS_URL is required: a worker must share Redis with `taskrace serve`\n"
	if code != 2 || errOut != want {
		t.Errorf("exit %d, stderr %q; want 2, %q", code, errOut, want)
	}
}

func TestRunTable(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, env(), "run", "--mode", "all", "--tasks", "3", "--delay", "50ms")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", out)
	}
	for _, h := range []string{"Method", "Time", "Reduction", "Speed-up", "Ideal", "Efficiency", "Retries", "Against"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("header lacks %s: %q", h, lines[0])
		}
	}
	for i, mode := range []string{"sequential", "concurrent", "distributed"} {
		// e.g. "sequential  3  1  0.15 s  -0.53 %  ×1.0  0.15 s  99.0 %  0  tasks × delay"
		f := strings.Fields(lines[i+1])
		if len(f) < 13 || f[0] != mode || f[1] != "3" || f[4] != "s" || !strings.Contains(lines[i+1], "×") ||
			!strings.Contains(lines[i+1], "%") || strings.Contains(lines[i+1], "—") {
			t.Errorf("row %d = %q, want the %s run", i+1, lines[i+1], mode)
		}
	}
	// A run is compared with the latest sequential run of its plan before it: the first
	// sequential run has none (and is never its own), the others have the one just run.
	if !strings.HasSuffix(lines[1], "tasks × delay") {
		t.Errorf("the sequential row is compared with tasks × delay: %q", lines[1])
	}
	seqID := ""
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		id := f[len(f)-1]
		if f[len(f)-2] != "run" || !app.ValidRunID(id) || (seqID != "" && id != seqID) {
			t.Errorf("row %q: want it compared with the sequential run", l)
		}
		seqID = id
	}
}

func TestRunJSON(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, env(), "run", "--mode", "all", "--tasks", "3", "--delay", "50ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var modes []string
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%v in %q", err, out)
		}
		for _, k := range []string{"mode", "tasks", "delay_ms", "parallelism", "wall_ms", "ideal_ms", "efficiency"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%v lacks %s", m, k)
			}
		}
		modes = append(modes, m["mode"].(string))
		if m["tasks"] != 3.0 || m["delay_ms"] != 50.0 || m["status"] != "finished" {
			t.Errorf("run %v: want 3 tasks of 50 ms, finished", m)
		}
		wall, ideal, eff := m["wall_ms"].(float64), m["ideal_ms"].(float64), m["efficiency"].(float64)
		if wall < ideal || eff <= 0 || eff > 1 || ideal <= 0 {
			t.Errorf("run %v: wall %v, ideal %v, efficiency %v", m["mode"], wall, ideal, eff)
		}
	}
	if strings.Join(modes, ",") != "sequential,concurrent,distributed" {
		t.Errorf("modes %v, want sequential, concurrent, distributed", modes)
	}
}

func TestRunAgainstRedis(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	code, out, errOut := runCLI(t, env("REDIS_URL="+rs.URL(0)), "run", "--mode", "sequential", "--tasks", "2", "--delay", "20ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	var r report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if r.Mode != "sequential" || r.Status != "finished" || r.Tasks != 2 || r.Parallelism != 1 || r.WallMS < 40 {
		t.Errorf("report %+v", r)
	}
	if strings.Contains(errOut, "embedded") {
		t.Errorf("with REDIS_URL, run used embedded Redis:\n%s", errOut)
	}
}

func TestRunDistributedNeedsWorker(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	code, _, errOut := runCLI(t, env("REDIS_URL="+rs.URL(0)), "run", "--mode", "distributed", "--tasks", "1", "--delay", "0s")
	if code != 1 || !strings.Contains(errOut, "taskrace worker") {
		t.Errorf("exit %d, stderr %q; want 1 saying to start a worker", code, errOut)
	}
}

// The image's HEALTHCHECK, and the compose worker's.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	closed := "127.0.0.1:1" // nothing listens on port 1
	tests := []struct {
		name   string
		getenv func(string) string
		args   []string
		want   int
	}{
		{"redis up", env("REDIS_URL=" + rs.URL(0)), []string{"--redis"}, 0},
		{"redis down", env("REDIS_URL=redis://" + closed + "/0"), []string{"--redis"}, 1},
		{"no web server", env("ADDR=" + closed), nil, 1},
		{"bad ADDR", env("ADDR=nonsense"), nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			code, _, errOut := runCLI(t, tt.getenv, append([]string{"healthcheck"}, tt.args...)...)
			if code != tt.want {
				t.Errorf("exit %d, want %d: %s", code, tt.want, errOut)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s: a health check must answer within its timeout", took)
			}
		})
	}
}

func TestServeSmoke(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr lockedBuffer
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"serve"}, env("ADDR="+addr), io.Discard, &stderr) }()

	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case code := <-exited:
			t.Fatalf("serve exited with %d:\n%s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready within 20s:\n%s", stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "embedded Redis") {
		t.Errorf("no log line says Redis is embedded:\n%s", stderr.String())
	}

	if code, _, errOut := runCLI(t, env("ADDR="+addr), "healthcheck"); code != 0 {
		t.Errorf("healthcheck of a serving process: exit %d: %s", code, errOut)
	}

	for _, tt := range []struct {
		path  string
		mode  string
		tasks int
	}{
		{"/sequential?tasks=2&delay=0.05", "sequential", 2},
		{"/sequential_celery?tasks=4&delay=0.05", "distributed", 4},
	} {
		resp, err := http.Get(base + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Mode    string `json:"mode"`
			Tasks   int    `json:"tasks"`
			Results []struct {
				Status int `json:"status"`
			} `json:"results"`
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", tt.path, resp.StatusCode, err)
		}
		if got.Mode != tt.mode || got.Tasks != tt.tasks || len(got.Results) != tt.tasks {
			t.Errorf("%s: %+v", tt.path, got)
		}
		for i, r := range got.Results {
			if r.Status != http.StatusOK {
				t.Errorf("%s: result %d has HTTP status %d", tt.path, i, r.Status)
			}
		}
	}

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("serve exited with %d after cancel:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not return within 15s of cancel")
	}
}

func TestWorkerServesItsMetrics(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	target := httptest.NewServer(httpbin.New())
	defer target.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, stop := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"worker"}, env("REDIS_URL="+rs.URL(0), "METRICS_ADDR="+addr, "HTTPBIN_URL="+target.URL), io.Discard, &stderr)
	}()
	defer func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("worker exited %d:\n%s", code, stderr.String())
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "serving worker metrics") {
		if time.Now().After(deadline) {
			t.Fatalf("the worker did not start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // its log is the only sign it gives
	}

	if code, _, errOut := runCLI(t, env("REDIS_URL="+rs.URL(0)), "run", "--mode", "distributed", "--tasks", "3", "--delay", "10ms"); code != 0 {
		t.Fatalf("run exit %d:\n%s", code, errOut)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "taskrace_task_duration_seconds_count 3") {
		t.Errorf("the worker's metrics do not count its 3 tasks:\n%s", body)
	}
}
