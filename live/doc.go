// Package live records every task an asynq server runs, of every type and queue, so that
// taskrace (or any reader of this package) can show them live: states, attempts, workers,
// errors, and aggregates by task type and queue. An application adds it in one line:
//
//	rec, err := live.NewRecorder(redisOpt, live.Options{Concurrency: 10})
//	mux.Use(rec.Middleware)
//	defer rec.Close() // after srv.Shutdown: writes what is pending
//
// and `taskrace serve --worker=false` pointed at the same Redis shows the tasks at
// /api/tasks, /api/tasks/events and /api/stats.
//
// # What is recorded
//
// Facts, not verdicts: that an attempt started, and that it ended, with how it left its
// handler as asynq's processor reads it (success; an error and its text; SkipRetry;
// RevokeTask; a deadline; a cancelation; a panic), whether asynq will try it again (its retry
// count against its max retry), the task's ID, queue and type, the attempt's number, the
// worker's host, pid and slot, the times and the duration. A task's state is decided from
// its facts when they are read, by package taskstate, the vocabulary taskrace's own runs use
// too. Tasks are keyed by queue and ID, and execution: asynq IDs are unique per queue only,
// and an ID can be enqueued again once its task is gone.
//
// Payloads and results are not recorded unless Options.PayloadBytes or ResultBytes allow
// it, so secrets stay out by default; a handler records its result with WriteResult.
//
// # Storage
//
// Facts go on one capped Redis stream (Options.MaxEvents, DefaultMaxEvents by default), and
// what they count into hashes per minute, kept StatsRetention (24 h), and totals, both by
// task type and queue: the same type on two queues is two series, each with its own counts.
// Writes are batched by group commit: one pipeline carries whatever is pending.
//
// Aggregates of the earlier layout, by type alone (the hashes <prefix>stats:<minute> and
// <prefix>totals), are not read: they stop being shown, the minutes expire within
// StatsRetention, and the old totals hash may be deleted by hand.
//
// By default recording is best-effort: a handler never waits for Redis, and a crash loses
// at most the facts not yet written, those of the last round trip (a millisecond or so), and
// never more than Options.Buffer. With Options.Durable a handler returns only once its facts
// are stored, so that a task asynq marks done always has its end recorded; if they cannot
// be stored, a successful handler returns the error and asynq tries the task again.
//
// # Wait time
//
// asynq forgets when a task was enqueued, so the recorder cannot know how long a task
// waited unless the enqueuer says: make tasks with NewTask (asynq.NewTask with a header
// stamped with the time, no payload change) and the recorder records the wait of each task's
// first attempt.
//
// # Work outside asynq
//
// Start and Attempt.End record attempts that never pass through asynq, with the same facts.
// Recorder.Canceled records that tasks were stopped from outside (deleted from their queue,
// or what they belong to canceled): they read canceled unless they had ended for good.
//
// taskrace records its own tasks through this package, durably: distributed ones through
// the middleware, keyed by their asynq queue and ID; sequential and concurrent ones, which
// never pass through asynq, by Start and End under the queues "taskrace:sequential" and
// "taskrace:concurrent"; and the tasks a canceled or interrupted run stopped by Canceled.
//
// # Reading
//
// A Reader follows the stream with one blocking read, keeps the tasks it holds projected in
// memory, and answers queries (ParseQuery), task details, live watches resumable by stream
// entry ID, and the aggregates.
//
// # Pickup without polling
//
// Package live/wake makes an idle asynq server take a task about a millisecond after it is
// enqueued, with no polling and no fork of asynq: wake.NewServer in place of
// asynq.NewServerFromRedisClient, and wake.Announce on the client that enqueues.
package live
