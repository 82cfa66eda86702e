// Command compare measures taskrace side by side with bare asynq on one machine, each in
// processes of its own against one redis-server and one delay target: the CPU of every
// process (from /proc/<pid>/stat) and the Redis commands (INFO commandstats) per task, the
// throughput, and the cost of an idle worker. Figures and how to read them are in
// docs/benchmarks.md.
//
//	go build -o bin/taskrace . && go run ./bench/compare -taskrace bin/taskrace
//
// (make bench-compare). It runs on Linux only, since it reads /proc.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/mccutchen/go-httpbin/v2/httpbin"
	"github.com/redis/go-redis/v9"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// opts are the command's flags.
type opts struct {
	role        string
	taskrace    string
	before      string
	pairs       int
	tasks       int
	concurrency int
	window      time.Duration
	rounds      int
	what        string
	redisURL    string
	target      string
	queue       string
	handler     string
	poll        time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	var o opts
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.taskrace, "taskrace", "bin/taskrace", "the taskrace binary to measure")
	fs.StringVar(&o.before, "before", "", "another taskrace binary (an earlier build, say) to measure in the same rounds as taskrace-before")
	fs.IntVar(&o.pairs, "pairs", 7, "interleaved rounds of the throughput comparison")
	fs.IntVar(&o.tasks, "tasks", 5000, "tasks per round")
	fs.IntVar(&o.concurrency, "concurrency", 5, "slots of each worker")
	fs.DurationVar(&o.window, "window", 30*time.Second, "length of each idle measurement")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds of the idle measurement")
	fs.StringVar(&o.what, "what", "throughput,idle", "what to measure: throughput, idle, or both")
	// The roles the command re-executes itself in.
	fs.StringVar(&o.role, "role", "", "internal: target or bare-worker")
	fs.StringVar(&o.redisURL, "redis", "", "internal: the Redis of a bare worker")
	fs.StringVar(&o.target, "target", "", "internal: the delay target of a bare worker (empty: no HTTP call)")
	fs.StringVar(&o.queue, "queue", "bare", "internal: the queue of a bare worker")
	fs.StringVar(&o.handler, "handler", "noop", "internal: noop or http")
	fs.DurationVar(&o.poll, "poll", time.Second, "internal: TaskCheckInterval of a bare worker")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	switch o.role {
	case "target":
		err = serveTarget(stdout)
	case "bare-worker":
		err = bareWorker(o)
	case "":
		err = compare(o, stdout)
	default:
		err = fmt.Errorf("unknown role %q", o.role)
	}
	if err != nil {
		fmt.Fprintln(stderr, "compare:", err)
		return 1
	}
	return 0
}

// serveTarget serves the delay target (go-httpbin at the root) on a free port and prints
// its URL.
func serveTarget(stdout io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "http://%s\n", ln.Addr())
	return http.Serve(ln, httpbin.New(httpbin.WithMaxDuration(30*time.Second)))
}

// bareWorker is an asynq server with a handler that does nothing, or that makes the same
// call as taskrace's Fetcher and writes a result.
func bareWorker(o opts) error {
	opt, err := asynq.ParseRedisURI(o.redisURL)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}, Timeout: 30 * time.Second}
	mux := asynq.NewServeMux()
	mux.HandleFunc("fetch", func(ctx context.Context, t *asynq.Task) error {
		if o.handler == "noop" {
			return nil
		}
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.target+"/delay/0", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res, _ := json.Marshal(map[string]any{"status": resp.StatusCode, "duration_ms": time.Since(start).Seconds() * 1000})
		_, err = t.ResultWriter().Write(res)
		return err
	})
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: o.concurrency, Queues: map[string]int{o.queue: 1},
		TaskCheckInterval: o.poll, LogLevel: asynq.ErrorLevel})
	return srv.Run(mux)
}

// proc is a process the comparison started.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *bufio.Reader
}

func startProc(name string, env []string, bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = io.Discard
	if os.Getenv("COMPARE_VERBOSE") != "" {
		cmd.Stderr = os.Stderr
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &proc{name: name, cmd: cmd, out: bufio.NewReader(out)}, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits for the process, killing it after 15 s.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// cpuOf returns the CPU time (user + system) pid has used, from /proc/<pid>/stat.
func cpuOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat returns the CPU time of a /proc/<pid>/stat line.
func parseStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
	if i < 0 || i+2 > len(s) {
		return 0, fmt.Errorf("not a stat line: %q", s)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat line: %q", s)
	}
	// Fields from the state on: utime and stime are fields 14 and 15 of the line, 12 and 13 here.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks, nil
}

// commandStats returns the calls of each command Redis has run, from INFO commandstats.
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]int64, error) {
	s, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64)
	for line := range strings.SplitSeq(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[strings.TrimPrefix(name, "cmdstat_")] = n
			}
		}
	}
	return out, nil
}

// snapshot is the CPU of each measured process and Redis's command counts at one moment.
type snapshot struct {
	at   time.Time
	cpu  map[string]time.Duration
	cmds map[string]int64
}

// bench holds what every measurement shares: Redis and the delay target.
type bench struct {
	o      opts
	self   string
	dir    string
	redis  *proc
	rport  int
	rdb    *redis.Client
	target *proc
	turl   string
	port   int // the next port to hand out
}

func compare(o opts, stdout io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.taskrace); err != nil {
		return fmt.Errorf("the taskrace binary: %w (build it with `go build -o bin/taskrace .`)", err)
	}
	o.taskrace, _ = filepath.Abs(o.taskrace)
	if o.before != "" {
		o.before, _ = filepath.Abs(o.before)
	}
	dir, err := os.MkdirTemp("", "taskrace-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{o: o, self: self, dir: dir}
	if err := b.startShared(); err != nil {
		return err
	}
	defer b.redis.stop()
	defer b.target.stop()
	defer b.rdb.Close()
	fmt.Fprintf(stdout, "# %s, load average %s\n", time.Now().UTC().Format(time.RFC3339), loadavg())
	if strings.Contains(o.what, "throughput") {
		if err := b.throughput(stdout); err != nil {
			return err
		}
	}
	if strings.Contains(o.what, "idle") {
		if err := b.idle(stdout); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "# done, load average %s\n", loadavg())
	return nil
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (b *bench) startShared() error {
	var err error
	if b.rport, err = freePort(); err != nil {
		return err
	}
	b.redis, err = startProc("redis", nil, "redis-server", "--port", strconv.Itoa(b.rport), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", b.dir, "--databases", "64")
	if err != nil {
		return err
	}
	b.rdb = redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", b.rport)})
	if err := waitFor(10*time.Second, "redis-server", func() bool { return b.rdb.Ping(context.Background()).Err() == nil }); err != nil {
		return err
	}
	b.target, err = startProc("target", nil, b.self, "-role", "target")
	if err != nil {
		return err
	}
	line, err := b.target.out.ReadString('\n')
	if err != nil {
		return fmt.Errorf("the delay target: %w", err)
	}
	b.turl = strings.TrimSpace(line)
	return nil
}

// waitFor polls cond every 20 ms until it holds or within passes.
func waitFor(within time.Duration, what string, cond func() bool) error {
	end := time.Now().Add(within)
	for !cond() {
		if time.Now().After(end) {
			return fmt.Errorf("%s not ready within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// setup is the processes of one measurement besides Redis and the target.
type setup struct {
	procs    map[string]*proc
	serveURL string // taskrace's serve, if any
	redisURL string
}

func (s *setup) stop() {
	for _, p := range s.procs {
		p.stop()
	}
}

// mode starts the processes of one mode on a flushed database and waits until they serve.
func (b *bench) mode(name string, embedded bool) (*setup, error) {
	if err := b.rdb.FlushAll(context.Background()).Err(); err != nil {
		return nil, err
	}
	s := &setup{procs: make(map[string]*proc), redisURL: fmt.Sprintf("redis://127.0.0.1:%d/0", b.rport)}
	c := strconv.Itoa(b.o.concurrency)
	env := []string{"REDIS_URL=" + s.redisURL, "HTTPBIN_URL=" + b.turl, "CONCURRENCY=" + c, "LOG_FORMAT=json"}
	var err error
	switch name {
	case "bare-noop", "bare-http", "bare-idle":
		handler, poll := "noop", "10ms" // the same fallback as taskrace's, so that neither waits at the start
		if name == "bare-http" {
			handler = "http"
		}
		if name == "bare-idle" {
			poll = "1s" // asynq's default
		}
		s.procs["worker"], err = startProc("worker", nil, b.self, "-role", "bare-worker", "-redis", s.redisURL,
			"-target", b.turl, "-handler", handler, "-concurrency", c, "-poll", poll)
	case "taskrace", "taskrace-before":
		bin := b.o.taskrace
		if name == "taskrace-before" {
			bin = b.o.before
		}
		if err = b.startServe(s, bin, append(env, "WORKER=false")); err == nil {
			s.procs["worker"], err = startProc("worker", env, bin, "worker")
		}
	case "taskrace-worker":
		s.procs["worker"], err = startProc("worker", env, b.o.taskrace, "worker")
	case "serve":
		if embedded {
			env = []string{"CONCURRENCY=" + c, "LOG_FORMAT=json"}
		}
		err = b.startServe(s, b.o.taskrace, env)
	default:
		err = fmt.Errorf("unknown mode %s", name)
	}
	if err != nil {
		s.stop()
		return nil, err
	}
	if !embedded {
		if err := waitFor(20*time.Second, name+"'s asynq server", b.listed); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

func (b *bench) startServe(s *setup, bin string, env []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := startProc("serve", append(env, "ADDR="+addr), bin, "serve")
	if err != nil {
		return err
	}
	s.procs["serve"] = p
	s.serveURL = "http://" + addr
	return waitFor(20*time.Second, "serve", func() bool {
		resp, err := http.Get(s.serveURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// listed tells whether an asynq server has written its first heartbeat to database 0.
func (b *bench) listed() bool {
	keys, err := b.rdb.Keys(context.Background(), "asynq:servers:*").Result()
	return err == nil && len(keys) > 0
}

func (b *bench) snap(s *setup) (snapshot, error) {
	sn := snapshot{at: time.Now(), cpu: make(map[string]time.Duration)}
	pids := map[string]int{"redis": b.redis.pid(), "target": b.target.pid(), "driver": os.Getpid()}
	for n, p := range s.procs {
		pids[n] = p.pid()
	}
	for n, pid := range pids {
		d, err := cpuOf(pid)
		if err != nil {
			return sn, fmt.Errorf("cpu of %s: %w", n, err)
		}
		sn.cpu[n] = d
	}
	var err error
	sn.cmds, err = commandStats(context.Background(), b.rdb)
	return sn, err
}

// delta is what happened between two snapshots, less the INFO call of the snapshot itself.
type delta struct {
	wall time.Duration
	cpu  map[string]time.Duration
	cmds map[string]int64
}

func diff(a, z snapshot) delta {
	d := delta{wall: z.at.Sub(a.at), cpu: make(map[string]time.Duration), cmds: make(map[string]int64)}
	for n, c := range z.cpu {
		d.cpu[n] = c - a.cpu[n]
	}
	for n, c := range z.cmds {
		if v := c - a.cmds[n]; v > 0 {
			d.cmds[n] = v
		}
	}
	if d.cmds["info"] > 0 {
		d.cmds["info"]-- // the snapshot's own
	}
	return d
}

func (d delta) allCPU() time.Duration {
	var t time.Duration
	for _, c := range d.cpu {
		t += c
	}
	return t
}

func (d delta) allCmds() int64 {
	var t int64
	for _, c := range d.cmds {
		t += c
	}
	return t
}

// throughput runs the three modes in interleaved rounds, the order turned round each time.
func (b *bench) throughput(stdout io.Writer) error {
	modes := []string{"bare-noop", "bare-http", "taskrace"}
	if b.o.before != "" {
		modes = append(modes, "taskrace-before")
	}
	results := make(map[string][]delta)
	fmt.Fprintf(stdout, "\n## Throughput: %d tasks × 0 s per round, concurrency %d, %d rounds, target %s\n\n", b.o.tasks, b.o.concurrency, b.o.pairs, b.turl)
	fmt.Fprintln(stdout, "| round | mode | tasks/s | CPU ms/task: all | worker | serve | Redis | target | driver | Redis cmds/task |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|---|---|")
	for r := range b.o.pairs {
		order := slices.Clone(modes)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, m := range order {
			d, err := b.oneRound(m)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, m, err)
			}
			results[m] = append(results[m], d)
			fmt.Fprintf(stdout, "| %d | %s | %.0f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.1f |\n", r+1, m,
				float64(b.o.tasks)/d.wall.Seconds(), b.perTask(d.allCPU()), b.perTask(d.cpu["worker"]), b.perTask(d.cpu["serve"]),
				b.perTask(d.cpu["redis"]), b.perTask(d.cpu["target"]), b.perTask(d.cpu["driver"]), float64(d.allCmds())/float64(b.o.tasks))
		}
	}
	rate := func(d delta) float64 { return float64(b.o.tasks) / d.wall.Seconds() }
	cpu := func(d delta) float64 { return b.perTask(d.allCPU()) }
	fmt.Fprintf(stdout, "\n| mode | tasks/s (median, min–max) | CPU ms/task (median, min–max) | Redis cmds/task |\n|---|---|---|---|\n")
	for _, m := range modes {
		ds := results[m]
		lo, med, hi := spread(ds, rate)
		clo, cmed, chi := spread(ds, cpu)
		_, cmds, _ := spread(ds, func(d delta) float64 { return float64(d.allCmds()) / float64(b.o.tasks) })
		fmt.Fprintf(stdout, "| %s | %.0f (%.0f–%.0f) | %.3f (%.3f–%.3f) | %.1f |\n", m, med, lo, hi, cmed, clo, chi, cmds)
	}
	// Ratios of each round's taskrace to the bare-http of the same round.
	var tr, cr []float64
	for i := range results["taskrace"] {
		t, h := results["taskrace"][i], results["bare-http"][i]
		tr = append(tr, rate(t)/rate(h))
		cr = append(cr, cpu(t)/cpu(h))
	}
	fmt.Fprintf(stdout, "\ntaskrace vs bare asynq with the same HTTP call, per round: throughput %s (median %.2f×), CPU per task %s (median %.2f×)\n",
		fmtRatios(tr), median(tr), fmtRatios(cr), median(cr))
	if b.o.before != "" {
		tr, cr = nil, nil
		for i := range results["taskrace-before"] {
			t, h := results["taskrace-before"][i], results["bare-http"][i]
			tr = append(tr, rate(t)/rate(h))
			cr = append(cr, cpu(t)/cpu(h))
		}
		fmt.Fprintf(stdout, "taskrace-before vs the same: throughput %s (median %.2f×), CPU per task %s (median %.2f×)\n",
			fmtRatios(tr), median(tr), fmtRatios(cr), median(cr))
	}
	t := results["taskrace"][len(results["taskrace"])/2]
	h := results["bare-http"][len(results["bare-http"])/2]
	fmt.Fprintf(stdout, "Redis commands of one round, taskrace: %s\nbare-http: %s\n", topCmds(t.cmds, b.o.tasks), topCmds(h.cmds, b.o.tasks))
	return nil
}

func (b *bench) perTask(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000 / float64(b.o.tasks)
}

// oneRound runs b.o.tasks tasks through mode m and returns what it cost.
func (b *bench) oneRound(m string) (delta, error) {
	s, err := b.mode(m, false)
	if err != nil {
		return delta{}, err
	}
	defer s.stop()
	ctx := context.Background()
	queue := "bare"
	taskrace := strings.HasPrefix(m, "taskrace")
	if taskrace {
		queue = "taskrace"
	}
	a, err := b.snap(s)
	if err != nil {
		return delta{}, err
	}
	if taskrace {
		// The built-in target, which HTTPBIN_URL points at the shared one.
		body := fmt.Sprintf(`{"mode":"distributed","tasks":%d,"delay_ms":0,"target":"builtin"}`, b.o.tasks)
		resp, err := http.Post(s.serveURL+"/api/runs", "application/json", strings.NewReader(body))
		if err != nil {
			return delta{}, err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return delta{}, fmt.Errorf("launch: %s: %s", resp.Status, msg)
		}
	} else if err := b.enqueueBare(ctx); err != nil {
		return delta{}, err
	}
	// Polled the same way for every mode, one ZCARD of asynq's completed set each 20 ms,
	// so its cost is the same in each.
	completed := "asynq:{" + queue + "}:completed"
	err = waitFor(2*time.Minute, "the round's end", func() bool {
		n, err := b.rdb.ZCard(ctx, completed).Result()
		return err == nil && n >= int64(b.o.tasks)
	})
	if err != nil {
		return delta{}, err
	}
	z, err := b.snap(s)
	if err != nil {
		return delta{}, err
	}
	return diff(a, z), nil
}

// enqueueBare enqueues the round's tasks from 8 goroutines, as taskrace's launcher does,
// kept for an hour as taskrace keeps its tasks.
func (b *bench) enqueueBare(ctx context.Context) error {
	client := asynq.NewClientFromRedisClient(b.rdb)
	var next atomic.Int64
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.o.tasks) {
					errs <- nil
					return
				}
				payload := fmt.Appendf(nil, `{"id":"bench","index":%d}`, i)
				if _, err := client.EnqueueContext(ctx, asynq.NewTask("fetch", payload), asynq.Queue("bare"),
					asynq.MaxRetry(3), asynq.Retention(time.Hour)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
	for range 8 {
		err = errors.Join(err, <-errs)
	}
	return err
}

// idle measures what idle workers cost, in interleaved rounds of b.o.window each.
func (b *bench) idle(stdout io.Writer) error {
	type cfg struct {
		name     string
		mode     string
		embedded bool
		proc     string
	}
	cfgs := []cfg{
		{"taskrace worker", "taskrace-worker", false, "worker"},
		{"serve (in-process worker), Redis", "serve", false, "serve"},
		{"serve (in-process worker), embedded Redis", "serve", true, "serve"},
		{"bare asynq, defaults (TaskCheckInterval 1 s)", "bare-idle", false, "worker"},
	}
	fmt.Fprintf(stdout, "\n## Idle: nothing queued, %s windows, %d rounds\n\n", b.o.window, b.o.rounds)
	fmt.Fprintln(stdout, "| round | what | process CPU % of a core | Redis CPU % | Redis commands/s | load average |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|")
	type res struct{ cpu, rcpu, cmds []float64 }
	all := make(map[string]*res)
	for r := range b.o.rounds {
		order := slices.Clone(cfgs)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, c := range order {
			s, err := b.mode(c.mode, c.embedded)
			if err != nil {
				return fmt.Errorf("idle %s: %w", c.name, err)
			}
			time.Sleep(3 * time.Second) // past the start-up's own work
			a, err := b.snap(s)
			if err == nil {
				time.Sleep(b.o.window)
				var z snapshot
				if z, err = b.snap(s); err == nil {
					d := diff(a, z)
					pct := func(x time.Duration) float64 { return 100 * x.Seconds() / d.wall.Seconds() }
					cmds := float64(d.allCmds()) / d.wall.Seconds()
					if all[c.name] == nil {
						all[c.name] = &res{}
					}
					rs := all[c.name]
					rs.cpu = append(rs.cpu, pct(d.cpu[c.proc]))
					rs.rcpu = append(rs.rcpu, pct(d.cpu["redis"]))
					rs.cmds = append(rs.cmds, cmds)
					fmt.Fprintf(stdout, "| %d | %s | %.2f | %.2f | %.1f | %s |\n", r+1, c.name, pct(d.cpu[c.proc]), pct(d.cpu["redis"]), cmds, loadavg())
				}
			}
			s.stop()
			if err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(stdout, "\n| what (median of %d) | process CPU %% | Redis CPU %% | Redis commands/s |\n|---|---|---|---|\n", b.o.rounds)
	for _, c := range cfgs {
		rs := all[c.name]
		fmt.Fprintf(stdout, "| %s | %.2f | %.2f | %.1f |\n", c.name, median(rs.cpu), median(rs.rcpu), median(rs.cmds))
	}
	fmt.Fprintln(stdout, "\n(embedded Redis runs inside serve: its CPU is serve's, and it keeps no command counts; the Redis columns of that row are the idle redis-server's own.)")
	return nil
}

func spread(ds []delta, f func(delta) float64) (lo, med, hi float64) {
	var v []float64
	for _, d := range ds {
		v = append(v, f(d))
	}
	slices.Sort(v)
	return v[0], median(v), v[len(v)-1]
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatios(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(parts, " ")
}

// topCmds lists the commands of a round per task, most first.
func topCmds(cmds map[string]int64, tasks int) string {
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range cmds {
		l = append(l, kv{k, v})
	}
	slices.SortFunc(l, func(a, b kv) int { return int(b.v - a.v) })
	var parts []string
	for i, e := range l {
		if i == 8 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", e.k, float64(e.v)/float64(tasks)))
	}
	return strings.Join(parts, ", ")
}
