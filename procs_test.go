//go:build linux

package main

// Helpers of the multi-process tests: the taskrace binary built once, the compose file
// read as the description of the topology, processes with their logs, and HTTP and SSE
// clients of a running serve.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/taskrace/taskrace/internal/redistest"
)

// binPath is the taskrace binary the multi-process tests run, built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "taskrace-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "taskrace")
	build := exec.Command("go", "build", "-o", binPath, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// compose is the part of docker-compose.yml the tests start processes from.
type compose struct {
	Services map[string]service `yaml:"services"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Deploy struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

func readCompose(t testing.TB) compose {
	t.Helper()
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"redis", "web", "worker"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no %q service", name)
		}
	}
	return c
}

// topology is the compose topology as local processes: one redis-server, and serve and
// worker processes started with the compose file's commands and environments, where
// service addresses become loopback ones.
type topology struct {
	t       testing.TB
	compose compose
	redis   *redistest.Server
	// hosts maps a compose service address (redis:6379, web:8080) to a loopback one.
	hosts map[string]string
}

func newTopology(t testing.TB, opts ...redistest.Option) *topology {
	t.Helper()
	tp := &topology{t: t, compose: readCompose(t), redis: redistest.Start(t, opts...)}
	tp.hosts = map[string]string{"redis:6379": tp.redis.Addr()}
	return tp
}

// webPort is the port the web service listens on inside its container.
func (tp *topology) webPort() string {
	for _, p := range tp.compose.Services["web"].Ports {
		parts := strings.Split(p, ":")
		return parts[len(parts)-1]
	}
	tp.t.Fatal("docker-compose.yml: the web service publishes no port")
	return ""
}

// env is a service's environment from the compose file, with service addresses resolved,
// ADDR set to listen on addr (when given) and extra NAME=value pairs added last, so they win.
func (tp *topology) env(svc, addr string, extra ...string) []string {
	s := tp.compose.Services[svc]
	env := make([]string, 0, len(s.Environment)+len(extra))
	for k, v := range s.Environment {
		if k == "ADDR" && addr != "" {
			if want := ":" + tp.webPort(); v != want {
				tp.t.Fatalf("docker-compose.yml: web ADDR is %q, but it publishes %s", v, want)
			}
			v = addr
		}
		for from, to := range tp.hosts {
			v = strings.ReplaceAll(v, "//"+from+"/", "//"+to+"/")
			v = strings.ReplaceAll(v, "//"+from, "//"+to)
		}
		env = append(env, k+"="+v)
	}
	return append(env, extra...)
}

// serve starts the web service as the compose file describes it, listening on a free
// loopback port, and waits until it is ready. Workers started after it reach its
// built-in delay target as compose's workers reach web.
func (tp *topology) serve(extra ...string) *serveProc {
	tp.t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(tp.t))
	return tp.serveOn(addr, extra...)
}

// serveOn starts the web service on addr (a restart reuses its predecessor's).
func (tp *topology) serveOn(addr string, extra ...string) *serveProc {
	tp.t.Helper()
	if _, ok := tp.hosts["web:"+tp.webPort()]; !ok {
		tp.hosts["web:"+tp.webPort()] = addr
	}
	p := start(tp.t, "web", tp.compose.Services["web"].Command, tp.env("web", addr, extra...))
	s := &serveProc{proc: p, base: "http://" + addr}
	p.waitLog(tp.t, "taskrace serving", 20*time.Second)
	return s
}

// worker starts a worker as the compose file describes it and waits until asynq lists it.
func (tp *topology) worker(extra ...string) *proc {
	tp.t.Helper()
	p := start(tp.t, "worker", tp.compose.Services["worker"].Command, tp.env("worker", "", extra...))
	p.waitLog(tp.t, "taskrace worker started", 20*time.Second)
	return p
}

// proc is one taskrace process with its stderr.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *logBuf
	done chan struct{}
	err  error // the exit error, once done is closed
}

func start(t testing.TB, name string, args, env []string) *proc {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, log: newLogBuf(), done: make(chan struct{})}
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s (pid %d) log:\n%s", name, cmd.Process.Pid, p.log.String())
		}
	})
	return p
}

// pid is the process's ID, as task events carry it.
func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) signal(sig os.Signal) { p.cmd.Process.Signal(sig) }

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s did not exit within %s", p.name, within)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.name, p.err)
	}
	return 0
}

// waitLog waits until the process has logged s.
func (p *proc) waitLog(t testing.TB, s string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		text, changed := p.log.snapshot()
		if strings.Contains(text, s) {
			return
		}
		select {
		case <-changed:
		case <-p.done:
			t.Fatalf("%s exited (%v) before logging %q:\n%s", p.name, p.err, s, p.log.String())
		case <-deadline:
			t.Fatalf("%s did not log %q within %s:\n%s", p.name, s, within, p.log.String())
		}
	}
}

// logBuf collects a process's output and says when it grows.
type logBuf struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogBuf() *logBuf { return &logBuf{changed: make(chan struct{})} }

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
	return l.buf.Write(p)
}

func (l *logBuf) snapshot() (string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String(), l.changed
}

func (l *logBuf) String() string { s, _ := l.snapshot(); return s }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serveProc is a running `taskrace serve` and its HTTP address.
type serveProc struct {
	*proc
	base string
}

// apiRun is the part of a run the tests read.
type apiRun struct {
	ID          string   `json:"id"`
	Mode        string   `json:"mode"`
	Tasks       int      `json:"tasks"`
	DelayMS     int64    `json:"delay_ms"`
	Parallelism int      `json:"parallelism"`
	Status      string   `json:"status"`
	Reason      string   `json:"reason"`
	Done        int      `json:"done"`
	Failed      int      `json:"failed"`
	WallMS      *float64 `json:"wall_ms"`
	IdealMS     float64  `json:"ideal_ms"`
	Efficiency  *float64 `json:"efficiency"`
}

type apiWorker struct {
	Host string `json:"host"`
	PID  int    `json:"pid"`
	Slot int    `json:"slot"`
	Proc string `json:"proc"`
}

type apiOrphan struct {
	Worker         string     `json:"worker"`
	LeaseExpiresAt *time.Time `json:"lease_expires_at"`
	RetryAfter     *time.Time `json:"retry_after"`
	RetryBy        *time.Time `json:"retry_by"`
	Requeued       bool       `json:"requeued"`
}

type apiTask struct {
	ID       string     `json:"id"`
	Index    int        `json:"index"`
	State    string     `json:"state"`
	Worker   *apiWorker `json:"worker"`
	Attempts int        `json:"attempts"`
	Orphaned *apiOrphan `json:"orphaned"`
}

type apiTimeline struct {
	Run   apiRun     `json:"run"`
	Tasks []*apiTask `json:"tasks"`
}

// launch posts a plan and returns the run; it fails the test unless the answer is 201.
func (s *serveProc) launch(t testing.TB, plan map[string]any) apiRun {
	t.Helper()
	r, status, body := s.tryLaunch(t, plan)
	if status != http.StatusCreated {
		t.Fatalf("POST /api/runs %v: %d %s", plan, status, body)
	}
	return r
}

func (s *serveProc) tryLaunch(t testing.TB, plan map[string]any) (apiRun, int, string) {
	t.Helper()
	b, _ := json.Marshal(plan)
	resp, err := http.Post(s.base+"/api/runs", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST /api/runs: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r apiRun
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("POST /api/runs: %v: %s", err, body)
		}
	}
	return r, resp.StatusCode, string(body)
}

// getJSON gets path into v and returns the status (0 when the request failed).
func (s *serveProc) getJSON(path string, v any) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			return 0
		}
	}
	return resp.StatusCode
}

func (s *serveProc) timeline(t testing.TB, id string) apiTimeline {
	t.Helper()
	var tl apiTimeline
	if code := s.getJSON("/api/runs/"+id, &tl); code != http.StatusOK {
		t.Fatalf("GET /api/runs/%s: %d", id, code)
	}
	return tl
}

// event is one SSE frame of a run's stream.
type event struct {
	ID      string
	Type    string
	Index   *int       `json:"index"`
	TaskID  string     `json:"task_id"`
	Worker  *apiWorker `json:"worker"`
	Retry   *bool      `json:"retry"`
	Reason  string     `json:"reason"`
	Arrived time.Time  // when the test read it
}

func (e event) terminal() bool {
	return e.Type == "run.finished" || e.Type == "run.canceled" || e.Type == "run.interrupted"
}

// stream reads a run's SSE stream from after (empty: the start) and sends its events on
// out. It returns nil when the server ends the stream cleanly (after the terminal event,
// or on its shutdown), or the error that broke it.
func (s *serveProc) stream(ctx context.Context, runID, after string, out chan<- event) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/api/runs/"+runID+"/events", nil)
	if after != "" {
		req.Header.Set("Last-Event-ID", after)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET events: %s %s", resp.Status, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var e event
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if e.Type != "" {
				e.Arrived = time.Now()
				select {
				case out <- e:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			e = event{}
		case strings.HasPrefix(line, "id: "):
			e.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			e.Type = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &e); err != nil {
				return fmt.Errorf("event data %q: %w", line[6:], err)
			}
		}
	}
	return sc.Err()
}

// events reads a run's whole stream from the start until its terminal event.
func (s *serveProc) events(t testing.TB, runID string, within time.Duration) []event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	out := make(chan event, 1024)
	errc := make(chan error, 1)
	go func() { errc <- s.stream(ctx, runID, "", out); close(out) }()
	var evs []event
	for e := range out {
		evs = append(evs, e)
	}
	if err := <-errc; err != nil {
		t.Fatalf("events of run %s: %v (after %d events)", runID, err, len(evs))
	}
	if len(evs) == 0 || !evs[len(evs)-1].terminal() {
		t.Fatalf("events of run %s: the stream ended without a terminal event (%d events)", runID, len(evs))
	}
	return evs
}

// waitUntil polls cond until it holds or within passes: for state only visible by asking
// (a record in Redis), where no event says it changed.
func waitUntil(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		<-tick.C
	}
}

// finishedOnce checks that every task of a run of n tasks finished exactly once in evs.
func finishedOnce(t testing.TB, evs []event, n int) map[int]event {
	t.Helper()
	fin := map[int]event{}
	for _, e := range evs {
		if e.Type != "task.finished" {
			continue
		}
		if _, dup := fin[*e.Index]; dup {
			t.Errorf("task %d finished twice", *e.Index)
		}
		fin[*e.Index] = e
	}
	if len(fin) != n {
		t.Errorf("%d of %d tasks finished", len(fin), n)
	}
	return fin
}
