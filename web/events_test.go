package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
)

func TestEventStreamHeaders(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0})
	s := h.open(r.ID, "")
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	} {
		if got := s.resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	checkRun(t, r.ID, s.all(t), 1, app.RunFinished)
}

func TestEventStreamResumesWithoutLoss(t *testing.T) {
	t.Parallel()
	h := start(t)
	const tasks = 6
	r := h.launch(map[string]any{"mode": "sequential", "tasks": tasks, "delay_ms": 60})

	// Leave mid-run, then come back as EventSource does, with Last-Event-ID.
	s := h.open(r.ID, "")
	var got []sseEvent
	for len(got) < tasks+3 { // run.created, the queued tasks, and a start or two
		e, ok := s.next(t)
		if !ok {
			t.Fatal("stream ended early")
		}
		got = append(got, e)
	}
	s.close()
	s = h.open(r.ID, "", "Last-Event-ID", got[len(got)-1].ID)
	got = append(got, s.all(t)...)
	checkRun(t, r.ID, got, tasks, app.RunFinished)

	whole := h.follow(r.ID)
	if len(whole) != len(got) {
		t.Fatalf("resumed stream has %d events, the whole one %d", len(got), len(whole))
	}
	for i := range whole {
		if whole[i] != got[i] {
			t.Fatalf("event %d differs: resumed %+v, whole %+v", i, got[i], whole[i])
		}
	}

	// Resume positions on an ended run: ?after= as well as the header, from anywhere.
	for _, k := range []int{0, 3, len(whole) - 2} {
		rest := h.open(r.ID, "?after="+whole[k].ID).all(t)
		if len(rest) != len(whole)-k-1 || rest[0] != whole[k+1] {
			t.Errorf("after event %d: %d events from %+v", k, len(rest), rest)
		}
	}
	// The header wins over the query.
	rest := h.open(r.ID, "?after="+whole[0].ID, "Last-Event-ID", whole[len(whole)-2].ID).all(t)
	if len(rest) != 1 || rest[0].Type != app.RunFinished {
		t.Errorf("Last-Event-ID and ?after=: got %+v", rest)
	}
}

func TestEventStreamEndedRunAtItsEndIs204(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "concurrent", "tasks": 2, "delay_ms": 0})
	evs := h.follow(r.ID)
	last := evs[len(evs)-1].ID
	for _, res := range []*response{
		h.get("/api/runs/"+r.ID+"/events", "Last-Event-ID", last),
		h.get("/api/runs/" + r.ID + "/events?after=" + last),
	} {
		if res.status != http.StatusNoContent || len(res.body) != 0 {
			t.Errorf("status %d, body %q; want 204 and nothing", res.status, res.body)
		}
	}
}

func TestEventStreamRejectsBadPositions(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 0})
	for _, tc := range []struct {
		header, query, location string
	}{
		{"nope", "", "header.Last-Event-ID"},
		{"12-x", "", "header.Last-Event-ID"},
		{"", "?after=12", "query.after"},
		{"", "?after=-1-0", "query.after"},
	} {
		var res *response
		if tc.header != "" {
			res = h.get("/api/runs/"+r.ID+"/events", "Last-Event-ID", tc.header)
		} else {
			res = h.get("/api/runs/" + r.ID + "/events" + tc.query)
		}
		p := res.problem(t, http.StatusBadRequest)
		if len(p.Errors) != 1 || p.Errors[0].Location != tc.location {
			t.Errorf("%+v: problem %+v", tc, p)
		}
	}
}

func TestEventStreamPings(t *testing.T) {
	t.Parallel()
	h := start(t, withPingEvery(20*time.Millisecond))
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 300})
	s := h.open(r.ID, "")
	checkRun(t, r.ID, s.all(t), 1, app.RunFinished)
	if s.pings == 0 {
		t.Error("no ping during a 300 ms task with pings every 20 ms")
	}
}

func TestEventStreamsShareRenderedFrames(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "concurrent", "tasks": 4, "delay_ms": 100, "parallelism": 2})
	streams := make([]*sseStream, 3)
	for i := range streams {
		streams[i] = h.open(r.ID, "")
	}
	var first []sseEvent
	for i, s := range streams {
		evs := s.all(t)
		checkRun(t, r.ID, evs, 4, app.RunFinished)
		if i == 0 {
			first = evs
			continue
		}
		if len(evs) != len(first) {
			t.Fatalf("viewer %d saw %d events, viewer 0 %d", i, len(evs), len(first))
		}
		for j := range evs {
			if evs[j] != first[j] {
				t.Errorf("viewer %d event %d = %+v, viewer 0 saw %+v", i, j, evs[j], first[j])
			}
		}
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 20_000})
	s := h.open(r.ID, "")
	if e, ok := s.next(t); !ok || e.Type != app.RunCreated {
		t.Fatalf("first event = %+v", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("Shutdown took %s with a stream open", took)
	}
	for {
		e, ok := s.next(t)
		if !ok {
			break
		}
		if e.Terminal() {
			t.Errorf("stream got %s before shutdown ended it", e.Type)
		}
	}
}

// Terminal reports whether the frame carries a terminal event.
func (e sseEvent) Terminal() bool {
	return strings.HasPrefix(e.Type, "run.") && e.Type != app.RunCreated
}

func TestEventStreamNoticesAClientThatLeft(t *testing.T) {
	t.Parallel()
	h := start(t, withPingEvery(20*time.Millisecond))
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 20_000})
	s := h.open(r.ID, "")
	if e, ok := s.next(t); !ok || e.Type != app.RunCreated {
		t.Fatalf("first event = %+v", e)
	}
	h.eventually(5*time.Second, "the stream to subscribe to the feed", func() bool {
		return h.core.Feed.Subscribers() == 1
	})
	s.close()
	// The next ping fails to flush: the stream ends and leaves the feed.
	h.eventually(5*time.Second, "the stream to notice its client left", func() bool {
		return h.core.Feed.Subscribers() == 0
	})
	if res := h.do("POST", "/api/runs/"+r.ID+"/cancel", nil); res.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", res.status, res.body)
	}
}
