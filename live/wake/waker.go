package wake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// shortWait is how long the hook waits for a signal before it runs the dequeue again:
	// what a lost signal costs at most.
	shortWait = time.Second
	// longestWait bounds the waits of one dequeue. asynq computes the task's lease before
	// the call (30 s on), so a task taken after this long leaves it 20 s, which the
	// heartbeater (every 5 s) extends in time.
	longestWait = 10 * time.Second
	// subscribeTimeout bounds how long Listen waits for Redis to confirm the subscription.
	subscribeTimeout = 5 * time.Second
)

// Waker is the hook on an asynq server's Redis client that waits for a wake signal when the
// server's queues are empty. Install it with Listen on the client given to
// asynq.NewServerFromRedisClient, and Close it before the server's Shutdown or Stop, which
// otherwise wait for the hook's current wait to end.
type Waker struct {
	rdb    redis.UniversalClient
	queues []string
	ann    *announcer

	shortWait, longestWait time.Duration // shortWait and longestWait, but for tests
	beforeWait             func()        // called between an empty pass and its wait, by tests

	mu      sync.Mutex
	signal  chan struct{} // closed by the next signal, then replaced
	stop    chan struct{} // closed by Close
	closed  bool
	ps      *redis.PubSub
	done    chan struct{} // the subscription's reader has returned
	pass    []emptyQueue  // the queues found empty since the last task, in the order asynq tried them
	passSig chan struct{} // signal as it was before the pass's first dequeue
}

// emptyQueue is a dequeue that found its queue empty, kept to be run again.
type emptyQueue struct {
	queue string
	args  []any
	sent  time.Time // when asynq computed the lease it passed
}

// NewWaker returns the hook for a server of queues on rdb. It does nothing until Listen.
func NewWaker(rdb redis.UniversalClient, queues []string) *Waker {
	return &Waker{
		rdb:         rdb,
		queues:      slices.Clone(queues),
		ann:         newAnnouncer(rdb),
		shortWait:   shortWait,
		longestWait: longestWait,
		signal:      make(chan struct{}),
		stop:        make(chan struct{}),
	}
}

// Listen subscribes to the queues' wake signals, waits until Redis confirms it, and adds
// the hook to the client.
func (w *Waker) Listen(ctx context.Context) error {
	chans := make([]string, len(w.queues))
	for i, q := range w.queues {
		chans[i] = Channel(w.ann.db, q)
	}
	ctx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	defer cancel()
	ps := w.rdb.Subscribe(ctx, chans...)
	for range chans {
		m, err := ps.Receive(ctx)
		if err == nil {
			if _, ok := m.(*redis.Subscription); !ok {
				err = fmt.Errorf("unexpected reply %T", m)
			}
		}
		if err != nil {
			ps.Close()
			return fmt.Errorf("cannot subscribe to the wake signals: %w", err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.ps != nil {
		ps.Close()
		return errors.New("the waker is closed or already listening")
	}
	w.ps, w.done = ps, make(chan struct{})
	go w.receive(ps)
	w.rdb.AddHook(w)
	return nil
}

// receive turns every message on the wake channels into a signal, until Close. It reads
// the subscription itself (not through PubSub.Channel, a goroutine more on each signal's
// way). After a failed read, which go-redis follows with a new connection and
// subscription, it signals too: a message may have been lost meanwhile.
func (w *Waker) receive(ps *redis.PubSub) {
	defer close(w.done)
	ctx := context.Background()
	for {
		_, err := ps.ReceiveMessage(ctx)
		select {
		case <-w.stop:
			return
		default:
		}
		w.wake()
		if err != nil {
			select { // Redis is down or restarting: do not spin
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// wake ends the current waits, and any about to start with what they saw before.
func (w *Waker) wake() {
	w.mu.Lock()
	close(w.signal)
	w.signal = make(chan struct{})
	w.mu.Unlock()
}

// Close stops waiting, at once for a wait under way, and ends the subscription. From then
// on the hook lets every command through, so the server polls again until it stops.
func (w *Waker) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	close(w.stop)
	ps, done := w.ps, w.done
	w.mu.Unlock()
	if ps != nil {
		ps.Close()
		<-done
	}
}

// DialHook lets dials through.
func (w *Waker) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessPipelineHook lets pipelines through: asynq runs its scripts one by one.
func (w *Waker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// ProcessHook waits in asynq's dequeue when the queues are empty, and sends a signal when
// the forwarder or a requeue makes tasks pending.
func (w *Waker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		s := classify(cmd)
		switch s.kind {
		case dequeueScript:
			return w.dequeue(ctx, next, cmd, s)
		case forwardScript:
			err := next(ctx, cmd)
			if err == nil && intResult(cmd) > 0 {
				w.wake() // this server's own wait, without the round trip
				w.ann.announce(ctx, s.queue)
			}
			return err
		case requeueScript:
			err := next(ctx, cmd)
			if err == nil {
				w.ann.announce(ctx, s.queue)
			}
			return err
		}
		return next(ctx, cmd)
	}
}

// dequeue runs asynq's dequeue of one queue. When it finds the last of the server's queues
// empty, it waits for a signal and runs the dequeues of the pass again, until one gives a
// task, Close, or longestWait.
func (w *Waker) dequeue(ctx context.Context, next redis.ProcessHook, cmd redis.Cmder, s script) error {
	c, ok := cmd.(*redis.Cmd)
	if !ok {
		return next(ctx, cmd)
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return next(ctx, cmd)
	}
	if len(w.pass) == 0 || slices.ContainsFunc(w.pass, func(e emptyQueue) bool { return e.queue == s.queue }) {
		// A new pass: a signal from here on must not be missed.
		w.pass, w.passSig = w.pass[:0], w.signal
	}
	sig := w.passSig
	w.mu.Unlock()

	sent := time.Now()
	err := next(ctx, cmd)
	w.mu.Lock()
	if err != redis.Nil {
		w.pass = w.pass[:0]
		w.mu.Unlock()
		return err
	}
	w.pass = append(w.pass, emptyQueue{queue: s.queue, args: slices.Clone(cmd.Args()), sent: sent})
	if !w.allEmpty() {
		w.mu.Unlock()
		return err
	}
	pass := slices.Clone(w.pass)
	w.pass = w.pass[:0]
	w.mu.Unlock()
	if w.beforeWait != nil {
		w.beforeWait()
	}
	return w.wait(ctx, next, c, sig, pass)
}

// allEmpty tells whether the pass has found every queue of the server empty.
func (w *Waker) allEmpty() bool {
	for _, q := range w.queues {
		if !slices.ContainsFunc(w.pass, func(e emptyQueue) bool { return e.queue == q }) {
			return false
		}
	}
	return true
}

// wait is the loop of short waits for a dequeue that found every queue empty; it leaves
// asynq's reply to that dequeue in cmd (nil, or the task one of the queues gave).
func (w *Waker) wait(ctx context.Context, next redis.ProcessHook, cmd *redis.Cmd, sig chan struct{}, pass []emptyQueue) error {
	end := time.Now().Add(w.longestWait)
	t := time.NewTimer(w.shortWait)
	defer t.Stop()
	for {
		select {
		case <-sig:
		case <-t.C:
		case <-w.stop:
			return redis.Nil
		case <-ctx.Done():
			return redis.Nil
		}
		w.mu.Lock()
		sig = w.signal // a signal while the dequeues below run ends the next wait at once
		w.mu.Unlock()
		for _, e := range pass {
			again := redis.NewCmd(ctx, refreshLease(e)...)
			err := next(ctx, again)
			if err == redis.Nil {
				continue
			}
			cmd.SetVal(again.Val())
			cmd.SetErr(err)
			return err
		}
		left := time.Until(end)
		if left <= 0 {
			return redis.Nil
		}
		t.Reset(min(w.shortWait, left))
	}
}

// refreshLease returns e's arguments with the lease (the script's first argument, a Unix
// time in seconds) moved on by the time since asynq computed it.
func refreshLease(e emptyQueue) []any {
	args := slices.Clone(e.args)
	at := 3 + args[2].(int) // classify checked the count
	if at >= len(args) {
		return args
	}
	var lease int64
	switch v := args[at].(type) {
	case int64:
		lease = v
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return args
		}
		lease = n
	default:
		return args
	}
	args[at] = lease + int64(time.Since(e.sent)/time.Second)
	return args
}
