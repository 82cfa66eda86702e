// Package wake lets an idle asynq server take a task the moment it is enqueued, without
// polling its queues every few milliseconds and without a fork of asynq.
//
// asynq has no push wake-up: a server whose queues are empty sleeps TaskCheckInterval
// (1 s by default) between looks, so a task waits up to that long, or the interval is made
// small and the idle server polls Redis hundreds of times a second. This package puts a
// go-redis hook on the client the server is built from. When asynq's dequeue script finds
// every queue of the server empty, the hook waits for a wake signal and runs the script
// again, in short waits (each one second at most, with the lease time refreshed) that add
// up to well under asynq's 30 s lease, then lets asynq poll once and waits again.
//
// A signal is a PUBLISH on a channel per database and queue, sent
//   - by the client that enqueues, when Announce's hook is on it (asynq.Client built with
//     NewClientFromRedisClient on that client), after each task it enqueues, and
//   - by the server itself, when its forwarder moves scheduled or retried tasks to pending,
//     or it puts an interrupted task back on the queue.
//
// Tasks made ready any other way send no signal and are taken at the next short wait,
// within a second: a task the Inspector runs or re-queues, a group's aggregated task, a
// queue unpaused, an enqueue through a client without the hook.
//
// No wake-up is lost: a signal that comes between an empty dequeue and the wait ends the
// wait at once. One that never comes (a publisher without the hook, a reconnecting
// subscription) costs at most one short wait, since the script runs again after each.
//
// Use:
//
//	rdb := redis.NewClient(opt)
//	srv, err := wake.NewServer(ctx, rdb, asynq.Config{Queues: queues})
//	...
//	srv.Start(mux)
//	defer srv.Shutdown() // stops waiting first, then asynq's Shutdown
//
// and where tasks are enqueued:
//
//	rdb := redis.NewClient(opt)
//	wake.Announce(rdb)
//	client := asynq.NewClientFromRedisClient(rdb)
//
// The hook recognises asynq's scripts by their SHA-1, pinned to the asynq version this
// module is built with (TestAsynqScripts fails on an upgrade that changes them); an asynq
// whose scripts differ is served as if the package were not there, by polling.
package wake
