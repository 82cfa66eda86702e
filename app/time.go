package app

import (
	"strconv"
	"time"
)

// TimeLayout is how every event time is written: RFC 3339, UTC, microseconds.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Time is a time.Time that marshals in TimeLayout.
type Time struct{ time.Time }

// Now returns the current time, truncated to microseconds, in UTC.
func Now() Time { return Time{time.Now().UTC().Truncate(time.Microsecond)} }

// MarshalJSON writes t in TimeLayout.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return strconv.AppendQuote(nil, t.UTC().Format(TimeLayout)), nil
}

// UnmarshalJSON reads any RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	t.Time = v.UTC()
	return nil
}

// ms returns d in milliseconds with microsecond precision.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
