package app

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskrace/taskrace/live"
)

// RunStore keeps run records in Redis: one hash per run, an index ordered by ID, the set of
// running runs, and the heartbeats of the processes that own local runs.
type RunStore struct {
	rdb       redis.UniversalClient
	app       *appender
	retention time.Duration
	maxActive int
	metrics   *Metrics
	ended     func(ctx context.Context, r RunRef) // after End ended a run
}

// createScript admits a run when fewer than max are active, saves it and appends run.created
// and tasks.queued: one event for all its tasks, in the same round trip.
// KEYS: run, events, done, active, index. ARGV: max, id, retention s, run.created,
// tasks.queued, field/value...
var createScript = redis.NewScript(`
if redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[1]) then return false end
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[5], 0, ARGV[2])
redis.call('XADD', KEYS[2], '*', 'e', ARGV[4])
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return id
`)

// finishScript records that a task ended, once: a retried task that ends again is not
// counted twice, and nothing is counted after the run ended. The task that ends the last
// one appends run.finished.
// A distributed task's result is written into asynq's record of it too, as asynq's
// ResultWriter would, but in the same round trip.
// It returns 0 when the end is not counted (counted before, or the run finished), -1 when
// the run was canceled or interrupted first, 1 when counted, 2 when it ended the run.
// The script builds run.finished's JSON itself (as Event.JSON would), so that the tasks
// that do not end the run do not pay for it. The run ends when its latest task ended, which
// need not be the task whose end is stored last (ends are written concurrently): the
// script keeps the latest end seen, so run.finished is never before a task's end.
// The attempt's live fact is written in the same script: the one that says how it ended
// when the run still counts it (or counted it before), the one that says it was revoked when
// the run had ended first; "" for none.
// KEYS: run, events, done, active, asynq task, live facts. ARGV: index, event, failed 0|1,
// tasks, ideal ms, retention s, wall ms, ended at, efficiency, run id, result ("" for none),
// facts cap, fact if counted, fact if the run ended first.
var finishScript = redis.NewScript(`
local status = redis.call('HGET', KEYS[1], 'status')
local fact = ARGV[13]
if status ~= 'running' and status ~= 'finished' then fact = ARGV[14] end
if fact ~= '' then redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[12], '*', 'f', fact) end
if status ~= 'running' then
  if status == 'finished' then return 0 end
  return -1
end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
if ARGV[11] ~= '' and redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('HSET', KEYS[5], 'result', ARGV[11])
end
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'failed', 1) end
local last = redis.call('HMGET', KEYS[1], 'last_wall_ms', 'last_end_at', 'last_efficiency')
local wall, at, eff = ARGV[7], ARGV[8], ARGV[9]
if last[1] and tonumber(last[1]) > tonumber(wall) then
  wall, at, eff = last[1], last[2], last[3]
else
  redis.call('HSET', KEYS[1], 'last_wall_ms', wall, 'last_end_at', at, 'last_efficiency', eff)
end
if redis.call('SCARD', KEYS[3]) < tonumber(ARGV[4]) then return 1 end
redis.call('XADD', KEYS[2], '*', 'e', '{"type":"run.finished","run_id":"' .. ARGV[10] .. '","at":"' .. at ..
  '","wall_ms":' .. wall .. ',"ideal_ms":' .. ARGV[5] .. ',"efficiency":' .. eff .. '}')
redis.call('HSET', KEYS[1], 'status', 'finished', 'ended_at', at, 'wall_ms', wall, 'efficiency', eff)
redis.call('SREM', KEYS[4], ARGV[10])
if redis.call('HGET', KEYS[1], 'pinned') ~= '1' then
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[6]) end
end
return 2
`)

// endScript ends a running run with a status other than finished, appending its event.
// KEYS: run, events, done, active. ARGV: status, event, ended at, retention s, run id,
// reason, wall ms.
var endScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'ended_at', ARGV[3], 'reason', ARGV[6], 'wall_ms', ARGV[7])
redis.call('SREM', KEYS[4], ARGV[5])
if redis.call('HGET', KEYS[1], 'pinned') ~= '1' then
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
end
return 1
`)

// pinScript pins or unpins a run. KEYS: run, events, done. ARGV: 1|0, retention s.
var pinScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'pinned', ARGV[1])
for i = 1, 3 do
  if ARGV[1] == '1' then redis.call('PERSIST', KEYS[i]) else redis.call('EXPIRE', KEYS[i], ARGV[2]) end
end
return 1
`)

var storeScripts = []*redis.Script{createScript, finishScript, endScript, pinScript}

func (s *RunStore) retentionSecs() string {
	return strconv.FormatInt(int64(s.retention/time.Second), 10)
}

// Create saves a new run and appends its run.created and tasks.queued events, unless
// maxActive runs are already running across all processes.
func (s *RunStore) Create(ctx context.Context, r *Run) error {
	ev := &Event{Type: RunCreated, RunID: r.ID, At: r.CreatedAt, Mode: r.Mode, Tasks: r.Tasks,
		DelayMS: r.DelayMS, Parallelism: r.Parallelism, Target: r.Target, FailureRate: r.FailureRate}
	queued := &Event{Type: TasksQueued, RunID: r.ID, At: r.CreatedAt, Tasks: r.Tasks}
	args := []any{s.maxActive, r.ID, s.retentionSecs(), ev.JSON(), queued.JSON(),
		"id", r.ID, "mode", string(r.Mode), "tasks", r.Tasks, "delay_ms", r.DelayMS,
		"parallelism", r.Parallelism, "target", r.Target, "failure_rate", r.FailureRate,
		"status", StatusRunning, "created_at", r.CreatedAt.Format(TimeLayout),
		"ideal_ms", r.IdealMS, "owner", r.Owner, "pinned", "0", "failed", 0}
	keys := []string{keyRun(r.ID), keyEvents(r.ID), keyDone(r.ID), keyActive, keyRuns}
	err := createScript.Run(ctx, s.rdb, keys, args...).Err()
	if errors.Is(err, redis.Nil) {
		return Errorf(ETooMany, "%d runs are already running, the most allowed (MAX_ACTIVE_RUNS); wait for one to end", s.maxActive)
	}
	if err != nil {
		return Unavailable("cannot save the run", err)
	}
	return nil
}

// Finish records the end of task index of run r (failed or not) with event e. When it ends
// the run's last task, it appends run.finished too. It reports whether it ended the run,
// and ErrRunEnded when the run was canceled or interrupted first (nothing is recorded then).
// It is stored after the write after (nil for none): the task's task.started. The live
// record of the attempt's end is stored in the same round trip: end when the run counts it,
// revoked when the run had ended first (nil, nil: none).
func (s *RunStore) Finish(ctx context.Context, r RunRef, index int, e *Event, after *op, end, revoked *live.Ending) (bool, error) {
	failed := "0"
	if e.Type == TaskFailed {
		failed = "1"
	}
	wall := e.At.Sub(r.CreatedAt.Time)
	wallMS := ms(wall)
	eff := Efficiency(r.IdealMS, wallMS)
	keys := append(runKeys(r.ID), asynqTaskKey(r.Queue, TaskID(r.ID, index)), keyPrefix+"no-live-facts")
	var maxLen int64
	var counted, refused string
	if end != nil && revoked != nil {
		keys[len(keys)-1], maxLen, counted, refused = end.Stream, end.MaxLen, end.Data, revoked.Data
	}
	var result []byte
	if r.Queue != "" {
		result, _ = json.Marshal(TaskResult{Status: e.Status, DurationMS: e.DurationMS, Error: e.Error, Worker: e.Worker})
	}
	args := []any{index, e.JSON(), failed, r.Tasks, r.IdealMS, s.retentionSecs(), wallMS,
		e.At.UTC().Format(TimeLayout), eff, r.ID, result, maxLen, counted, refused}
	cmds, err := s.app.do(ctx, after, func(p redis.Pipeliner) []redis.Cmder {
		return []redis.Cmder{finishScript.EvalSha(ctx, p, keys, args...)}
	})
	if err != nil {
		return false, err
	}
	n, _ := cmds[0].(*redis.Cmd).Int()
	if end != nil && revoked != nil {
		if n == -1 {
			revoked.Stored()
		} else {
			end.Stored()
		}
	}
	switch n {
	case 2:
		s.metrics.runEnded(r.Mode, StatusFinished, wallMS)
	case -1:
		return false, ErrRunEnded
	}
	return n == 2, nil
}

// End ends a running run as canceled or interrupted. It reports false when the run was
// not running (or does not exist).
func (s *RunStore) End(ctx context.Context, r RunRef, status, reason string) (bool, error) {
	at := Now()
	wallMS := ms(at.Sub(r.CreatedAt.Time))
	e := &Event{RunID: r.ID, At: at, Reason: reason, WallMS: &wallMS}
	switch status {
	case StatusCanceled:
		e.Type = RunCanceled
	case StatusInterrupted:
		e.Type = RunInterrupted
	default:
		return false, Errorf(EInternal, "cannot end a run as %q", status)
	}
	args := []any{status, e.JSON(), at.Format(TimeLayout), s.retentionSecs(), r.ID, reason, wallMS}
	cmds, err := s.app.do(ctx, nil, func(p redis.Pipeliner) []redis.Cmder {
		return []redis.Cmder{endScript.EvalSha(ctx, p, runKeys(r.ID), args...)}
	})
	if err != nil {
		return false, err
	}
	n, _ := cmds[0].(*redis.Cmd).Int()
	if n == 1 {
		s.metrics.runEnded(r.Mode, status, wallMS)
		if s.ended != nil {
			s.ended(ctx, r)
		}
	}
	return n == 1, nil
}

// Pin keeps a run (and its events) forever, or again for the retention period.
func (s *RunStore) Pin(ctx context.Context, id string, pinned bool) error {
	flag := "0"
	if pinned {
		flag = "1"
	}
	n, err := pinScript.Run(ctx, s.rdb, []string{keyRun(id), keyEvents(id), keyDone(id)}, flag, s.retentionSecs()).Int()
	if err != nil {
		return Unavailable("cannot pin the run", err)
	}
	if n == 0 {
		return Errorf(ENotFound, "run %s not found (it may have expired)", id)
	}
	return nil
}

// Delete removes a run and its events.
func (s *RunStore) Delete(ctx context.Context, id string) error {
	p := s.rdb.TxPipeline()
	del := p.Del(ctx, keyRun(id), keyEvents(id), keyDone(id))
	p.ZRem(ctx, keyRuns, id)
	p.SRem(ctx, keyActive, id)
	if _, err := p.Exec(ctx); err != nil {
		return Unavailable("cannot delete the run", err)
	}
	if del.Val() == 0 {
		return Errorf(ENotFound, "run %s not found", id)
	}
	return nil
}

// Get returns the run with the given ID.
func (s *RunStore) Get(ctx context.Context, id string) (*Run, error) {
	if !ValidRunID(id) {
		return nil, Errorf(ENotFound, "run %q not found: not a run ID", id)
	}
	p := s.rdb.Pipeline()
	h := p.HGetAll(ctx, keyRun(id))
	n := p.SCard(ctx, keyDone(id))
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, Unavailable("cannot read the run", err)
	}
	if len(h.Val()) == 0 {
		return nil, Errorf(ENotFound, "run %s not found (it may have expired)", id)
	}
	return parseRun(h.Val(), int(n.Val())), nil
}

func parseRun(h map[string]string, done int) *Run {
	atoi := func(k string) int { n, _ := strconv.Atoi(h[k]); return n }
	atof := func(k string) float64 { f, _ := strconv.ParseFloat(h[k], 64); return f }
	optf := func(k string) *float64 {
		if h[k] == "" {
			return nil
		}
		return ptr(atof(k))
	}
	tm := func(k string) Time { t, _ := time.Parse(time.RFC3339Nano, h[k]); return Time{t.UTC()} }
	delay, _ := strconv.ParseInt(h["delay_ms"], 10, 64)
	return &Run{
		ID: h["id"],
		Plan: Plan{Mode: Mode(h["mode"]), Tasks: atoi("tasks"), DelayMS: delay, Parallelism: atoi("parallelism"),
			Target: h["target"], FailureRate: atof("failure_rate")},
		Status: h["status"], CreatedAt: tm("created_at"), EndedAt: tm("ended_at"),
		WallMS: optf("wall_ms"), IdealMS: atof("ideal_ms"), Efficiency: optf("efficiency"),
		Owner: h["owner"], Pinned: h["pinned"] == "1", Reason: h["reason"],
		Done: done, Failed: atoi("failed"),
	}
}

// ListQuery selects runs: newest first, optionally of one mode and status, after a cursor.
type ListQuery struct {
	Mode   Mode
	Status string
	Limit  int
	Cursor string // the ID of the last run of the previous page
}

// List returns runs newest first and the cursor of the next page ("" when there is none).
func (s *RunStore) List(ctx context.Context, q ListQuery) ([]*Run, string, error) {
	if q.Limit <= 0 {
		q.Limit = 20
	}
	max := "+"
	if q.Cursor != "" {
		max = "(" + q.Cursor
	}
	var runs []*Run
	const batch, maxScan = 100, 5000
	for scanned := 0; scanned < maxScan; {
		ids, err := s.rdb.ZRevRangeByLex(ctx, keyRuns, &redis.ZRangeBy{Max: max, Min: "-", Count: batch}).Result()
		if err != nil {
			return nil, "", Unavailable("cannot list runs", err)
		}
		if len(ids) == 0 {
			return runs, "", nil
		}
		scanned += len(ids)
		found, err := s.getMany(ctx, ids)
		if err != nil {
			return nil, "", err
		}
		for i, r := range found {
			if r == nil {
				continue
			}
			if (q.Mode != "" && r.Mode != q.Mode) || (q.Status != "" && r.Status != q.Status) {
				continue
			}
			runs = append(runs, r)
			if len(runs) == q.Limit {
				if i == len(ids)-1 && len(ids) < batch {
					return runs, "", nil
				}
				return runs, r.ID, nil
			}
		}
		max = "(" + ids[len(ids)-1]
		if len(ids) < batch {
			return runs, "", nil
		}
	}
	if len(runs) > 0 {
		return runs, runs[len(runs)-1].ID, nil
	}
	return runs, "", nil
}

// getMany reads runs by ID in one round trip; expired ones are nil and leave the index.
func (s *RunStore) getMany(ctx context.Context, ids []string) ([]*Run, error) {
	p := s.rdb.Pipeline()
	hs := make([]*redis.MapStringStringCmd, len(ids))
	ns := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		hs[i] = p.HGetAll(ctx, keyRun(id))
		ns[i] = p.SCard(ctx, keyDone(id))
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, Unavailable("cannot read runs", err)
	}
	runs := make([]*Run, len(ids))
	var gone []any
	for i := range ids {
		if len(hs[i].Val()) == 0 {
			gone = append(gone, ids[i])
			continue
		}
		runs[i] = parseRun(hs[i].Val(), int(ns[i].Val()))
	}
	if len(gone) > 0 {
		s.rdb.ZRem(ctx, keyRuns, gone...)
	}
	return runs, nil
}

// Baseline returns the run r is compared with (see IsBaseline): the latest finished
// sequential run of the same plan launched before r, or nil.
func (s *RunStore) Baseline(ctx context.Context, r *Run) (*Run, error) {
	runs, _, err := s.List(ctx, ListQuery{Mode: Sequential, Status: StatusFinished, Limit: 50, Cursor: r.ID})
	if err != nil {
		return nil, err
	}
	return BaselineOf(r, runs), nil
}

// ActiveCount returns how many runs are running across all processes.
func (s *RunStore) ActiveCount(ctx context.Context) (int, error) {
	n, err := s.rdb.SCard(ctx, keyActive).Result()
	if err != nil {
		return 0, Unavailable("cannot count active runs", err)
	}
	return int(n), nil
}

// Heartbeat says that process procID is alive for the next procTTLSecs seconds.
func (s *RunStore) Heartbeat(ctx context.Context, procID string) error {
	return s.rdb.Set(ctx, keyProc(procID), time.Now().UTC().Format(TimeLayout), procTTLSecs*time.Second).Err()
}

// Forget removes procID's heartbeat, on a clean shutdown.
func (s *RunStore) Forget(ctx context.Context, procID string) error {
	return s.rdb.Del(ctx, keyProc(procID)).Err()
}

// SweepOrphans marks interrupted every running run whose owner's heartbeat is gone, and
// drops expired runs from the active set. It returns the IDs it interrupted.
func (s *RunStore) SweepOrphans(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, keyActive).Result()
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	runs, err := s.getMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	var interrupted []string
	for i, r := range runs {
		if r == nil {
			s.rdb.SRem(ctx, keyActive, ids[i])
			continue
		}
		if r.Owner == "" || r.Status != StatusRunning {
			continue
		}
		alive, err := s.rdb.Exists(ctx, keyProc(r.Owner)).Result()
		if err != nil {
			return interrupted, err
		}
		if alive == 0 {
			ok, err := s.End(ctx, refOf(r), StatusInterrupted, "the process that ran it is gone")
			if err != nil {
				return interrupted, err
			}
			if ok {
				interrupted = append(interrupted, r.ID)
			}
		}
	}
	return interrupted, nil
}

// TaskResult is what a distributed task leaves as its asynq result, for the monitor.
type TaskResult struct {
	Status     int      `json:"status,omitempty"`
	DurationMS *float64 `json:"duration_ms,omitempty"`
	Error      string   `json:"error,omitempty"`
	Worker     *Worker  `json:"worker,omitempty"`
}

// asynqQueuesKey is asynq's set of queue names, which its Inspector and the monitor list
// queues from. asynq's client adds a queue to it on its first enqueue only, and remembers
// that it did: after Redis restarts empty, the launcher adds it again itself.
const asynqQueuesKey = "asynq:queues"

// asynqTaskKey is where asynq keeps a task (its layout since v0.18; what its ResultWriter
// writes into).
func asynqTaskKey(queue, taskID string) string {
	if queue == "" {
		return keyPrefix + "no-asynq-task" // local runs have none; the script skips it
	}
	return "asynq:{" + queue + "}:t:" + taskID
}
