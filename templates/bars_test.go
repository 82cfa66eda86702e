package templates

import (
	"bytes"
	"context"
	"testing"

	"github.com/taskrace/taskrace/app"
)

// A bar, as BarEl draws it and as a big run's stream sends it (BarData): the attributes the
// page, its clock and the replay read, and the title a screen reader says.
func TestBars(t *testing.T) {
	const run = "01M8T3ZE1YES42TFRY6J4Y2FES"
	w := &app.Worker{Host: "vm", PID: 17773, Slot: 3}
	track := TrackID(run, *w)
	lane := track[len("track-"+run+"-"):]
	for _, tt := range []struct {
		name      string
		a         app.Attempt
		scale     float64
		bar, data string
	}{
		{
			name:  "done",
			a:     app.Attempt{Index: 1, Number: 1, Worker: w, Outcome: app.AttemptDone, StartMS: 56.9024, DurMS: 102.7271},
			scale: 5200,
			bar:   `<rect id="bar-` + run + `-1-1" data-append-to="` + track + `" x="56.902" y="0.12" width="102.727" height="0.76" class="gbar gbar-done" data-index="1" data-attempt="1" data-start-ms="56.902" data-dur-ms="102.727" data-state="done"><title>Task 1, attempt 1: done</title></rect>`,
			data:  `<i id="bar-` + run + `-1-1" data-bar="` + lane + ` done 56.902 102.727"></i>`,
		},
		{
			// Drawn wider than it lasted, ending where it ended: the data says both.
			name:  "failed and retried, widened",
			a:     app.Attempt{Index: 4200, Number: 2, Worker: w, Outcome: app.AttemptFailed, Retry: true, StartMS: 100, DurMS: 1},
			scale: 5000,
			bar:   `<rect id="bar-` + run + `-4200-2" data-append-to="` + track + `" x="71" y="0.12" width="30" height="0.76" class="gbar gbar-failed" data-index="4200" data-attempt="2" data-start-ms="100" data-dur-ms="1" data-state="failed" data-retry><title>Task 4200, attempt 2: failed, retried</title></rect>`,
			data:  `<i id="bar-` + run + `-4200-2" data-bar="` + lane + ` failed 71 30 100 1" data-retry></i>`,
		},
		{
			name:  "running",
			a:     app.Attempt{Index: 7, Number: 1, Worker: w, Outcome: app.AttemptRunning, StartMS: 2712.6764, DurMS: 0},
			scale: 5200,
			bar:   `<rect id="bar-` + run + `-7-1" data-append-to="` + track + `" x="2712.676" y="0.12" width="0" height="0.76" class="gbar gbar-running" data-index="7" data-attempt="1" data-start-ms="2712.676" data-dur-ms="0" data-state="running"><title>Task 7, attempt 1: running</title></rect>`,
			data:  `<i id="bar-` + run + `-7-1" data-bar="` + lane + ` running 2712.676 0"></i>`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := BarEl(run, &tt.a, tt.scale).Render(context.Background(), &b); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.bar {
				t.Errorf("bar\n%s\nwant\n%s", b.String(), tt.bar)
			}
			b.Reset()
			if err := BarData(run, &tt.a, tt.scale).Render(context.Background(), &b); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.data {
				t.Errorf("data\n%s\nwant\n%s", b.String(), tt.data)
			}
		})
	}
}
