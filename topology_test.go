//go:build linux

package main

// The compose topology as real processes: redis-server with AOF, `taskrace serve
// --worker=false` and `taskrace worker` processes, each started with the command and
// environment docker-compose.yml gives its service (see procs_test.go), so that the file
// and these tests cannot drift apart. The cases are independent and run in parallel, each
// on its own redis-server.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"

	"github.com/taskrace/taskrace/internal/redistest"
)

func plan(mode string, tasks int, delayMS int64) map[string]any {
	return map[string]any{"mode": mode, "tasks": tasks, "delay_ms": delayMS}
}

// TestComposeFile checks that docker-compose.yml and the Dockerfile describe the
// deployment the README promises; `docker-compose config -q` (in .ci/run) checks the syntax.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	redis, web, worker := c.Services["redis"], c.Services["web"], c.Services["worker"]

	if !strings.HasPrefix(redis.Image, "redis:7") {
		t.Errorf("redis image %q, want Redis 7", redis.Image)
	}
	if !slices.Contains(redis.Command, "--appendonly") || len(redis.Volumes) == 0 || len(redis.Healthcheck.Test) == 0 {
		t.Errorf("redis: want appendonly, a volume and a healthcheck; got command %v, volumes %v, healthcheck %v",
			redis.Command, redis.Volumes, redis.Healthcheck.Test)
	}
	if !slices.Equal(web.Command, []string{"serve", "--worker=false"}) {
		t.Errorf("web command %v, want serve --worker=false", web.Command)
	}
	if !slices.Contains(web.Ports, "8080:8080") {
		t.Errorf("web ports %v, want 8080:8080", web.Ports)
	}
	for name, s := range map[string]service{"web": web, "worker": worker} {
		if s.DependsOn["redis"].Condition != "service_healthy" {
			t.Errorf("%s does not wait for a healthy redis: %v", name, s.DependsOn)
		}
		if s.Build == nil {
			t.Errorf("%s is not built from the Dockerfile", name)
		}
	}
	if !slices.Equal(worker.Command, []string{"worker"}) || worker.Deploy.Replicas != 2 ||
		worker.Environment["CONCURRENCY"] != "5" {
		t.Errorf("worker: command %v, replicas %d, CONCURRENCY %q; want worker, 2, 5",
			worker.Command, worker.Deploy.Replicas, worker.Environment["CONCURRENCY"])
	}
	if got := worker.Environment["HTTPBIN_URL"]; got != "http://web:8080/httpbin" {
		t.Errorf("worker HTTPBIN_URL %q: workers must reach the built-in target on web by service name", got)
	}
	// The image's HEALTHCHECK probes HTTP; a worker serves none, so it must probe Redis.
	if !slices.Equal(worker.Healthcheck.Test, []string{"CMD", "/taskrace", "healthcheck", "--redis"}) {
		t.Errorf("worker healthcheck %v, want [CMD /taskrace healthcheck --redis]", worker.Healthcheck.Test)
	}

	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-trimpath", "-X main.version=", "USER nonroot", `HEALTHCHECK`, `"/taskrace", "healthcheck"`, "AS build"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, line := range strings.Split(string(df), "\n") {
		if !strings.HasPrefix(line, "RUN ") {
			continue
		}
		for _, banned := range []string{"npm", "npx", "curl", "templ"} {
			if strings.Contains(line, banned) {
				t.Errorf("Dockerfile runs %q: the image is built from the committed generated files, with no curl", banned)
			}
		}
	}
}

func TestTopologySpreadsOverWorkers(t *testing.T) {
	t.Parallel()
	tp := newTopology(t, redistest.WithAOF())
	web := tp.serve()
	w1, w2 := tp.worker(), tp.worker()

	r := web.launch(t, plan("distributed", 20, 500))
	if r.Parallelism != 10 {
		t.Errorf("parallelism %d, want 10 (two workers × CONCURRENCY 5)", r.Parallelism)
	}
	evs := web.events(t, r.ID, time.Minute)
	if last := evs[len(evs)-1]; last.Type != "run.finished" {
		t.Fatalf("run ended with %s %s", last.Type, last.Reason)
	}
	perPID := map[int]int{}
	for _, e := range finishedOnce(t, evs, 20) {
		perPID[e.Worker.PID]++
	}
	if len(perPID) != 2 || perPID[w1.pid()] == 0 || perPID[w2.pid()] == 0 {
		t.Errorf("tasks per worker pid %v; want both %d and %d", perPID, w1.pid(), w2.pid())
	}
	tl := web.timeline(t, r.ID)
	if tl.Run.Status != "finished" || tl.Run.Done != 20 || tl.Run.Failed != 0 {
		t.Errorf("run %+v, want finished with 20 done, none failed", tl.Run)
	}

	// The workers view lists the two worker processes (the web process runs none).
	var workers struct {
		Servers []struct {
			PID         int `json:"pid"`
			Concurrency int `json:"concurrency"`
		} `json:"servers"`
		Capacity int `json:"capacity"`
	}
	if code := web.getJSON("/api/workers", &workers); code != 200 {
		t.Fatalf("GET /api/workers: %d", code)
	}
	listed := map[int]bool{}
	for _, s := range workers.Servers {
		listed[s.PID] = true
	}
	if len(workers.Servers) != 2 || !listed[w1.pid()] || !listed[w2.pid()] || workers.Capacity != 10 {
		t.Errorf("workers view lists %+v (capacity %d); want pids %d and %d, 10 slots", workers.Servers, workers.Capacity, w1.pid(), w2.pid())
	}
}

// A worker killed mid-run leaves its active tasks to asynq's lease recovery (60–120 s).
// The wait is visible: GET /api/runs/{id} marks them orphaned with when asynq retries them.
// Every task still finishes, once.
func TestTopologyWorkerKilled(t *testing.T) {
	t.Parallel()
	tp := newTopology(t, redistest.WithAOF())
	web := tp.serve()
	victim, survivor := tp.worker(), tp.worker()

	r := web.launch(t, plan("distributed", 20, 2000))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := make(chan event, 1024)
	errc := make(chan error, 1)
	go func() { errc <- web.stream(ctx, r.ID, "", out); close(out) }()

	var evs []event
	for e := range out {
		evs = append(evs, e)
		if e.Type == "task.started" && e.Worker.PID == victim.pid() {
			break
		}
	}
	victim.signal(syscall.SIGKILL)
	victim.wait(t, 10*time.Second)

	// Its heartbeat lapses within 10 s: then its running tasks show as orphaned.
	var orphans []*apiTask
	waitUntil(t, 30*time.Second, "orphaned tasks in GET /api/runs/{id}", func() bool {
		orphans = orphans[:0]
		for _, task := range web.timeline(t, r.ID).Tasks {
			if task.Orphaned != nil {
				orphans = append(orphans, task)
			}
		}
		return len(orphans) > 0
	})
	var retryBy time.Time
	for _, o := range orphans {
		if o.Worker == nil || o.Worker.PID != victim.pid() || o.State != "running" {
			t.Errorf("orphan %s: worker %+v, state %s; want running on pid %d", o.ID, o.Worker, o.State, victim.pid())
		}
		if !strings.HasSuffix(o.Orphaned.Worker, fmt.Sprintf(":%d", victim.pid())) {
			t.Errorf("orphan %s names worker %q, want pid %d", o.ID, o.Orphaned.Worker, victim.pid())
		}
		if o.Orphaned.Requeued || o.Orphaned.RetryAfter == nil || o.Orphaned.RetryBy == nil ||
			o.Orphaned.RetryBy.Sub(*o.Orphaned.RetryAfter) != time.Minute {
			t.Fatalf("orphan %s: %+v; want a retry window of one minute", o.ID, o.Orphaned)
		}
		retryBy = *o.Orphaned.RetryBy
	}
	t.Logf("%d orphaned tasks; asynq retries them by %s (in %s)", len(orphans), retryBy.Format(time.TimeOnly),
		time.Until(retryBy).Round(time.Second))

	for e := range out {
		evs = append(evs, e)
	}
	if err := <-errc; err != nil {
		t.Fatalf("stream: %v", err)
	}
	if last := evs[len(evs)-1]; last.Type != "run.finished" {
		t.Fatalf("run ended with %s %s", last.Type, last.Reason)
	}
	fin := finishedOnce(t, evs, 20)
	for _, o := range orphans {
		e := fin[o.Index]
		if e.Worker == nil || e.Worker.PID != survivor.pid() {
			t.Errorf("orphaned task %d finished by %+v, want the survivor (pid %d)", o.Index, e.Worker, survivor.pid())
		}
		if e.Arrived.After(retryBy.Add(10 * time.Second)) {
			t.Errorf("orphaned task %d finished at %s, well after the announced %s", o.Index, e.Arrived, retryBy)
		}
	}
	tl := web.timeline(t, r.ID)
	if tl.Run.Status != "finished" || tl.Run.Done != 20 || tl.Run.Failed != 0 {
		t.Errorf("run %+v, want finished with 20 done, none failed", tl.Run)
	}
	for _, task := range tl.Tasks {
		if task.Orphaned != nil || task.State != "done" {
			t.Errorf("task %d after the run: state %s, orphaned %+v", task.Index, task.State, task.Orphaned)
		}
	}
}

// A worker told to stop finishes the tasks it has started before it exits.
func TestTopologyWorkerTerminated(t *testing.T) {
	t.Parallel()
	tp := newTopology(t, redistest.WithAOF())
	web := tp.serve()
	leaving, staying := tp.worker(), tp.worker()

	r := web.launch(t, plan("distributed", 20, 1500))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := make(chan event, 1024)
	errc := make(chan error, 1)
	go func() { errc <- web.stream(ctx, r.ID, "", out); close(out) }()
	var evs []event
	signaled := false
	for e := range out {
		evs = append(evs, e)
		if !signaled && e.Type == "task.started" && e.Worker.PID == leaving.pid() {
			leaving.signal(syscall.SIGTERM)
			signaled = true
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("stream: %v", err)
	}
	if code := leaving.wait(t, 15*time.Second); code != 0 {
		t.Errorf("worker exited with %d after SIGTERM, want 0", code)
	}
	if last := evs[len(evs)-1]; last.Type != "run.finished" {
		t.Fatalf("run ended with %s %s", last.Type, last.Reason)
	}
	fin := finishedOnce(t, evs, 20)
	inFlight := 0
	for _, e := range evs {
		if e.Type == "task.failed" {
			t.Errorf("task %d failed on %+v: a stopping worker must finish its tasks", *e.Index, e.Worker)
		}
		if e.Type == "task.started" && e.Worker.PID == leaving.pid() {
			inFlight++
			if f := fin[*e.Index]; f.Worker == nil || f.Worker.PID != leaving.pid() {
				t.Errorf("task %d started on the stopping worker but finished on %+v", *e.Index, f.Worker)
			}
		}
	}
	counts := map[int]int{}
	for _, e := range fin {
		counts[e.Worker.PID]++
	}
	t.Logf("stopping worker finished %d tasks it had started; the other %d", inFlight, counts[staying.pid()])
}

// Restarting the web process mid-run: the workers carry on, and a viewer that reconnects
// with Last-Event-ID misses nothing. Here the workers' built-in delay target is a server of
// the test's rather than web's /httpbin, so that the restart is all that is tested: through
// web, calls made while it is down would fail and be retried.
func TestTopologyWebRestart(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(httpbin.New())
	t.Cleanup(target.Close)
	tp := newTopology(t, redistest.WithAOF())
	web := tp.serve()
	tp.worker("HTTPBIN_URL=" + target.URL)
	tp.worker("HTTPBIN_URL=" + target.URL)

	r := web.launch(t, plan("distributed", 20, 3000))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var seen []event
	out := make(chan event, 1024)
	errc := make(chan error, 1)
	go func() { errc <- web.stream(ctx, r.ID, "", out); close(out) }()
	for e := range out {
		seen = append(seen, e)
		if e.Type == "task.started" {
			break
		}
	}
	web.signal(syscall.SIGTERM)
	for e := range out { // what the old process still sent before it closed the stream
		seen = append(seen, e)
	}
	if err := <-errc; err != nil {
		t.Errorf("the stream did not end cleanly on shutdown: %v", err)
	}
	if code := web.wait(t, 15*time.Second); code != 0 {
		t.Errorf("serve exited with %d after SIGTERM, want 0", code)
	}

	web = tp.serveOn(strings.TrimPrefix(web.base, "http://"))
	if tl := web.timeline(t, r.ID); tl.Run.Status != "running" {
		t.Fatalf("run is %s once web is back: the restart was not mid-run", tl.Run.Status)
	}
	out = make(chan event, 1024)
	go func() { errc <- web.stream(ctx, r.ID, seen[len(seen)-1].ID, out); close(out) }()
	for e := range out {
		seen = append(seen, e)
	}
	if err := <-errc; err != nil {
		t.Fatalf("resumed stream: %v", err)
	}

	all := web.events(t, r.ID, 10*time.Second)
	if !slices.EqualFunc(seen, all, func(a, b event) bool { return a.ID == b.ID && a.Type == b.Type }) {
		t.Errorf("the viewer saw %d events across the restart, the log has %d:\nviewer %v\nlog    %v",
			len(seen), len(all), ids(seen), ids(all))
	}
	if last := all[len(all)-1]; last.Type != "run.finished" {
		t.Fatalf("run ended with %s %s", last.Type, last.Reason)
	}
	finishedOnce(t, all, 20)
}

// Workers reach the built-in target through serve: stopping serve for 5 s mid-run fails
// their calls, and the retries (1, 2, 4, 8 s apart by default) carry every task over it.
func TestTopologyServeOutage(t *testing.T) {
	t.Parallel()
	const outage = 5 * time.Second
	tp := newTopology(t, redistest.WithAOF())
	web := tp.serve()
	tp.worker()
	tp.worker()

	r := web.launch(t, plan("distributed", 30, 1000))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := make(chan event, 1024)
	errc := make(chan error, 1)
	go func() { errc <- web.stream(ctx, r.ID, "", out); close(out) }()
	for e := range out {
		if e.Type == "task.finished" {
			break
		}
	}
	web.signal(syscall.SIGTERM)
	go func() {
		for range out { // what the stopping process still sends
		}
	}()
	web.wait(t, 15*time.Second)
	<-errc
	down := time.Now()
	<-time.After(outage) // the outage itself, not a wait for something
	web = tp.serveOn(strings.TrimPrefix(web.base, "http://"))
	t.Logf("serve was down for %s", time.Since(down).Round(100*time.Millisecond))

	evs := web.events(t, r.ID, time.Minute)
	if last := evs[len(evs)-1]; last.Type != "run.finished" {
		t.Fatalf("run ended with %s %s", last.Type, last.Reason)
	}
	finishedOnce(t, evs, 30)
	retried := 0
	for _, e := range evs {
		if e.Type != "task.failed" {
			continue
		}
		if e.Retry == nil || !*e.Retry {
			t.Errorf("task %d failed for good during a %s outage", *e.Index, outage)
		}
		retried++
	}
	if retried == 0 {
		t.Fatal("no call failed while serve was down: the outage was not mid-run")
	}
	t.Logf("%d failed attempts, all retried", retried)
	if tl := web.timeline(t, r.ID); tl.Run.Status != "finished" || tl.Run.Done != 30 || tl.Run.Failed != 0 {
		t.Errorf("run %+v, want finished with 30 done, none failed", tl.Run)
	}
}

func ids(evs []event) []string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = e.ID
	}
	return s
}

// Redis restarted from its AOF between runs: the history is there, and runs go on.
func TestTopologyRedisRestart(t *testing.T) {
	t.Parallel()
	tp := newTopology(t, redistest.WithAOF())
	web := tp.serve()
	tp.worker()
	tp.worker()

	first := web.launch(t, plan("distributed", 10, 100))
	web.events(t, first.ID, 30*time.Second)
	local := web.launch(t, plan("sequential", 2, 50))
	web.events(t, local.ID, 30*time.Second)

	tp.redis.Kill()
	tp.redis.Restart(t)

	var list struct{ Runs []apiRun }
	waitUntil(t, 30*time.Second, "GET /api/runs after the Redis restart", func() bool {
		return web.getJSON("/api/runs", &list) == http.StatusOK && len(list.Runs) == 2
	})
	for i, want := range []string{local.ID, first.ID} {
		if got := list.Runs[i]; got.ID != want || got.Status != "finished" || got.WallMS == nil {
			t.Errorf("runs[%d] after restart = %+v, want %s finished", i, got, want)
		}
	}

	var next apiRun
	waitUntil(t, 30*time.Second, "a launch after the Redis restart", func() bool {
		var status int
		next, status, _ = web.tryLaunch(t, plan("distributed", 10, 100))
		return status == http.StatusCreated
	})
	if evs := web.events(t, next.ID, 30*time.Second); evs[len(evs)-1].Type != "run.finished" {
		t.Errorf("run after the restart ended with %s", evs[len(evs)-1].Type)
	}
}

// Two web processes on one Redis: runs launched on one are watched live on the other.
func TestTopologyTwoServes(t *testing.T) {
	t.Parallel()
	tp := newTopology(t, redistest.WithAOF())
	a, b := tp.serve(), tp.serve()
	tp.worker()
	tp.worker()

	for _, p := range []map[string]any{plan("distributed", 20, 1000), plan("sequential", 4, 300)} {
		r := a.launch(t, p)
		onB := b.events(t, r.ID, time.Minute)
		if last := onB[len(onB)-1]; last.Type != "run.finished" {
			t.Fatalf("%s run ended with %s", r.Mode, last.Type)
		}
		// Live: events reached B while the run went on, not all at its end.
		var firstFinish time.Time
		for _, e := range onB {
			if e.Type == "task.finished" {
				firstFinish = e.Arrived
				break
			}
		}
		if spread := onB[len(onB)-1].Arrived.Sub(firstFinish); spread < time.Duration(p["delay_ms"].(int64))*time.Millisecond/2 {
			t.Errorf("%s run: B saw its first task.finished only %s before run.finished: not live", r.Mode, spread)
		}
		onA := a.events(t, r.ID, 10*time.Second)
		if !slices.EqualFunc(onA, onB, func(x, y event) bool { return x.ID == y.ID }) {
			t.Errorf("%s run: B's stream differs from A's:\nA %v\nB %v", r.Mode, ids(onA), ids(onB))
		}
		finishedOnce(t, onB, r.Tasks)
	}
}

// SIGTERM: serve ends its streams cleanly within SHUTDOWN_TIMEOUT, and its local runs
// end interrupted, never running forever.
func TestTopologyServeShutdown(t *testing.T) {
	t.Parallel()
	tp := newTopology(t, redistest.WithAOF())
	limit, err := time.ParseDuration(tp.compose.Services["web"].Environment["SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("web SHUTDOWN_TIMEOUT: %v", err)
	}
	a, b := tp.serve(), tp.serve()

	r := a.launch(t, plan("sequential", 5, 2000))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := make(chan event, 1024)
	errc := make(chan error, 1)
	go func() { errc <- a.stream(ctx, r.ID, "", out); close(out) }()
	var seen []event
	for e := range out {
		seen = append(seen, e)
		if e.Type == "task.started" {
			break
		}
	}
	stopped := time.Now()
	a.signal(syscall.SIGTERM)
	for e := range out {
		seen = append(seen, e)
	}
	if err := <-errc; err != nil {
		t.Errorf("the stream did not end cleanly: %v", err)
	}
	if code := a.wait(t, limit+5*time.Second); code != 0 {
		t.Errorf("serve exited with %d, want 0", code)
	}
	if took := time.Since(stopped); took > limit {
		t.Errorf("shutdown took %s, over SHUTDOWN_TIMEOUT %s", took, limit)
	}
	if last := seen[len(seen)-1]; last.Type != "run.interrupted" {
		t.Errorf("the stream ended on %s, want run.interrupted", last.Type)
	}
	tl := b.timeline(t, r.ID)
	if tl.Run.Status != "interrupted" || tl.Run.Reason == "" {
		t.Errorf("run after shutdown: %+v, want interrupted with a reason", tl.Run)
	}
}

// A serve killed outright leaves its local run to the ownership sweep of another serve.
func TestTopologyServeKilled(t *testing.T) {
	t.Parallel()
	tp := newTopology(t, redistest.WithAOF())
	a, b := tp.serve(), tp.serve()

	r := a.launch(t, plan("sequential", 10, 2000))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := make(chan event, 1024)
	errc := make(chan error, 1)
	go func() { errc <- b.stream(ctx, r.ID, "", out); close(out) }()
	var last event
	for e := range out {
		last = e
		if e.Type == "task.started" {
			break
		}
	}
	killed := time.Now()
	a.kill()
	for e := range out {
		last = e
	}
	if err := <-errc; err != nil {
		t.Fatalf("stream on the other serve: %v", err)
	}
	if last.Type != "run.interrupted" || !strings.Contains(last.Reason, "gone") {
		t.Fatalf("run ended with %s %q, want run.interrupted because its process is gone", last.Type, last.Reason)
	}
	t.Logf("interrupted %s after the kill", time.Since(killed).Round(100*time.Millisecond))
	if tl := b.timeline(t, r.ID); tl.Run.Status != "interrupted" {
		t.Errorf("run status %s, want interrupted", tl.Run.Status)
	}
}

// BenchmarkScaleOut runs 20 tasks × 1 s on 1, 2 and 4 worker processes of 5 slots each,
// against one Redis, and reports the wall time (run.created → run.finished) against the
// ideal ceil(20 / slots) × 1 s.
//
//	go test -run '^$' -bench ScaleOut -benchtime 1x .
func BenchmarkScaleOut(b *testing.B) {
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			tp := newTopology(b)
			web := tp.serve()
			for range workers {
				tp.worker()
			}
			var wall, ideal float64
			runs := 0
			for b.Loop() {
				r := web.launch(b, plan("distributed", 20, 1000))
				if r.Parallelism != 5*workers {
					b.Fatalf("parallelism %d, want %d", r.Parallelism, 5*workers)
				}
				web.events(b, r.ID, time.Minute)
				tl := web.timeline(b, r.ID)
				if tl.Run.Status != "finished" || tl.Run.WallMS == nil {
					b.Fatalf("run %+v did not finish", tl.Run)
				}
				wall += *tl.Run.WallMS
				ideal += tl.Run.IdealMS
				runs++
			}
			b.ReportMetric(wall/float64(runs)/1000, "wall-s")
			b.ReportMetric(ideal/float64(runs)/1000, "ideal-s")
			b.ReportMetric(100*ideal/wall, "efficiency-%")
		})
	}
}

// BenchmarkBigRun runs 10,000 tasks × 100 ms on 2 worker processes of 50 slots each, and
// reports the efficiency, ideal ⌈10,000 / 100⌉ × 100 ms = 10 s against the wall time.
//
//	go test -run '^$' -bench BigRun -benchtime 1x .
func BenchmarkBigRun(b *testing.B) {
	tp := newTopology(b)
	web := tp.serve()
	for range 2 {
		tp.worker("CONCURRENCY=50")
	}
	var wall, ideal float64
	for b.Loop() {
		r := web.launch(b, plan("distributed", 10_000, 100))
		if r.Parallelism != 100 {
			b.Fatalf("parallelism %d, want 100", r.Parallelism)
		}
		web.events(b, r.ID, 5*time.Minute)
		tl := web.timeline(b, r.ID)
		if tl.Run.Status != "finished" || tl.Run.WallMS == nil {
			b.Fatalf("run %+v did not finish", tl.Run)
		}
		wall += *tl.Run.WallMS
		ideal += tl.Run.IdealMS
	}
	b.ReportMetric(wall/float64(b.N)/1000, "wall-s")
	b.ReportMetric(100*ideal/wall, "efficiency-%")
}
