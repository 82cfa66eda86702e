package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Options are how a Recorder records. The zero value records facts best-effort, without
// payloads or results, in a stream of DefaultMaxEvents.
type Options struct {
	// Prefix starts every Redis key (default DefaultPrefix). A reader must use the same.
	Prefix string
	// MaxEvents caps the stream of facts (default DefaultMaxEvents): the oldest go first.
	// A task takes two facts per attempt. The cap is kept to within one stream node
	// (Redis's stream-node-max-entries, 100 by default).
	MaxEvents int64
	// Durable makes a handler return only once the facts of its attempt are stored, so that
	// a task asynq marks done always has its end recorded. Without it, facts are written
	// in the background and a crash loses at most the facts not yet written: those of the
	// last round trip to Redis, and never more than Buffer.
	Durable bool
	// StagedStarts leaves each attempt's started fact to the handler, which stores it in a
	// write of its own (Attempt.StageStart), in the round trip of its own record of the start:
	// then nothing waits for the recorder's writer. An attempt whose start was not stored by
	// the time it ends has it written with its end.
	StagedStarts bool
	// Buffer is how many facts may wait to be written (default 10,000). Best-effort, a fact
	// that finds the buffer full is dropped (see Dropped) rather than slow the handler;
	// Durable, the handler waits for room.
	Buffer int
	// Concurrency is the asynq server's Config.Concurrency, to size the worker slots.
	// Optional: slots are handed out lowest first, so they stay within 0…concurrency−1
	// whatever it is set to.
	Concurrency int
	// PayloadBytes records up to this many bytes of each task's payload (default 0: none,
	// so that secrets stay out of the record).
	PayloadBytes int
	// ResultBytes records up to this many bytes of what a handler writes with WriteResult
	// (default 0: none).
	ResultBytes int
	// Host names this process's host (default os.Hostname).
	Host string
	// Logger receives the recorder's warnings (default slog.Default()).
	Logger *slog.Logger
	// Clock tells the time (default time.Now); for tests.
	Clock func() time.Time
}

// DefaultMaxEvents is the stream cap when Options.MaxEvents is not set: about 100,000
// single-attempt tasks.
const DefaultMaxEvents = 200_000

const (
	defaultBuffer = 10_000
	maxBatch      = 1024
	writeTimeout  = 5 * time.Second
)

// Recorder records every attempt of every task an asynq server runs: add Middleware to the
// server's ServeMux. It writes through one batching writer; Close flushes it.
type Recorder struct {
	opts  Options
	rdb   redis.UniversalClient
	keys  keys
	slots slots
	w     *writer
	host  string
	pid   int
	now   func() time.Time
}

// NewRecorder returns a recorder writing to the Redis that redisOpt names (the one the asynq
// server uses, or any other). It does not dial: the first write does.
func NewRecorder(redisOpt asynq.RedisConnOpt, opts Options) (*Recorder, error) {
	c, ok := redisOpt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, errors.New("live: the Redis connection option makes no go-redis client")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.Buffer <= 0 {
		opts.Buffer = defaultBuffer
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	host := opts.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	r := &Recorder{opts: opts, rdb: c, keys: keys{opts.Prefix}, host: host, pid: os.Getpid(), now: opts.Clock}
	r.slots.used = make([]bool, 0, max(opts.Concurrency, 0))
	linger := bestEffortLinger
	if opts.Durable {
		linger = 0 // a handler waits for its batch
	}
	r.w = newWriter(c, r.keys, opts.MaxEvents, opts.Buffer, linger, opts.Logger)
	return r, nil
}

// Close writes the facts still pending and closes the recorder's Redis client. Call it
// after the asynq server's Shutdown.
func (r *Recorder) Close() error {
	r.w.close()
	return r.rdb.Close()
}

// Flush returns once every fact recorded before it, and every aggregate counted, is stored.
// Aggregates are otherwise written every 100 ms or so.
func (r *Recorder) Flush(ctx context.Context) error { return r.w.flush(ctx) }

// Dropped is how many facts were dropped, best-effort, for a full buffer or a failed write.
func (r *Recorder) Dropped() int64 { return r.w.dropped.Load() }

// Middleware records each attempt of the tasks next handles: asynq's mux.Use(rec.Middleware).
func (r *Recorder) Middleware(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		info := Info{Type: t.Type(), Payload: t.Payload()}
		info.ID, _ = asynq.GetTaskID(ctx)
		info.Queue, _ = asynq.GetQueueName(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		info.Attempt = retried + 1
		info.MaxRetry, _ = asynq.GetMaxRetry(ctx)
		info.EnqueuedAt = EnqueuedAt(t)
		a := r.Start(info)
		defer func() {
			if p := recover(); p != nil {
				a.End(ctx, panicked{p})
				panic(p) // asynq recovers it and reports it its own way
			}
		}()
		err := next.ProcessTask(context.WithValue(ctx, attemptKey{}, a), t)
		if serr := a.End(ctx, err); err == nil && serr != nil {
			// Durable, and the end could not be stored: asynq tries the task again rather
			// than mark it done without a record.
			return serr
		}
		return err
	})
}

// Info is what the recorder needs to know of a task to record an attempt of it: asynq's
// context gives it to the middleware; a direct caller (work that never passes through asynq)
// fills it in.
type Info struct {
	Queue      string
	ID         string
	Type       string
	Attempt    int // 1 for the first
	MaxRetry   int // retries allowed: an attempt failing with Attempt−1 < MaxRetry is retried
	Payload    []byte
	EnqueuedAt time.Time // zero if unknown
	Worker     *Worker   // nil: this process, with a slot the recorder hands out
}

// Attempt is one attempt in progress, from Start to End.
type Attempt struct {
	r       *Recorder
	fact    Fact // the started fact, copied into the ended one
	slot    int  // the slot handed out, or -1
	started time.Time
	stored  chan error // Durable: the started fact's write
	result  atomic.Pointer[[]byte]
	ended   atomic.Bool

	// StagedStarts: the started fact, until the handler has it stored.
	unstarted   *Fact
	startStored atomic.Bool
}

type attemptKey struct{}

// Start records that an attempt of a task started, and returns it for End. The started
// fact is written in the background, even with Durable: End waits for both.
func (r *Recorder) Start(info Info) *Attempt {
	now := r.now()
	a := &Attempt{r: r, slot: -1, started: now}
	w := info.Worker
	if w == nil {
		a.slot = r.slots.take()
		w = &Worker{Host: r.host, PID: r.pid, Slot: a.slot}
	}
	if info.Attempt < 1 {
		info.Attempt = 1
	}
	a.fact = Fact{Kind: KindStarted, Queue: info.Queue, TaskID: info.ID, Type: info.Type, Attempt: info.Attempt,
		MaxRetry: info.MaxRetry, Worker: *w, At: now.UTC().Truncate(time.Microsecond),
		EnqueuedAt: utcMicro(info.EnqueuedAt)}
	f := a.fact
	f.Payload = clip(info.Payload, r.opts.PayloadBytes)
	if r.opts.StagedStarts {
		a.unstarted = &f
		return a
	}
	if r.opts.Durable {
		a.stored = make(chan error, 1)
	}
	r.w.start(&f, a.stored)
	return a
}

// StageStart prepares the attempt's started fact for the handler to store itself (see
// Options.StagedStarts and Ending); nil when the recorder writes starts itself.
func (a *Attempt) StageStart() *Ending {
	f := a.unstarted
	if f == nil {
		return nil
	}
	return &Ending{a: a, fact: *f, Stream: a.r.keys.facts(), MaxLen: a.r.opts.MaxEvents, Data: string(encodeFact(f))}
}

// End records how the attempt ended: err is what the handler returned, read as asynq's
// processor reads it (nil, SkipRetry, RevokeTask, a deadline, …). With Durable it returns
// once both facts are stored, or with the error that kept them from it; best-effort it
// returns nil at once. Only the first call counts.
func (a *Attempt) End(ctx context.Context, err error) error {
	if !a.ended.CompareAndSwap(false, true) {
		return nil
	}
	r := a.r
	if a.slot >= 0 {
		r.slots.give(a.slot)
	}
	if a.unstarted != nil && !a.startStored.Load() {
		r.w.send(a.unstarted, false) // written with its end, in one batch or just before it
	}
	f := a.ending(ctx, err)
	return r.w.send(&f, r.opts.Durable)
}

// ending is the ended fact of the attempt, had it ended now with err.
func (a *Attempt) ending(ctx context.Context, err error) Fact {
	r := a.r
	now := r.now()
	f := a.fact
	f.Kind, f.At, f.StartedAt = KindEnded, now.UTC().Truncate(time.Microsecond), f.At
	f.DurationMS = float64(now.Sub(a.started).Microseconds()) / 1000
	f.Exit, f.Retry = exitOf(ctx, err, f.Attempt-1, f.MaxRetry)
	if err != nil {
		f.Error = err.Error()
	}
	if res := a.result.Load(); res != nil {
		f.Result = clip(*res, r.opts.ResultBytes)
	}
	return f
}

// Ending is how an attempt ended (or, from StageStart, that it started), for an application
// to store itself, in a round trip of its own writes to the same Redis: one round trip
// instead of two, and the application's record and this one can never disagree on whether
// the end was stored. Store it as XADD <Stream> MAXLEN ~ <MaxLen> * f <Data>, then call
// Stored.
type Ending struct {
	a    *Attempt
	fact Fact
	// Stream is the key of the stream of facts, MaxLen its cap, Data the fact, the value of
	// the entry's field "f".
	Stream string
	MaxLen int64
	Data   string
}

// Stage prepares the record of the attempt's end, as End would record it with err, without
// writing it. It returns once the attempt's started fact is stored (with Durable), so that
// the end follows its start in the stream. An application may stage several ends (one for
// each outcome its own write may decide) and store one; an Ending never Stored leaves the
// attempt open, and End still records it.
func (a *Attempt) Stage(ctx context.Context, err error) *Ending {
	if a.stored != nil {
		<-a.stored // written by the recorder's writer within its write timeout
		a.stored = nil
	}
	f := a.ending(ctx, err)
	return &Ending{a: a, fact: f, Stream: a.r.keys.facts(), MaxLen: a.r.opts.MaxEvents, Data: string(encodeFact(&f))}
}

// Stored says that the application stored e: the attempt has ended (a later End or Stored
// does nothing), its slot is free, and its end counts in the aggregates of its type and
// queue; or, for a start, that it started.
func (e *Ending) Stored() {
	a := e.a
	if e.fact.Kind == KindStarted {
		if a.startStored.CompareAndSwap(false, true) {
			a.r.w.counted(&e.fact)
		}
		return
	}
	if !a.ended.CompareAndSwap(false, true) {
		return
	}
	if a.slot >= 0 {
		a.r.slots.give(a.slot)
	}
	a.r.w.counted(&e.fact)
}

// Canceled records that tasks were stopped from outside before they ended: deleted from
// their queue, say, or the work they belong to was canceled. Only Queue, ID and Type of each
// Info count. A task that had already succeeded, or failed for good, keeps its state; any
// other reads canceled from then on, whatever attempt of it starts or ends after (asynq may
// still hand out a task that is being deleted, and an attempt stopped with it ends later).
// A task of which nothing was recorded yet is recorded as canceled. With Durable it returns
// once the facts are stored.
func (r *Recorder) Canceled(ctx context.Context, tasks ...Info) error {
	at := r.now().UTC().Truncate(time.Microsecond)
	for _, info := range tasks {
		f := &Fact{Kind: KindCanceled, Queue: info.Queue, TaskID: info.ID, Type: info.Type, At: at}
		if !r.opts.Durable {
			r.w.send(f, false)
			continue
		}
		if err := r.w.queue(ctx, f); err != nil {
			return err
		}
	}
	if r.opts.Durable && len(tasks) > 0 {
		return r.w.flush(ctx) // facts reach the stream in the order they were sent
	}
	return nil
}

// Worker is who runs the attempt.
func (a *Attempt) Worker() Worker { return a.fact.Worker }

// SetResult records b (up to Options.ResultBytes) as the attempt's result.
func (a *Attempt) SetResult(b []byte) {
	if a.r.opts.ResultBytes > 0 {
		c := append([]byte(nil), b...)
		a.result.Store(&c)
	}
}

// WriteResult writes b as the task's result in asynq (t.ResultWriter) and records it, up to
// Options.ResultBytes, with the attempt the middleware is recording in ctx.
func WriteResult(ctx context.Context, t *asynq.Task, b []byte) (int, error) {
	if a, ok := ctx.Value(attemptKey{}).(*Attempt); ok {
		a.SetResult(b)
	}
	if rw := t.ResultWriter(); rw != nil {
		return rw.Write(b)
	}
	return 0, fmt.Errorf("live: task %s has no result writer: it is not being processed by asynq", t.Type())
}

// AttemptFrom returns the attempt the middleware is recording in ctx, if any.
func AttemptFrom(ctx context.Context) (*Attempt, bool) {
	a, ok := ctx.Value(attemptKey{}).(*Attempt)
	return a, ok
}

func utcMicro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// slots hands out worker slots, lowest free first, so that n attempts at once use 0…n−1.
type slots struct {
	mu   sync.Mutex
	used []bool
}

func (s *slots) take() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, u := range s.used {
		if !u {
			s.used[i] = true
			return i
		}
	}
	s.used = append(s.used, true)
	return len(s.used) - 1
}

func (s *slots) give(i int) {
	s.mu.Lock()
	s.used[i] = false
	s.mu.Unlock()
}
