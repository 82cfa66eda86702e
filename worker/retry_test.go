package worker

import (
	"testing"
	"time"
)

func TestToWholeSecond(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		now  time.Duration // after base
		d    time.Duration
		want time.Duration
	}{
		{"on a second", 0, time.Second, time.Second},
		{"mid-second", 300 * time.Millisecond, time.Second, 1700 * time.Millisecond},
		{"just before a second", 999 * time.Millisecond, 2 * time.Second, 2001 * time.Millisecond},
		{"just after a second", time.Millisecond, 4 * time.Second, 4999 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := base.Add(tt.now)
			got := toWholeSecond(now, tt.d)
			if got != tt.want {
				t.Errorf("toWholeSecond(+%s, %s) = %s, want %s", tt.now, tt.d, got, tt.want)
			}
			if end := now.Add(got); end.Nanosecond() != 0 || got < tt.d {
				t.Errorf("the wait ends at %s: want a whole second, at least %s on", end.Format(time.StampMicro), tt.d)
			}
		})
	}
}
