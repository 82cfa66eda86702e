package live

import (
	"maps"
	"time"

	"github.com/hibiken/asynq"
)

// HeaderEnqueuedAt is the task header in which NewTask stamps when the task was made. asynq
// forgets when a task was enqueued (its dequeue drops pending_since), so this header is how
// the recorder learns a task's wait: enqueue to first start.
const HeaderEnqueuedAt = "live-enqueued-at"

// NewTask is asynq.NewTask with the time stamped in a header, for the recorder to measure
// the task's wait. Make the task just before enqueueing it. The header carries no payload
// data; a task scheduled with ProcessIn or ProcessAt counts its delay as wait. Retries keep
// the stamp, so only a first attempt's wait is counted.
func NewTask(typename string, payload []byte, opts ...asynq.Option) *asynq.Task {
	return NewTaskWithHeaders(typename, payload, nil, opts...)
}

// NewTaskWithHeaders is NewTask with headers of the caller's own.
func NewTaskWithHeaders(typename string, payload []byte, headers map[string]string, opts ...asynq.Option) *asynq.Task {
	h := make(map[string]string, len(headers)+1)
	maps.Copy(h, headers)
	h[HeaderEnqueuedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	return asynq.NewTaskWithHeaders(typename, payload, h, opts...)
}

// EnqueuedAt is the time NewTask stamped in t, or the zero time.
func EnqueuedAt(t *asynq.Task) time.Time {
	v, ok := t.Headers()[HeaderEnqueuedAt]
	if !ok {
		return time.Time{}
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return at
}
