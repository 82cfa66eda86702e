package live

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/taskrace/taskrace/live/taskstate"
)

// Errors of the reading API.
var (
	ErrNotFound    = errors.New("live: no such task")
	ErrUnavailable = errors.New("live: the record is not readable: Redis is unreachable")
)

// ReaderOptions are how a Reader reads.
type ReaderOptions struct {
	// Prefix starts every Redis key (default DefaultPrefix): the recorders' Prefix.
	Prefix string
	// MaxTasks caps the tasks held in memory (default DefaultMaxTasks): the oldest go first.
	MaxTasks int
	// Logger receives the reader's warnings (default slog.Default()).
	Logger *slog.Logger
}

// DefaultMaxTasks is the cap on the tasks a reader holds when ReaderOptions.MaxTasks is not
// set: what a stream of DefaultMaxEvents holds.
const DefaultMaxTasks = DefaultMaxEvents

// Task is one execution of a task as its facts tell it. A task is keyed by queue and ID, and
// execution: asynq IDs are unique per queue only, and a gone task's ID can be enqueued again.
type Task struct {
	Queue      string          `json:"queue"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Execution  int             `json:"execution" doc:"1 for the first task recorded under this queue and ID, then 2, …: asynq lets an ID be reused once its task is gone"`
	State      string          `json:"state" enum:"queued,running,retrying,done,failed,canceled"`
	Attempts   int             `json:"attempts"`
	MaxRetry   int             `json:"max_retry"`
	Worker     Worker          `json:"worker,omitzero" doc:"Who runs or ran its latest attempt"`
	Exit       string          `json:"exit,omitempty" enum:"success,error,skip_retry,revoked,deadline,canceled,panic" doc:"How its latest ended attempt left its handler"`
	Error      string          `json:"error,omitempty" doc:"The latest error"`
	EnqueuedAt time.Time       `json:"enqueued_at,omitzero"`
	StartedAt  time.Time       `json:"started_at,omitzero" doc:"Its first attempt's start"`
	LatestAt   time.Time       `json:"latest_started_at,omitzero" doc:"Its latest attempt's start"`
	EndedAt    time.Time       `json:"ended_at,omitzero" doc:"When it ended for good"`
	WaitMS     *float64        `json:"wait_ms,omitempty" doc:"Enqueue to first start, when the enqueuer stamped it (live.NewTask)"`
	DurationMS *float64        `json:"duration_ms,omitempty" doc:"How long its latest ended attempt ran"`
	Payload    *Bytes          `json:"payload,omitempty"`
	Result     *Bytes          `json:"result,omitempty"`
	History    []AttemptRecord `json:"history,omitempty" doc:"Every attempt in order (task details only)"`

	first streamID // of its first fact: the order of tasks
	last  streamID // of its latest fact: it is gone once the stream is trimmed past it
	dur   float64  // DurationMS and WaitMS, set in copies only: a pointer each would cost
	wait  float64  // an allocation per task held
	flags uint8

	canceledAt time.Time // when a canceled fact stopped it
}

const (
	hasDur uint8 = 1 << iota
	hasWait
	gone     // trimmed or dropped: no longer held
	canceled // a canceled fact: stopped from outside
)

// streamID is a stream entry ID, ms-seq, held without a string.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) streamID {
	m, q, _ := strings.Cut(s, "-")
	ms, _ := strconv.ParseUint(m, 10, 64)
	seq, _ := strconv.ParseUint(q, 10, 64)
	return streamID{ms, seq}
}

func (id streamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id streamID) before(o streamID) bool { return id.ms < o.ms || (id.ms == o.ms && id.seq < o.seq) }

// public is a copy of t as the API shows it.
func (t *Task) public(history bool) Task {
	c := *t
	if t.flags&hasDur != 0 {
		c.DurationMS = &c.dur
	}
	if t.flags&hasWait != 0 {
		c.WaitMS = &c.wait
	}
	c.History = nil
	if history {
		c.History = slices.Clone(t.History)
	}
	return c
}

// AttemptRecord is one attempt of a task.
type AttemptRecord struct {
	Number     int       `json:"number" doc:"1 for the first attempt"`
	Worker     Worker    `json:"worker"`
	Outcome    string    `json:"outcome" enum:"running,done,failed,canceled,lost"`
	Exit       string    `json:"exit,omitempty" enum:"success,error,skip_retry,revoked,deadline,canceled,panic"`
	Retry      bool      `json:"retry,omitempty"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	DurationMS float64   `json:"duration_ms,omitempty"`
}

// Event is a fact as a stream of events delivers it, with the state it leaves its task in.
type Event struct {
	Fact
	State string `json:"state" enum:"queued,running,retrying,done,failed,canceled"`
}

// Page is one page of tasks, newest first.
type Page struct {
	Tasks  []Task         `json:"tasks"`
	Next   string         `json:"next,omitempty"`
	Total  int            `json:"total" doc:"Tasks the query selects"`
	Counts map[string]int `json:"counts" doc:"Tasks the query selects, by state"`
}

// Reader reads what recorders stored: it follows the stream of facts with one blocking
// read and keeps every task it holds projected in memory, so that a query over a hundred
// thousand tasks is a scan of memory, not of Redis. Many viewers share it.
type Reader struct {
	rdb    redis.UniversalClient // reads
	block  redis.UniversalClient // the blocking read, on a connection of its own
	keys   keys
	opts   ReaderOptions
	logger *slog.Logger

	ready    chan struct{} // closed once the stream has been read up to where following starts
	unloaded atomic.Bool   // the last attempt at reading the stream failed, before ready

	mu sync.RWMutex
	ix index

	subMu sync.Mutex
	subs  map[*Subscription]struct{}
	pos   string        // last stream ID read; under subMu
	moved chan struct{} // closed, and replaced, whenever pos moves; under subMu

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

const (
	subBuffer  = 512
	readChunk  = 5000
	trimEvery  = 5 * time.Second
	blockFor   = 2 * time.Second
	maxBackoff = 2 * time.Second
	maxPage    = 1000
)

// NewReader returns a reader of the Redis that redisOpt names, and starts following its
// facts. Close stops it.
func NewReader(redisOpt asynq.RedisConnOpt, opts ReaderOptions) (*Reader, error) {
	rdb, ok1 := redisOpt.MakeRedisClient().(redis.UniversalClient)
	block, ok2 := redisOpt.MakeRedisClient().(redis.UniversalClient)
	if !ok1 || !ok2 {
		return nil, errors.New("live: the Redis connection option makes no go-redis client")
	}
	if c, ok := block.(*redis.Client); ok {
		c.Options().PoolSize = 1
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.MaxTasks <= 0 {
		opts.MaxTasks = DefaultMaxTasks
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Reader{rdb: rdb, block: block, keys: keys{opts.Prefix}, opts: opts, logger: opts.Logger,
		ready: make(chan struct{}), subs: map[*Subscription]struct{}{}, moved: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	r.ix = newIndex(opts.MaxTasks)
	go r.loop()
	return r, nil
}

// Close stops following and closes the reader's Redis clients.
func (r *Reader) Close() error {
	r.once.Do(func() {
		close(r.stop)
		r.block.Close() // ends a blocking read at once
		<-r.done
		r.subMu.Lock()
		for s := range r.subs {
			close(s.c)
			s.signal()
		}
		r.subs = map[*Subscription]struct{}{}
		r.subMu.Unlock()
	})
	return r.rdb.Close()
}

// await waits until the reader holds what the stream held when it started.
func (r *Reader) await(ctx context.Context) error {
	if r.unloaded.Load() {
		select {
		case <-r.ready:
			return nil
		default:
			return ErrUnavailable // Redis did not answer the last read: say so now, not at ctx's end
		}
	}
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		return ErrUnavailable
	case <-r.stop:
		return ErrUnavailable
	}
}

// Sync waits until the reader holds every fact the stream held when it was called.
func (r *Reader) Sync(ctx context.Context) error {
	if err := r.await(ctx); err != nil {
		return err
	}
	last, err := r.rdb.XRevRangeN(ctx, r.keys.facts(), "+", "-", 1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return errors.Join(ErrUnavailable, err)
	}
	if len(last) == 0 {
		return nil
	}
	for {
		r.subMu.Lock()
		pos, moved := r.pos, r.moved
		r.subMu.Unlock()
		if compareIDs(pos, last[0].ID) >= 0 {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.stop:
			return ErrUnavailable
		}
	}
}

// Tasks returns the page of tasks q selects (nil: all), newest first, up to limit (1 to
// 1000), after the cursor of a previous page ("" for the first page).
func (r *Reader) Tasks(ctx context.Context, q *Query, limit int, cursor string) (*Page, error) {
	if err := r.await(ctx); err != nil {
		return nil, err
	}
	limit = min(max(limit, 1), maxPage)
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ix.page(q, limit, cursor), nil
}

// Longest returns the page of tasks q selects (nil: all), longest-running first, up to limit
// (1 to 1000), from offset (the next value of a previous page, or 0). A task's runtime is
// that of its latest ended attempt, or for one that runs, how long its attempt has run by
// now; ties keep the newest first.
func (r *Reader) Longest(ctx context.Context, q *Query, limit, offset int, now time.Time) (*Page, error) {
	if err := r.await(ctx); err != nil {
		return nil, err
	}
	limit = min(max(limit, 1), maxPage)
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ix.longest(q, limit, max(offset, 0), now), nil
}

// Task returns execution n (0: the latest) of the task queue/id, with its attempts.
func (r *Reader) Task(ctx context.Context, queue, id string, n int) (*Task, error) {
	if err := r.await(ctx); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	t := r.ix.byKey[taskKey{queue, id}]
	for t != nil && n > 0 && t.Execution > n {
		t = t.previous(&r.ix)
	}
	if t == nil || (n > 0 && t.Execution != n) {
		return nil, ErrNotFound
	}
	c := t.public(true)
	return &c, nil
}

// Stats are the aggregates by task type and queue of the minutes from from to to (at most StatsRetention),
// with each minute's when perMinute.
func (r *Reader) Stats(ctx context.Context, from, to time.Time, perMinute bool) (*Stats, error) {
	s, err := readStats(ctx, r.rdb, r.keys, from, to, perMinute)
	if err != nil {
		return nil, errors.Join(ErrUnavailable, err)
	}
	return s, nil
}

// Totals are the aggregates by task type and queue since the first fact was recorded.
func (r *Reader) Totals(ctx context.Context) (*Stats, error) {
	s, err := readTotals(ctx, r.rdb, r.keys)
	if err != nil {
		return nil, errors.Join(ErrUnavailable, err)
	}
	return s, nil
}

// Watch calls yield with every fact q selects (nil: all) after the stream entry ID after,
// in order, until ctx ends or yield returns an error. An empty after starts at the facts
// that follow the call. It is Subscribe and Next in a loop.
func (r *Reader) Watch(ctx context.Context, q *Query, after string, yield func(*Event) error) error {
	s, err := r.Subscribe(ctx, q, after)
	if err != nil {
		return err
	}
	defer s.Close()
	for {
		evs, err := s.Next(ctx)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := yield(e); err != nil {
				return err
			}
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-s.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Subscription is one watcher's place in the stream of facts. Next hands out every fact
// its query selects after the position it started from, in order and each once: from the
// stream while the watcher is behind, from the reader's live feed once it has caught up. A
// watcher too slow for the feed is dropped from it and catches up from the stream. It is
// used by one goroutine, and holds none of its own.
type Subscription struct {
	r      *Reader
	q      *Query
	after  string // the last fact handed out, or passed over
	behind bool   // the stream holds facts after `after` that the feed will not deliver
	c      chan *Event
	ready  chan struct{}
	closed bool
}

// Subscribe starts a subscription to the facts q selects (nil: all) after the stream entry
// ID after; an empty after starts at the facts that follow the call. It waits for the
// reader to have read the stream (see Sync) only when it has just started. Close ends it.
func (r *Reader) Subscribe(ctx context.Context, q *Query, after string) (*Subscription, error) {
	if err := r.await(ctx); err != nil {
		return nil, err
	}
	s := &Subscription{r: r, q: q, after: after, ready: make(chan struct{}, 1)}
	s.join()
	return s, nil
}

// join puts s on the live feed; facts after the feed's position come through it.
func (s *Subscription) join() {
	s.c = make(chan *Event, subBuffer)
	r := s.r
	r.subMu.Lock()
	r.subs[s] = struct{}{}
	pos := r.pos
	r.subMu.Unlock()
	if s.after == "" {
		s.after = pos
	}
	// What the stream holds up to the feed's position is read from the stream.
	s.behind = pos != "" && compareIDs(s.after, pos) < 0
	s.signal()
}

// Ready is signalled when Next may have more.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Next returns the facts ready to be handed out, none if nothing is: then wait for Ready.
// It waits for nothing but a read of the stream while the watcher is behind.
func (s *Subscription) Next(ctx context.Context) ([]*Event, error) {
	if s.closed {
		return nil, ErrUnavailable
	}
	if s.behind {
		return s.catchUp(ctx)
	}
	var out []*Event
	for {
		select {
		case e, ok := <-s.c:
			if !ok {
				select {
				case <-s.r.stop:
					return out, ErrUnavailable
				default:
				}
				s.join() // dropped for being slow: catch up from the stream
				return out, nil
			}
			if compareIDs(e.ID, s.after) <= 0 {
				continue // handed out from the stream already
			}
			s.after = e.ID
			if s.q.Match(e.task()) {
				out = append(out, e)
			}
			if len(out) == readChunk {
				s.signal()
				return out, nil
			}
		default:
			return out, nil
		}
	}
}

func (s *Subscription) catchUp(ctx context.Context) ([]*Event, error) {
	msgs, err := s.r.rdb.XRangeN(ctx, s.r.keys.facts(), "("+s.after, "+", readChunk).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errors.Join(ErrUnavailable, err)
	}
	var out []*Event
	for _, m := range msgs {
		s.after = m.ID
		if f := factOf(m); f != nil {
			if e := eventOf(f); s.q.Match(e.task()) {
				out = append(out, e)
			}
		}
	}
	// Caught up once a read comes back short: what follows comes through the feed, which
	// skips what the stream handed out already.
	s.behind = len(msgs) == readChunk
	s.signal()
	return out, nil
}

// Close ends the subscription.
func (s *Subscription) Close() {
	if s.closed {
		return
	}
	s.closed = true
	s.r.subMu.Lock()
	delete(s.r.subs, s)
	s.r.subMu.Unlock()
}

func eventOf(f *Fact) *Event { return &Event{Fact: *f, State: f.State()} }

// task is the event's fact as a task, for a query to match.
func (e *Event) task() *Task {
	return &Task{Queue: e.Queue, ID: e.TaskID, Type: e.Type, State: e.State, Attempts: e.Attempt,
		Worker: e.Worker, Error: e.Error}
}

// Subscribers is how many watchers are following, for metrics.
func (r *Reader) Subscribers() int {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	return len(r.subs)
}

func factOf(m redis.XMessage) *Fact {
	data, _ := m.Values["f"].(string)
	f, err := decodeFact(m.ID, data)
	if err != nil {
		return nil // not a fact: skipped, not fatal
	}
	return f
}

// loop reads the stream from its start, then follows it, until Close.
func (r *Reader) loop() {
	defer close(r.done)
	backoff := 100 * time.Millisecond
	pause := func() bool {
		select {
		case <-r.stop:
			return false
		case <-time.After(backoff):
			backoff = min(2*backoff, maxBackoff)
			return true
		}
	}
	pos := "0-0"
	for {
		msgs, err := r.rdb.XRangeN(context.Background(), r.keys.facts(), "("+pos, "+", readChunk).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			r.logger.Warn("live: cannot read task facts", "err", err)
			r.unloaded.Store(true)
			if !pause() {
				return
			}
			continue
		}
		r.unloaded.Store(false)
		if len(msgs) > 0 {
			pos = msgs[len(msgs)-1].ID
			r.apply(msgs, pos)
		}
		if len(msgs) < readChunk {
			break
		}
	}
	r.subMu.Lock()
	r.pos = pos
	r.subMu.Unlock()
	close(r.ready)
	lastTrim := time.Now()
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		res, err := r.block.XRead(context.Background(), &redis.XReadArgs{
			Streams: []string{r.keys.facts(), pos}, Block: blockFor, Count: readChunk,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			select {
			case <-r.stop:
				return
			default:
			}
			r.logger.Warn("live: cannot follow task facts", "err", err)
			if !pause() {
				return
			}
			continue
		default:
			backoff = 100 * time.Millisecond
			for _, st := range res {
				if n := len(st.Messages); n > 0 {
					pos = st.Messages[n-1].ID
					r.apply(st.Messages, pos)
				}
			}
		}
		if time.Since(lastTrim) >= trimEvery {
			lastTrim = time.Now()
			r.trim()
		}
	}
}

// apply projects messages into the index and hands their facts to the watchers.
func (r *Reader) apply(msgs []redis.XMessage, pos string) {
	facts := make([]*Fact, 0, len(msgs))
	for _, m := range msgs {
		if f := factOf(m); f != nil {
			facts = append(facts, f)
		}
	}
	states := make([]string, len(facts))
	r.mu.Lock()
	for i, f := range facts {
		states[i] = r.ix.apply(f)
	}
	r.mu.Unlock()
	r.subMu.Lock()
	defer r.subMu.Unlock()
	r.pos = pos
	close(r.moved)
	r.moved = make(chan struct{})
	if len(r.subs) == 0 {
		return
	}
	for i, f := range facts {
		e := &Event{Fact: *f, State: states[i]}
		for s := range r.subs {
			select {
			case s.c <- e:
			default:
				delete(r.subs, s) // too slow: it catches up from the stream
				close(s.c)
				s.signal()
			}
		}
	}
	for s := range r.subs {
		s.signal()
	}
}

// trim drops the tasks whose facts the stream no longer holds.
func (r *Reader) trim() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	first, err := r.rdb.XRangeN(ctx, r.keys.facts(), "-", "+", 1).Result()
	if err != nil || len(first) == 0 {
		return
	}
	r.mu.Lock()
	r.ix.trim(first[0].ID)
	r.mu.Unlock()
}

type taskKey struct{ queue, id string }

// index is the projection of every task the reader holds, in the order of their first fact.
type index struct {
	tasks  []*Task
	byKey  map[taskKey]*Task // the latest execution
	live   int               // tasks not gone
	max    int
	intern map[string]string
}

func newIndex(max int) index {
	return index{byKey: map[taskKey]*Task{}, max: max, intern: map[string]string{}}
}

// str shares one copy of the strings many tasks repeat: queues, types, hosts.
func (ix *index) str(s string) string {
	if v, ok := ix.intern[s]; ok {
		return v
	}
	if len(ix.intern) < 10_000 {
		ix.intern[s] = s
	}
	return s
}

// apply folds f into its task and returns the state it leaves the task in.
func (ix *index) apply(f *Fact) string {
	k := taskKey{f.Queue, f.TaskID}
	t := ix.byKey[k]
	if t != nil && f.Kind == KindStarted && t.has(f) {
		return t.State // its end came first (staged by the application, best-effort)
	}
	if t == nil || (f.Kind != KindCanceled && f.Attempt == 1 && taskstate.Ended(t.State) && len(t.History) > 0 &&
		(f.Kind == KindStarted || t.open(1) == nil)) {
		// A first attempt after the task ended is a new task under a reused ID (its end alone,
		// when it started and ended within one batch of the recorder's). A task canceled
		// before any attempt started takes the attempt that follows as its own: a worker
		// took it before it heard.
		n := 1
		if t != nil {
			n = t.Execution + 1
		}
		t = &Task{Queue: ix.str(f.Queue), ID: f.TaskID, Type: ix.str(f.Type), Execution: n, first: parseStreamID(f.ID)}
		ix.tasks = append(ix.tasks, t)
		ix.byKey[k] = t
		ix.live++
		if ix.live > ix.max {
			ix.dropOldest()
		}
	}
	t.last = parseStreamID(f.ID)
	if f.Kind == KindCanceled {
		// It ends the task, unless it had ended for good already: what comes after is
		// the tail of an attempt stopped with it.
		if t.flags&canceled == 0 && (len(t.History) == 0 || !taskstate.Ended(t.State)) {
			t.flags |= canceled
			t.canceledAt = f.At
		}
		t.settle()
		return t.State
	}
	t.MaxRetry = f.MaxRetry
	if !f.EnqueuedAt.IsZero() {
		t.EnqueuedAt = f.EnqueuedAt
	}
	w := f.Worker
	w.Host = ix.str(w.Host)
	switch f.Kind {
	case KindStarted:
		for i := range t.History {
			if a := &t.History[i]; a.Outcome == taskstate.AttemptRunning {
				// Delivered again while this one never ended: lost with its worker, or
				// put back on the queue by a shutdown.
				a.Outcome, a.EndedAt = taskstate.AttemptLost, f.At
			}
		}
		t.insert(AttemptRecord{Number: f.Attempt, Worker: w, Outcome: taskstate.AttemptRunning, StartedAt: f.At})
		if f.Payload != nil {
			t.Payload = f.Payload
		}
	case KindEnded:
		a := t.open(f.Attempt)
		if a == nil {
			// Its start is not in the stream: written with its end (see writer.write),
			// trimmed, or dropped best-effort.
			t.insert(AttemptRecord{Number: f.Attempt, Worker: w, StartedAt: f.StartedAt})
			a = t.open(f.Attempt)
		}
		a.Outcome, a.Exit, a.Retry, a.Error = attemptOutcome(f.Exit), f.Exit, f.Retry, f.Error
		a.EndedAt, a.DurationMS = f.At, f.DurationMS
		if f.Result != nil {
			t.Result = f.Result
		}
		if f.Payload != nil {
			t.Payload = f.Payload
		}
	}
	t.settle()
	return t.State
}

// has reports whether the task holds the attempt that the started fact f starts.
func (t *Task) has(f *Fact) bool {
	for i := range t.History {
		if a := &t.History[i]; a.Number == f.Attempt && a.StartedAt.Equal(f.At) && a.Worker.PID == f.Worker.PID &&
			a.Worker.Slot == f.Worker.Slot && a.Worker.Host == f.Worker.Host {
			return true
		}
	}
	return false
}

// insert adds an attempt in order of number (after those of the same number).
func (t *Task) insert(a AttemptRecord) {
	i := len(t.History)
	for i > 0 && t.History[i-1].Number > a.Number {
		i--
	}
	t.History = slices.Insert(t.History, i, a)
}

// open finds the latest attempt number n that has not ended (running, or taken for lost).
func (t *Task) open(n int) *AttemptRecord {
	for i := len(t.History) - 1; i >= 0; i-- {
		a := &t.History[i]
		if a.Number == n && (a.Outcome == taskstate.AttemptRunning || a.Outcome == taskstate.AttemptLost || a.Outcome == "") {
			return a
		}
	}
	return nil
}

// settle decides the task's state and summary from its attempts: the latest decides.
func (t *Task) settle() {
	stopped := t.flags&canceled != 0
	if len(t.History) == 0 {
		t.State, t.EndedAt = taskstate.Of(false, "", false, stopped), t.canceledAt
		return
	}
	last := &t.History[len(t.History)-1]
	t.State = taskstate.Of(true, last.Outcome, last.Retry, stopped)
	if stopped {
		t.State = taskstate.Canceled // canceled before it ended: nothing after counts
	}
	t.Attempts = len(t.History)
	t.Worker = last.Worker
	t.StartedAt = t.History[0].StartedAt
	t.LatestAt = last.StartedAt
	t.Exit, t.Error, t.EndedAt = "", "", time.Time{}
	t.flags &^= hasDur | hasWait
	for i := len(t.History) - 1; i >= 0; i-- {
		if a := &t.History[i]; a.Exit != "" {
			t.Exit, t.dur = a.Exit, a.DurationMS
			t.flags |= hasDur
			break
		}
	}
	for i := len(t.History) - 1; i >= 0; i-- {
		if a := &t.History[i]; a.Error != "" {
			t.Error = a.Error
			break
		}
	}
	if taskstate.Ended(t.State) {
		t.EndedAt = last.EndedAt
		if t.State == taskstate.Canceled && stopped && (last.EndedAt.IsZero() || t.canceledAt.Before(last.EndedAt)) {
			t.EndedAt = t.canceledAt
		}
	}
	if !t.EnqueuedAt.IsZero() && t.History[0].Number == 1 {
		t.wait = float64(max(0, t.History[0].StartedAt.Sub(t.EnqueuedAt)).Microseconds()) / 1000
		t.flags |= hasWait
	}
}

// previous is the execution before t of the same queue and ID, if the index holds it.
func (t *Task) previous(ix *index) *Task {
	i := ix.search(t.first)
	for j := i - 1; j >= 0; j-- {
		if p := ix.tasks[j]; p.flags&gone == 0 && p.Queue == t.Queue && p.ID == t.ID && p.Execution < t.Execution {
			return p
		}
	}
	return nil
}

// find is the position of the task whose first fact is id, or where it would be.
func (ix *index) find(id string) int {
	return ix.search(parseStreamID(id))
}

func (ix *index) search(at streamID) int {
	return sort.Search(len(ix.tasks), func(i int) bool { return !ix.tasks[i].first.before(at) })
}

func (t *Task) errorContains(w string) bool {
	if t.History == nil {
		return containsFold(t.Error, w)
	}
	for i := range t.History {
		if t.History[i].Error != "" && containsFold(t.History[i].Error, w) {
			return true
		}
	}
	return false
}

func (ix *index) page(q *Query, limit int, cursor string) *Page {
	p := &Page{Tasks: []Task{}, Counts: map[string]int{}}
	start := len(ix.tasks)
	if cursor != "" {
		start = ix.find(cursor)
	}
	empty := q.Empty()
	for i := len(ix.tasks) - 1; i >= 0; i-- {
		t := ix.tasks[i]
		if t.flags&gone != 0 || (!empty && !q.Match(t)) {
			continue
		}
		p.Total++
		p.Counts[t.State]++
		if i >= start {
			continue
		}
		if len(p.Tasks) < limit {
			p.Tasks = append(p.Tasks, t.public(false))
		} else if p.Next == "" {
			p.Next = p.Tasks[len(p.Tasks)-1].first.String()
		}
	}
	return p
}

// runtime is how long t's latest attempt ran, or has run by now.
func (t *Task) runtime(now time.Time) float64 {
	if t.State == taskstate.Running {
		return float64(max(0, now.Sub(t.LatestAt)).Microseconds()) / 1000
	}
	if t.flags&hasDur != 0 {
		return t.dur
	}
	return 0
}

func (ix *index) longest(q *Query, limit, offset int, now time.Time) *Page {
	p := &Page{Tasks: []Task{}, Counts: map[string]int{}}
	type ranked struct {
		t  *Task
		ms float64
	}
	var all []ranked
	empty := q.Empty()
	for i := len(ix.tasks) - 1; i >= 0; i-- {
		t := ix.tasks[i]
		if t.flags&gone != 0 || (!empty && !q.Match(t)) {
			continue
		}
		p.Total++
		p.Counts[t.State]++
		all = append(all, ranked{t, t.runtime(now)})
	}
	slices.SortStableFunc(all, func(a, b ranked) int { return cmp.Compare(b.ms, a.ms) })
	for _, x := range all[min(offset, len(all)):min(offset+limit, len(all))] {
		p.Tasks = append(p.Tasks, x.t.public(false))
	}
	if offset+limit < len(all) {
		p.Next = strconv.Itoa(offset + limit)
	}
	return p
}

func (ix *index) remove(t *Task) {
	t.flags |= gone
	ix.live--
	k := taskKey{t.Queue, t.ID}
	if ix.byKey[k] == t {
		delete(ix.byKey, k)
	}
}

func (ix *index) dropOldest() {
	for _, t := range ix.tasks {
		if t.flags&gone == 0 {
			ix.remove(t)
			break
		}
	}
	ix.compact()
}

func (ix *index) trim(firstID string) {
	first := parseStreamID(firstID)
	for _, t := range ix.tasks {
		if t.flags&gone == 0 && t.last.before(first) {
			ix.remove(t)
		}
	}
	ix.compact()
}

// compact drops gone tasks from the order once they are a quarter of it.
func (ix *index) compact() {
	if len(ix.tasks)-ix.live < max(len(ix.tasks)/4, 64) {
		return
	}
	ix.tasks = slices.DeleteFunc(ix.tasks, func(t *Task) bool { return t.flags&gone != 0 })
}
