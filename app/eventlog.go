package app

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/taskrace/taskrace/live"
)

// EventLog is the append-only log of every run's events: one Redis Stream per run, whose
// entry IDs order the events and serve as SSE event IDs.
type EventLog struct {
	rdb redis.UniversalClient
	app *appender
}

// Append writes e to its run's stream and waits until it is stored.
func (l *EventLog) Append(ctx context.Context, e *Event) error {
	_, err := l.app.do(ctx, nil, l.xadd(e))
	return err
}

// AppendAfter writes e once the write after is stored, and waits until e is stored.
func (l *EventLog) AppendAfter(ctx context.Context, e *Event, after *op) error {
	_, err := l.app.do(ctx, after, l.xadd(e))
	return err
}

// AppendEnding writes e with the live record of the attempt's end, in one pipeline, once
// the write after is stored, and waits until both are stored.
func (l *EventLog) AppendEnding(ctx context.Context, e *Event, end *live.Ending, after *op) error {
	if end == nil {
		return l.AppendAfter(ctx, e, after)
	}
	xadd := l.xadd(e)
	_, err := l.app.do(ctx, after, func(p redis.Pipeliner) []redis.Cmder {
		return append(xadd(p), liveXAdd(p, end))
	})
	if err == nil {
		end.Stored()
	}
	return err
}

// Send writes e without waiting. The returned op orders a later write after it.
func (l *EventLog) Send(e *Event) *op { return l.app.send(l.xadd(e)) }

// SendStarting writes e with the live record of the attempt's start (nil: none), in one
// pipeline, without waiting. The returned op orders a later write after both.
func (l *EventLog) SendStarting(e *Event, start *live.Ending) *op {
	if start == nil {
		return l.Send(e)
	}
	xadd := l.xadd(e)
	return l.app.send(func(p redis.Pipeliner) []redis.Cmder {
		return append(xadd(p), liveXAdd(p, start))
	})
}

// started tells the live record that the start sent with op is stored, once it is.
func started(o *op, start *live.Ending) {
	if start == nil {
		return
	}
	<-o.stored // stored already when a write after it was
	if o.err == nil {
		start.Stored()
	}
}

func liveXAdd(p redis.Pipeliner, f *live.Ending) redis.Cmder {
	return p.XAdd(context.Background(), &redis.XAddArgs{Stream: f.Stream, MaxLen: f.MaxLen, Approx: true, Values: []string{"f", f.Data}})
}

// AppendAll writes events in one pipeline and waits.
func (l *EventLog) AppendAll(ctx context.Context, events []*Event) error {
	_, err := l.app.do(ctx, nil, func(p redis.Pipeliner) []redis.Cmder {
		cmds := make([]redis.Cmder, len(events))
		for i, e := range events {
			cmds[i] = p.XAdd(ctx, &redis.XAddArgs{Stream: keyEvents(e.RunID), Values: []string{"e", string(e.JSON())}})
		}
		return cmds
	})
	return err
}

func (l *EventLog) xadd(e *Event) func(p redis.Pipeliner) []redis.Cmder {
	data := string(e.JSON())
	return func(p redis.Pipeliner) []redis.Cmder {
		return []redis.Cmder{p.XAdd(context.Background(), &redis.XAddArgs{Stream: keyEvents(e.RunID), Values: []string{"e", data}})}
	}
}

// Read returns up to count events of run after the entry ID after ("" for the start).
func (l *EventLog) Read(ctx context.Context, runID, after string, count int64) ([]*Event, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := l.rdb.XRangeN(ctx, keyEvents(runID), start, "+", count).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, Unavailable("cannot read the run's events", err)
	}
	return decodeMessages(msgs), nil
}

// ReadAll returns every event of run.
func (l *EventLog) ReadAll(ctx context.Context, runID string) ([]*Event, error) {
	var all []*Event
	after := ""
	for {
		evs, err := l.Read(ctx, runID, after, 5000)
		if err != nil {
			return nil, err
		}
		all = append(all, evs...)
		if len(evs) < 5000 {
			return all, nil
		}
		after = evs[len(evs)-1].ID
	}
}

func decodeMessages(msgs []redis.XMessage) []*Event {
	evs := make([]*Event, 0, len(msgs))
	for _, m := range msgs {
		data, _ := m.Values["e"].(string)
		e, err := decodeEvent(m.ID, data)
		if err != nil {
			continue // not ours: a stream entry without an event is skipped, not fatal
		}
		evs = append(evs, e)
	}
	return evs
}
