package live

import (
	"encoding/json"
	"testing"
	"time"
)

// encodeFact writes what json.Marshal writes, for every kind of field.
func TestEncodeFactIsJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	facts := []*Fact{
		{Kind: KindStarted, Queue: "q", TaskID: "id-1", Type: "email:send", Attempt: 1, MaxRetry: 25,
			Worker: Worker{Host: "h", PID: 42, Slot: 3}, At: at},
		{Kind: KindEnded, Queue: "crit\"ical", TaskID: "ü/\\x<y>&z\u2028\t\n\r\x01", Type: "t", Attempt: 3,
			Worker: Worker{Host: "hôte"}, At: at, EnqueuedAt: at.Add(-time.Second), StartedAt: at.Add(-time.Millisecond),
			DurationMS: 1.234, Exit: ExitError, Error: "bad \xff byte", Retry: true,
			Payload: &Bytes{Size: 3, Data: "abc"}, Result: &Bytes{Size: 9, Data: "AAEC", Base64: true, Truncated: true}},
		{Kind: KindEnded, At: time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("x", 3600)), DurationMS: 1e6},
	}
	for i, f := range facts {
		want, _ := json.Marshal(f)
		if got := encodeFact(f); string(got) != string(want) {
			t.Errorf("fact %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
