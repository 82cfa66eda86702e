package templates

import (
	"context"
	"io"
	"math"
	"strconv"

	"github.com/a-h/templ"

	"github.com/taskrace/taskrace/app"
)

// A big run's timeline is thousands of bars, drawn on its page and sent again over its
// stream as its attempts start and end: they are written by hand, not by templ, for speed.
// Nothing in them needs escaping: run IDs are URL-safe, lane IDs base 36, the rest numbers
// and fixed words.

// BarEl is one attempt on a lane: a running one as long as it has run so far (the page
// grows it), an ended one at least a sliver wide.
func BarEl(runID string, a *app.Attempt, scale float64) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		_, err := w.Write(AppendBar(make([]byte, 0, 400), runID, TrackID(runID, *a.Worker), a, scale))
		return err
	})
}

// LaneBars are the bars of one lane's attempts, on the track of worker slot w.
func LaneBars(runID string, w app.Worker, attempts []*app.Attempt, scale float64) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, out io.Writer) error {
		track := TrackID(runID, w)
		b := make([]byte, 0, 360*len(attempts))
		for _, a := range attempts {
			b = AppendBar(b, runID, track, a, scale)
		}
		_, err := out.Write(b)
		return err
	})
}

// AppendBar appends BarEl's HTML to b; track is the ID of its lane's track.
func AppendBar(b []byte, runID, track string, a *app.Attempt, scale float64) []byte {
	b = append(b, `<rect id="`...)
	b = appendBarID(b, runID, a)
	b = append(b, `" data-append-to="`...)
	b = append(b, track...)
	b = append(b, `" x="`...)
	b = appendF(b, BarX(a, scale))
	b = append(b, `" y="0.12" width="`...)
	b = appendF(b, BarWidth(a, scale))
	b = append(b, `" height="0.76" class="`...)
	b = append(b, GanttClass(a.Outcome)...)
	b = append(b, `" data-index="`...)
	b = strconv.AppendInt(b, int64(a.Index), 10)
	b = append(b, `" data-attempt="`...)
	b = strconv.AppendInt(b, int64(a.Number), 10)
	b = append(b, `" data-start-ms="`...)
	b = appendF(b, a.StartMS)
	b = append(b, `" data-dur-ms="`...)
	b = appendF(b, a.DurMS)
	b = append(b, `" data-state="`...)
	b = append(b, a.Outcome...)
	b = append(b, '"')
	if a.Retry {
		b = append(b, ` data-retry`...)
	}
	b = append(b, `><title>Task `...)
	b = strconv.AppendInt(b, int64(a.Index), 10)
	b = append(b, `, attempt `...)
	b = strconv.AppendInt(b, int64(a.Number), 10)
	b = append(b, `: `...)
	b = append(b, AttemptWord(a)...)
	return append(b, `</title></rect>`...)
}

// BarData is one attempt's bar as a big run's stream sends it: the bar's ID and, in
// data-bar, its lane (the part of its track's ID after the run's), outcome, x and width,
// then its start and duration when they differ from x and width; data-retry for a failed
// attempt that is tried again. The page draws from it the bar BarEl draws (static/js/live.js,
// applyBar), in a quarter of the bytes.
func BarData(runID string, a *app.Attempt, scale float64) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		_, err := w.Write(AppendBarData(make([]byte, 0, 128), runID, a, scale))
		return err
	})
}

// AppendBarData appends BarData's HTML to b.
func AppendBarData(b []byte, runID string, a *app.Attempt, scale float64) []byte {
	b = append(b, `<i id="`...)
	b = appendBarID(b, runID, a)
	b = append(b, `" data-bar="`...)
	b = append(b, TrackID(runID, *a.Worker)[len("track-")+len(runID)+1:]...)
	b = append(b, ' ')
	b = append(b, a.Outcome...)
	x, width := round3(BarX(a, scale)), round3(BarWidth(a, scale))
	b = append(b, ' ')
	b = appendF(b, x)
	b = append(b, ' ')
	b = appendF(b, width)
	if start, dur := round3(a.StartMS), round3(a.DurMS); start != x || dur != width {
		b = append(b, ' ')
		b = appendF(b, start)
		b = append(b, ' ')
		b = appendF(b, dur)
	}
	b = append(b, '"')
	if a.Retry {
		b = append(b, ` data-retry`...)
	}
	return append(b, `></i>`...)
}

// appendBarID appends BarID(runID, a.Index, a.Number) to b.
func appendBarID(b []byte, runID string, a *app.Attempt) []byte {
	b = append(b, "bar-"...)
	b = append(b, runID...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(a.Index), 10)
	b = append(b, '-')
	return strconv.AppendInt(b, int64(a.Number), 10)
}

// round3 rounds to the microsecond, as F writes numbers.
func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// appendF appends F(f) to b.
func appendF(b []byte, f float64) []byte { return strconv.AppendFloat(b, round3(f), 'f', -1, 64) }
