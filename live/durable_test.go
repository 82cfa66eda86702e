package live_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/live"
)

// workerEnv names, in the environment of the re-executed test binary, the Redis URL of the
// worker it is to run.
const workerEnv = "LIVE_TEST_WORKER_REDIS"

const durableQueue = "durable"

// runWorker is a worker process: an asynq server whose handlers are recorded Durable. It
// prints "returned <id>" once the recording middleware has returned for a task, and runs
// until it is killed.
func runWorker(url string) int {
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rec, err := live.NewRecorder(opt, live.Options{Durable: true, Concurrency: 4})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: 4, Queues: map[string]int{durableQueue: 1},
		TaskCheckInterval: 2 * time.Millisecond, LogLevel: asynq.FatalLevel})
	out := make(chan string, 1000)
	mux := asynq.NewServeMux()
	mux.Use(func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			err := next.ProcessTask(ctx, t)
			id, _ := asynq.GetTaskID(ctx)
			out <- id
			return err
		})
	}, rec.Middleware)
	mux.HandleFunc("job", func(context.Context, *asynq.Task) error { return nil })
	if err := srv.Start(mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for id := range out {
		fmt.Println("returned", id)
	}
	return 0
}

// A Durable worker killed with SIGKILL right after handlers returned has lost no fact: every
// task whose handler returned, and every task asynq marked done, has its end recorded.
func TestDurableSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const tasks, killAfter = 200, 50
	c := asynq.NewClient(e.opt)
	for i := range tasks {
		if _, err := c.Enqueue(asynq.NewTask("job", nil), asynq.Queue(durableQueue), asynq.TaskID("job-"+strconv.Itoa(i)),
			asynq.Retention(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+redisServer.URL(e.opt.DB))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	returned := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "returned "); ok {
			returned[id] = true
			if len(returned) == killAfter {
				break
			}
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	for sc.Scan() { // what it printed before it died
		if id, ok := strings.CutPrefix(sc.Text(), "returned "); ok {
			returned[id] = true
		}
	}
	cmd.Wait()
	if len(returned) < killAfter {
		t.Fatalf("the worker reported only %d handlers returned", len(returned))
	}

	ins := asynq.NewInspector(e.opt)
	defer ins.Close()
	done := map[string]bool{}
	for page := 1; ; page++ {
		infos, err := ins.ListCompletedTasks(durableQueue, asynq.PageSize(100), asynq.Page(page))
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			done[info.ID] = true
		}
		if len(infos) < 100 {
			break
		}
	}
	if err := e.reader.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	page, err := e.reader.Tasks(t.Context(), nil, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	ended := map[string]bool{}
	for _, task := range page.Tasks {
		if task.State == "done" {
			ended[task.ID] = true
		}
	}
	for id := range returned {
		if !ended[id] {
			t.Errorf("%s: its handler returned, but its end is not recorded", id)
		}
	}
	for id := range done {
		if !ended[id] {
			t.Errorf("%s: asynq marked it done, but its end is not recorded", id)
		}
	}
	t.Logf("killed after %d handlers returned; asynq had %d done; %d ends recorded", len(returned), len(done), len(ended))
	if len(done) == tasks {
		t.Log("the worker finished every task before the kill landed")
	}
}
