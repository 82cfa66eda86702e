package live

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"

	"github.com/taskrace/taskrace/live/taskstate"
)

// Fact kinds: an attempt started, or ended; or the task was canceled from outside.
const (
	KindStarted  = "started"
	KindEnded    = "ended"
	KindCanceled = "canceled" // stopped from outside before it ended (see Recorder.Canceled)
)

// Exits: how an ended attempt left its handler, as asynq's processor reads it.
const (
	ExitSuccess   = "success"    // the handler returned nil
	ExitError     = "error"      // the handler returned an error: retried while retries are left, else archived
	ExitSkipRetry = "skip_retry" // the error wraps asynq.SkipRetry: archived at once
	ExitRevoked   = "revoked"    // the error wraps asynq.RevokeTask: dropped, neither retried nor archived
	ExitDeadline  = "deadline"   // the task's timeout or deadline passed
	ExitCanceled  = "canceled"   // its context was canceled (asynq's CancelProcessing), and the handler gave up
	ExitPanic     = "panic"      // the handler panicked; asynq recovers and treats it as an error
)

// Exits lists every exit of an ended attempt.
var Exits = []string{ExitSuccess, ExitError, ExitSkipRetry, ExitRevoked, ExitDeadline, ExitCanceled, ExitPanic}

// Worker names who executed an attempt: a process on a host, and a slot within it
// (0 … concurrency−1, handed out by the recorder while the attempt runs).
type Worker struct {
	Host string `json:"host"`
	PID  int    `json:"pid"`
	Slot int    `json:"slot"`
}

// String is the worker's short name, host:pid/slot.
func (w Worker) String() string {
	return w.Host + ":" + strconv.Itoa(w.PID) + "/" + strconv.Itoa(w.Slot)
}

// Fact is one thing that happened to a task: an attempt started or ended, or the task was
// canceled from outside. Facts are what the
// recorder stores; states are decided from them when they are read (see taskstate). An
// attempt that starts and ends within one batch of writes (a few milliseconds) is stored as
// its ended fact alone, which carries when it started.
type Fact struct {
	ID         string    `json:"-"` // the stream entry ID, set when read
	Kind       string    `json:"kind" enum:"started,ended,canceled"`
	Queue      string    `json:"queue"`
	TaskID     string    `json:"task_id"`
	Type       string    `json:"type"`
	Attempt    int       `json:"attempt" doc:"1 for a task's first attempt: asynq's retry count + 1"`
	MaxRetry   int       `json:"max_retry"`
	Worker     Worker    `json:"worker"`
	At         time.Time `json:"at"`
	EnqueuedAt time.Time `json:"enqueued_at,omitzero" doc:"When the task was enqueued, if the enqueuer stamped it (see live.NewTask)"`
	StartedAt  time.Time `json:"started_at,omitzero" doc:"Ended: when the attempt started"`
	DurationMS float64   `json:"duration_ms,omitempty" doc:"Ended: how long the handler ran"`
	Exit       string    `json:"exit,omitempty" enum:"success,error,skip_retry,revoked,deadline,canceled,panic"`
	Error      string    `json:"error,omitempty"`
	Retry      bool      `json:"retry,omitempty" doc:"Ended in failure, and asynq will try the task again"`
	Payload    *Bytes    `json:"payload,omitempty" doc:"The payload, up to Options.PayloadBytes: on the started fact, or on the ended one when it stands for both"`
	Result     *Bytes    `json:"result,omitempty" doc:"Ended: the result written with live.WriteResult, up to Options.ResultBytes"`
}

// Bytes is a payload or result as recorded: its size, and its first bytes as text, or in
// base64 when they are not UTF-8.
type Bytes struct {
	Size      int    `json:"size" doc:"The whole size, in bytes"`
	Data      string `json:"data" doc:"Up to the recorder's limit"`
	Base64    bool   `json:"base64,omitempty" doc:"data is base64: the bytes are not UTF-8"`
	Truncated bool   `json:"truncated,omitempty"`
}

// clip records b up to limit bytes; nil when nothing is to be recorded.
func clip(b []byte, limit int) *Bytes {
	if limit <= 0 || b == nil {
		return nil
	}
	out := &Bytes{Size: len(b)}
	if len(b) > limit {
		b, out.Truncated = b[:limit], true
	}
	text := b
	// A cut may fall inside a character: drop its first bytes rather than call the text binary.
	for i := 0; i < utf8.UTFMax-1 && out.Truncated && len(text) > 0 && !utf8.Valid(text); i++ {
		text = text[:len(text)-1]
	}
	if utf8.Valid(text) {
		out.Data = string(text)
	} else {
		out.Data, out.Base64 = base64.StdEncoding.EncodeToString(b), true
	}
	return out
}

// State is the state a task is in right after the fact, as far as the fact alone tells it.
func (f *Fact) State() string {
	switch f.Kind {
	case KindStarted:
		return taskstate.Running
	case KindCanceled:
		return taskstate.Canceled
	}
	return taskstate.Of(true, attemptOutcome(f.Exit), f.Retry, false)
}

// attemptOutcome maps asynq's outcome of an attempt to the shared vocabulary.
func attemptOutcome(outcome string) string {
	switch outcome {
	case ExitSuccess:
		return taskstate.AttemptDone
	case ExitRevoked:
		return taskstate.AttemptCanceled
	}
	return taskstate.AttemptFailed
}

// exitOf classifies how a handler's attempt ended, as asynq's processor will read it, and
// whether asynq will try the task again. retried is asynq's retry count of the attempt.
func exitOf(ctx context.Context, err error, retried, maxRetry int) (outcome string, retry bool) {
	var p panicked
	switch {
	case err == nil:
		return ExitSuccess, false
	case errors.Is(err, asynq.RevokeTask):
		return ExitRevoked, false
	case errors.As(err, &p):
		outcome = ExitPanic
	case errors.Is(err, asynq.SkipRetry):
		return ExitSkipRetry, false
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		outcome = ExitDeadline
	case ctx.Err() != nil:
		outcome = ExitCanceled
	default:
		outcome = ExitError
	}
	return outcome, retried < maxRetry
}

// panicked is a handler's panic, as an error.
type panicked struct{ v any }

func (p panicked) Error() string {
	if err, ok := p.v.(error); ok {
		return "panic: " + err.Error()
	}
	b, _ := json.Marshal(p.v)
	if s, ok := p.v.(string); ok {
		return "panic: " + s
	}
	return "panic: " + strings.Trim(string(b), `"`)
}

// encodeFact is json.Marshal(f), by hand: it runs for every fact, on the cores the asynq
// server shares.
func encodeFact(f *Fact) []byte {
	b := make([]byte, 0, 256+len(f.Error))
	b = append(b, `{"kind":`...)
	b = appendString(b, f.Kind)
	b = append(b, `,"queue":`...)
	b = appendString(b, f.Queue)
	b = append(b, `,"task_id":`...)
	b = appendString(b, f.TaskID)
	b = append(b, `,"type":`...)
	b = appendString(b, f.Type)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(f.Attempt), 10)
	b = append(b, `,"max_retry":`...)
	b = strconv.AppendInt(b, int64(f.MaxRetry), 10)
	b = append(b, `,"worker":{"host":`...)
	b = appendString(b, f.Worker.Host)
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, int64(f.Worker.PID), 10)
	b = append(b, `,"slot":`...)
	b = strconv.AppendInt(b, int64(f.Worker.Slot), 10)
	b = append(b, `},"at":`...)
	b = appendTime(b, f.At)
	if !f.EnqueuedAt.IsZero() {
		b = append(b, `,"enqueued_at":`...)
		b = appendTime(b, f.EnqueuedAt)
	}
	if !f.StartedAt.IsZero() {
		b = append(b, `,"started_at":`...)
		b = appendTime(b, f.StartedAt)
	}
	if f.DurationMS != 0 {
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendFloat(b, f.DurationMS, 'f', -1, 64)
	}
	if f.Exit != "" {
		b = append(b, `,"exit":`...)
		b = appendString(b, f.Exit)
	}
	if f.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, f.Error)
	}
	if f.Retry {
		b = append(b, `,"retry":true`...)
	}
	if f.Payload != nil {
		p, _ := json.Marshal(f.Payload)
		b = append(append(b, `,"payload":`...), p...)
	}
	if f.Result != nil {
		r, _ := json.Marshal(f.Result)
		b = append(append(b, `,"result":`...), r...)
	}
	return append(b, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString appends s as a JSON string, escaped as encoding/json escapes it.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func decodeFact(id, data string) (*Fact, error) {
	f := new(Fact)
	if err := json.Unmarshal([]byte(data), f); err != nil {
		return nil, err
	}
	if f.Kind != KindStarted && f.Kind != KindEnded && f.Kind != KindCanceled {
		return nil, errors.New("live: not a fact")
	}
	f.ID = id
	return f, nil
}

// compareIDs orders two stream entry IDs ("ms-seq").
func compareIDs(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	if c := compareDecimal(am, bm); c != 0 {
		return c
	}
	return compareDecimal(as, bs)
}

func compareDecimal(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// ValidEventID reports whether s is a stream entry ID, as the SSE id of an event.
func ValidEventID(s string) bool {
	m, q, ok := strings.Cut(s, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(m, 10, 64)
	_, err2 := strconv.ParseUint(q, 10, 64)
	return err1 == nil && err2 == nil
}
