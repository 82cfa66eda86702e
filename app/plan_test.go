package app

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestPlanValidate(t *testing.T) {
	limits := Limits{MaxTasks: 100, MaxDelay: 5 * time.Second, MaxParallelism: 10, Allowlist: []string{"http://example.test:8000"}}
	ok := Plan{Mode: Concurrent, Tasks: 10, DelayMS: 3000, Parallelism: 5, Target: BuiltinTarget}
	tests := []struct {
		name  string
		edit  func(p *Plan)
		field string // "" when valid
		says  string
	}{
		{"valid", func(p *Plan) {}, "", ""},
		{"allowlisted target", func(p *Plan) { p.Target = "http://example.test:8000" }, "", ""},
		{"zero delay", func(p *Plan) { p.DelayMS = 0 }, "", ""},
		{"max tasks", func(p *Plan) { p.Tasks = 100 }, "", ""},
		{"unknown mode", func(p *Plan) { p.Mode = "parallel" }, "mode", "sequential, concurrent, distributed"},
		{"no tasks", func(p *Plan) { p.Tasks = 0 }, "tasks", "between 1 and 100; got 0"},
		{"negative tasks", func(p *Plan) { p.Tasks = -3 }, "tasks", "got -3"},
		{"too many tasks", func(p *Plan) { p.Tasks = 101 }, "tasks", "got 101"},
		{"negative delay", func(p *Plan) { p.DelayMS = -1 }, "delay_ms", "between 0 and 5000; got -1"},
		{"delay too long", func(p *Plan) { p.DelayMS = 5001 }, "delay_ms", "got 5001"},
		{"parallelism zero", func(p *Plan) { p.Parallelism = 0 }, "parallelism", "between 1 and 10"},
		{"parallelism too high", func(p *Plan) { p.Parallelism = 11 }, "parallelism", "got 11"},
		{"failure rate above 1", func(p *Plan) { p.FailureRate = 1.5 }, "failure_rate", "between 0 and 1"},
		{"failure rate NaN", func(p *Plan) { p.FailureRate = math.NaN() }, "failure_rate", "between 0 and 1"},
		{"target not allowed", func(p *Plan) { p.Target = "http://169.254.169.254" }, "target", "builtin, http://example.test:8000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.edit(&p)
			err := p.Validate(limits)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			e, isErr := err.(*Error)
			if !isErr || e.Code != EInvalid || e.Field != tt.field {
				t.Fatalf("Validate() = %#v, want invalid %s", err, tt.field)
			}
			if !strings.Contains(e.Message, tt.says) {
				t.Errorf("message %q does not say %q", e.Message, tt.says)
			}
		})
	}
}

func TestPlanNormalize(t *testing.T) {
	p := Plan{Mode: Sequential, Tasks: 3, Parallelism: 7}.Normalize()
	if p.Parallelism != 1 || p.Target != BuiltinTarget {
		t.Errorf("sequential plan normalized to %+v, want parallelism 1 and target builtin", p)
	}
	p = Plan{Mode: Concurrent, Tasks: 3, Target: "http://a.test/"}.Normalize()
	if p.Parallelism != 5 || p.Target != "http://a.test" {
		t.Errorf("concurrent plan normalized to %+v, want parallelism 5, target without slash", p)
	}
}

func TestIdealAndSummary(t *testing.T) {
	const none = -1.0 // no speed-up or reduction to show
	tests := []struct {
		name             string
		tasks, par       int
		delayMS          int64
		wallMS, baseline float64 // baseline 0: no sequential run to compare with
		ideal            float64
		efficiency       float64
		speedUp          float64
		reduction        float64
	}{
		{"seed sequential", 10, 1, 3000, 30050, 0, 30000, 30000.0 / 30050, 30000.0 / 30050, (1 - 30050.0/30000) * 100},
		{"seed celery 5", 10, 5, 3000, 6030, 30050, 6000, 6000.0 / 6030, 30050.0 / 6030, (1 - 6030.0/30050) * 100},
		{"uneven rounds", 11, 5, 1000, 3100, 0, 3000, 3000.0 / 3100, 11000.0 / 3100, (1 - 3100.0/11000) * 100},
		{"faster than ideal clamps", 10, 10, 3000, 2900, 0, 3000, 1, 30000.0 / 2900, (1 - 2900.0/30000) * 100},
		{"zero delay", 100, 5, 0, 50, 0, 0, 0, none, none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Plan{Mode: Distributed, Tasks: tt.tasks, Parallelism: tt.par, DelayMS: tt.delayMS}
			if got := p.IdealMS(); got != tt.ideal {
				t.Errorf("IdealMS() = %v, want %v", got, tt.ideal)
			}
			var baseline *Run
			if tt.baseline > 0 {
				bp := p
				bp.Mode, bp.Parallelism = Sequential, 1
				baseline = &Run{ID: "01AAAAAAAAAAAAAAAAAAAAAAAA", Plan: bp, Status: StatusFinished, WallMS: &tt.baseline}
			}
			r := &Run{ID: "01BBBBBBBBBBBBBBBBBBBBBBBB", Plan: p, Status: StatusFinished, WallMS: &tt.wallMS, IdealMS: tt.ideal}
			s := Summarize(r, baseline)
			if s.Efficiency == nil || !near(*s.Efficiency, tt.efficiency) {
				t.Errorf("efficiency = %v, want %v", s.Efficiency, tt.efficiency)
			}
			if !nearPtr(s.SpeedUp, tt.speedUp, none) {
				t.Errorf("speed-up = %v, want %v", s.SpeedUp, tt.speedUp)
			}
			if !nearPtr(s.ReductionPct, tt.reduction, none) {
				t.Errorf("reduction = %v, want %v", s.ReductionPct, tt.reduction)
			}
			if (s.Baseline != "") != (baseline != nil) || r.SpeedUp != s.SpeedUp || r.Baseline != s.Baseline {
				t.Errorf("baseline %q, run's %q speed-up %v; want the summary's", s.Baseline, r.Baseline, r.SpeedUp)
			}
		})
	}
}

// nearPtr reports whether f is near want, or nil when want is none.
func nearPtr(f *float64, want, none float64) bool {
	if want == none {
		return f == nil
	}
	return f != nil && near(*f, want)
}

func TestFailsFirstAttemptIsStableAndProportional(t *testing.T) {
	id := NewRunID()
	n := 0
	for i := range 10_000 {
		a, b := FailsFirstAttempt(id, i, 0.3), FailsFirstAttempt(id, i, 0.3)
		if a != b {
			t.Fatalf("task %d: not stable", i)
		}
		if a {
			n++
		}
	}
	if n < 2700 || n > 3300 {
		t.Errorf("%d of 10000 fail at rate 0.3, want about 3000", n)
	}
	if FailsFirstAttempt(id, 1, 0) {
		t.Error("rate 0 must fail nothing")
	}
}

func TestIDs(t *testing.T) {
	id := NewRunID()
	if strings.Contains(id, "-") || !ValidRunID(id) {
		t.Fatalf("run ID %q has a '-' or is invalid", id)
	}
	if tid := TaskID(id, 42); strings.Contains(tid, "-") || tid != id+".42" {
		t.Errorf("TaskID = %q: asynqmon would cut it at its '-'", tid)
	}
	run, idx, ok := ParseTaskID(TaskID(id, 42))
	if !ok || run != id || idx != 42 {
		t.Errorf("ParseTaskID(TaskID) = %q, %d, %v", run, idx, ok)
	}
	// The older form, in links shared before, still reads.
	if run, idx, ok := ParseTaskID(id + "-7"); !ok || run != id || idx != 7 {
		t.Errorf("ParseTaskID(old form) = %q, %d, %v", run, idx, ok)
	}
	for _, bad := range []string{"", "x-1", id, id + "-", id + ".", id + "-01", id + ".01", id + "--1", id + "..1", id + "-a",
		id + "_1", id + ".-1", "../" + id + "-1", id[:25] + "!.1"} {
		if _, _, ok := ParseTaskID(bad); ok {
			t.Errorf("ParseTaskID(%q) accepted", bad)
		}
	}
	if CompareIDs("10-0", "9-5") != 1 || CompareIDs("5-2", "5-10") != -1 || CompareIDs("7-7", "7-7") != 0 ||
		CompareIDs("9-10", "10-1") != -1 || CompareIDs("007-01", "7-1") != 0 || CompareIDs("0-0", "0-1") != -1 {
		t.Error("CompareIDs does not order numerically")
	}
}

func TestParseBaseURL(t *testing.T) {
	for in, want := range map[string]string{"http://a.test": "http://a.test", "https://a.test:8443/": "https://a.test:8443"} {
		if got, err := ParseBaseURL(in); err != nil || got != want {
			t.Errorf("ParseBaseURL(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"a.test", "ftp://a.test", "http://a.test/x", "http://u:p@a.test", "http://a.test?q=1", "http://"} {
		if _, err := ParseBaseURL(bad); err == nil {
			t.Errorf("ParseBaseURL(%q) accepted", bad)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
