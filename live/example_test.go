package live_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/live"
)

// An asynq application records its tasks with one line, and reads them back.
func Example() {
	redisOpt := asynq.RedisClientOpt{Addr: exampleRedis} // the application's Redis
	queue := "example"

	rec, err := live.NewRecorder(redisOpt, live.Options{Concurrency: 1, Durable: true})
	if err != nil {
		panic(err)
	}
	srv := asynq.NewServer(redisOpt, asynq.Config{Concurrency: 1, Queues: map[string]int{queue: 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.Use(rec.Middleware) // the one line
	mux.HandleFunc("email:welcome", func(context.Context, *asynq.Task) error { return nil })
	mux.HandleFunc("report:monthly", func(context.Context, *asynq.Task) error {
		return fmt.Errorf("no data: %w", asynq.SkipRetry)
	})
	if err := srv.Start(mux); err != nil {
		panic(err)
	}

	client := asynq.NewClient(redisOpt)
	client.Enqueue(live.NewTask("email:welcome", nil), asynq.Queue(queue), asynq.TaskID("w1"))
	client.Enqueue(live.NewTask("report:monthly", nil), asynq.Queue(queue), asynq.TaskID("r1"))
	client.Close()

	reader, err := live.NewReader(redisOpt, live.ReaderOptions{})
	if err != nil {
		panic(err)
	}
	defer reader.Close()
	// Wait for both tasks to end, watching their facts as they come.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, _ := live.ParseQuery("queue:" + queue)
	ended := 0
	stop := errors.New("both ended")
	reader.Watch(ctx, q, "0-0", func(e *live.Event) error {
		if e.Kind == live.KindEnded {
			if ended++; ended == 2 {
				return stop
			}
		}
		return nil
	})
	srv.Shutdown()
	rec.Close()
	reader.Sync(ctx) // hold every fact stored so far

	page, _ := reader.Tasks(ctx, q, 10, "")
	for _, t := range page.Tasks {
		fmt.Println(t.Queue, t.ID, t.Type, t.State, t.Exit)
	}
	// Output:
	// example r1 report:monthly failed skip_retry
	// example w1 email:welcome done success
}
