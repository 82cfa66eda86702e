package app

import (
	"testing"
	"time"
)

func TestRetryWaitDoubles(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	var got []time.Duration
	for n := range 9 {
		got = append(got, c.RetryWait(n))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("waits %v, want %v seconds: doubling from RETRY_DELAY, capped at MaxRetryWait", got, want)
		}
	}
	if c.RetryWait(1000) != MaxRetryWait {
		t.Errorf("RetryWait(1000) = %s, want the cap", c.RetryWait(1000))
	}
}
