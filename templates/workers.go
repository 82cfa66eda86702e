package templates

import (
	"strconv"
	"strings"
	"time"

	"github.com/taskrace/taskrace/live"
)

// WorkerProcess is one worker process (host and pid) as the workers pages show it: its
// asynq servers taken together, and what the recorded facts tell of its work.
type WorkerProcess struct {
	Host        string
	PID         int
	Role        string // serve, worker or app
	Servers     int    // asynq servers in the process
	Concurrency int
	Queues      []string
	Started     time.Time
	HeartbeatAt time.Time
	Status      string
	Active      []ActiveTask
	Counts      *live.Process // nil: the viewer may not read recorded tasks, or none is recorded
	Readable    bool          // the viewer may read recorded tasks
}

// Name is host:pid.
func (w WorkerProcess) Name() string { return w.Host + ":" + strconv.Itoa(w.PID) }

// WorkerURL is a worker process's page.
func WorkerURL(host string, pid int) string { return "/workers/" + host + ":" + strconv.Itoa(pid) }

// RoleWord is a process's role for people.
func RoleWord(role string) string {
	switch role {
	case "serve":
		return "serve (web + worker)"
	case "worker":
		return "taskrace worker"
	}
	return "asynq app"
}

// Age is how long ago t was, as people read it: "3 s", "4 min 10 s", "2 h 05 min".
func Age(t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := max(0, now.Sub(t))
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min " + pad2(int(d%time.Minute/time.Second)) + " s"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h " + pad2(int(d%time.Hour/time.Minute)) + " min"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days"
}

// BusyNow is the busy slots of the current minute, as "3.2 of 8".
func (w WorkerProcess) BusyNow() string {
	return strconv.Itoa(len(w.Active)) + " of " + strconv.Itoa(w.Concurrency)
}

// Sparkline is the geometry of a busy-slots chart: one bar per minute, scaled to the
// process's concurrency.
type Sparkline struct {
	W, H float64
	Bars []SparkBar
	Max  int
}

// SparkBar is one minute's bar.
type SparkBar struct {
	X, Y, W, H float64
	Title      string
}

// BusySparkline draws busy (mean busy slots per minute, oldest first) over w × h.
func BusySparkline(busy []float64, concurrency int, w, h float64) Sparkline {
	s := Sparkline{W: w, H: h, Max: max(concurrency, 1)}
	n := float64(max(len(busy), 1))
	bw := w / n
	for i, b := range busy {
		bh := h * min(b, float64(s.Max)) / float64(s.Max)
		ago := len(busy) - 1 - i
		when := "this minute"
		if ago > 0 {
			when = strconv.Itoa(ago) + " min ago"
		}
		s.Bars = append(s.Bars, SparkBar{X: float64(i)*bw + 0.5, Y: h - bh, W: max(bw-1, 1), H: bh,
			Title: when + ": " + strconv.FormatFloat(b, 'f', 1, 64) + " busy slots"})
	}
	return s
}

// BusyLine says how busy a worker was: this minute so far, and over the minutes charted.
func BusyLine(busy []float64, concurrency int) string {
	if len(busy) == 0 {
		return "no attempt recorded"
	}
	sum := 0.0
	for _, b := range busy {
		sum += b
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	return f(busy[len(busy)-1]) + " of " + strconv.Itoa(concurrency) + " slots busy on average this minute so far, " +
		f(sum/float64(len(busy))) + " over the last " + strconv.Itoa(len(busy)) + " minutes"
}

// QueuesLine is the queues, comma-separated.
func QueuesLine(q []string) string { return strings.Join(q, ", ") }
