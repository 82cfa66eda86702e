package templates

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/taskrace/taskrace/live"
	"github.com/taskrace/taskrace/live/taskstate"
)

// TasksView is the recorded tasks page: one page of the tasks a query selects.
type TasksView struct {
	Page   Page
	Q      string // the query as typed
	Sort   string // SortStart or SortRuntime
	Cursor string // where this page starts: a cursor (by start) or an offset (by runtime); "" for the newest
	Rows   TaskRows
	Error  string
}

// Orders of the tasks page.
const (
	SortStart   = "start"   // newest first
	SortRuntime = "runtime" // longest-running first
)

// TaskRows is what the live part of the tasks page shows: the rows, the counts, and the
// link to the next page. The stream sends it again whenever it changes.
type TaskRows struct {
	Tasks  []live.Task
	Total  int
	Counts map[string]int
	Next   string    // the next page's cursor; "" on the last
	Q      string    // for the next page's link
	Sort   string    // for the next page's link
	At     time.Time // when it was read: running times count to here
}

// TaskView is one recorded task's page.
type TaskView struct {
	Page  Page
	Task  *live.Task
	At    time.Time // when it was read: a running attempt's time counts to here
	Error string
}

// TasksURL is the tasks page for a query, an order and a cursor.
func TasksURL(q, sort, cursor string) string {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	if sort != "" && sort != SortStart {
		v.Set("sort", sort)
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if len(v) == 0 {
		return "/tasks"
	}
	return "/tasks?" + v.Encode()
}

// TaskURL is a recorded task's page; execution 0 is the latest.
func TaskURL(t *live.Task) string {
	u := "/tasks/" + url.PathEscape(t.Queue) + "/" + url.PathEscape(t.ID)
	if t.Execution > 1 {
		u += "?execution=" + strconv.Itoa(t.Execution)
	}
	return u
}

// TaskURLStream is where a task's page follows it.
func TaskURLStream(t *live.Task) string {
	u := "/tasks/" + url.PathEscape(t.Queue) + "/" + url.PathEscape(t.ID) + "/stream"
	if t.Execution > 1 {
		u += "?execution=" + strconv.Itoa(t.Execution)
	}
	return u
}

// TaskRowID is the element ID of a task's row on the tasks page.
func TaskRowID(t *live.Task) string {
	return "rt-" + strconv.Itoa(len(t.Queue)) + "-" + t.Queue + "-" + t.ID + "-" + strconv.Itoa(t.Execution)
}

// Runtime is how long a task's latest attempt ran, or has run by at, as people read it.
func Runtime(t *live.Task, at time.Time) string {
	if t.State != taskstate.Running && t.DurationMS == nil {
		return "—"
	}
	return Duration(RuntimeMS(t, at))
}

// RuntimeMS is how long a task's latest attempt ran, or has run by at, in milliseconds.
func RuntimeMS(t *live.Task, at time.Time) float64 {
	if t.State == taskstate.Running {
		return float64(max(0, at.Sub(t.LatestAt)).Microseconds()) / 1000
	}
	if t.DurationMS == nil {
		return 0
	}
	return *t.DurationMS
}

// Duration formats milliseconds for people: "840 µs", "12.3 ms", "2.41 s", "3 min 05 s".
func Duration(ms float64) string {
	switch {
	case ms < 1:
		return strconv.FormatFloat(ms*1000, 'f', 0, 64) + " µs"
	case ms < 100:
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	case ms < 60_000:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s"
	}
	d := time.Duration(ms) * time.Millisecond
	m := int(d / time.Minute)
	s := int((d % time.Minute) / time.Second)
	if m < 60 {
		return strconv.Itoa(m) + " min " + pad2(s) + " s"
	}
	return strconv.Itoa(m/60) + " h " + pad2(m%60) + " min"
}

// DurationPtr is Duration, or "—" for none.
func DurationPtr(ms *float64) string {
	if ms == nil {
		return "—"
	}
	return Duration(*ms)
}

func pad2(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// TimeOf formats a time as 2006-01-02 15:04:05.000 UTC, "—" for the zero time.
func TimeOf(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000") + " UTC"
}

// ClockOf formats a time of today as 15:04:05.000, "—" for the zero time.
func ClockOf(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("15:04:05.000")
}

// ISO is a time for a datetime attribute.
func ISO(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// TaskCounts is "1,204 tasks: 3 running · 1,190 done · 11 failed", states in their order.
func TaskCounts(total int, counts map[string]int) string {
	var parts []string
	for _, s := range taskstate.All {
		if n := counts[s]; n > 0 {
			parts = append(parts, Thousands(n)+" "+s)
		}
	}
	line := Thousands(total) + " " + map[bool]string{true: "task", false: "tasks"}[total == 1]
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, " · ")
	}
	return line
}

// Thousands formats n with thousands separators: 12,345.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Thousands64 is Thousands of an int64.
func Thousands64(n int64) string { return Thousands(int(n)) }

// BytesText is a recorded payload or result as shown: its text, or its base64, with its size.
func BytesText(b *live.Bytes) string {
	return b.Data
}

// BytesNote is "312 bytes", "312 bytes, first 256 shown", "base64".
func BytesNote(b *live.Bytes) string {
	n := Thousands(b.Size) + " bytes"
	if b.Truncated {
		n += ", first " + Thousands(len(b.Data)) + " shown"
	}
	if b.Base64 {
		n += ", not text: shown in base64"
	}
	return n
}

// OutcomeBadgeClass is the badge class of an attempt's outcome.
func OutcomeBadgeClass(outcome string) string { return StateBadgeClass(outcomeState(outcome)) }

func outcomeState(outcome string) string {
	switch outcome {
	case taskstate.AttemptDone:
		return taskstate.Done
	case taskstate.AttemptFailed:
		return taskstate.Failed
	case taskstate.AttemptCanceled:
		return taskstate.Canceled
	case taskstate.AttemptRunning:
		return taskstate.Running
	}
	return outcome
}

// TasksStreamURL is where the tasks page follows its query.
func TasksStreamURL(q, sort string) string {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	if sort != "" && sort != SortStart {
		v.Set("sort", sort)
	}
	if len(v) == 0 {
		return "/tasks/stream"
	}
	return "/tasks/stream?" + v.Encode()
}

// ExitWord is how an attempt left its handler, in words.
func ExitWord(exit string) string {
	switch exit {
	case "":
		return "—"
	case live.ExitSkipRetry:
		return "error, SkipRetry"
	case live.ExitRevoked:
		return "revoked"
	}
	return exit
}
