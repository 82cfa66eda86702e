package app

import (
	"fmt"
	"testing"
)

// The kept projections stay within their bounds, the least recently read run leaving first,
// and a run too big to keep is never kept.
func TestKeptProjectionsAreBounded(t *testing.T) {
	ps := newProjections(nil)
	ps.maxTasks, ps.maxRuns = 100, 3
	run := func(i, tasks int) *Run { return &Run{ID: fmt.Sprintf("run%02d", i), Plan: Plan{Tasks: tasks}} }
	kept := func() string {
		var ids []string
		for el := ps.order.Front(); el != nil; el = el.Next() {
			ids = append(ids, el.Value.(*keptRun).id)
		}
		return fmt.Sprint(ids)
	}
	steps := []struct {
		run, tasks int
		want       string
	}{
		{1, 40, "[run01]"},
		{2, 40, "[run02 run01]"},
		{1, 40, "[run01 run02]"},        // read again: most recent
		{3, 40, "[run03 run01]"},        // 120 tasks would be too many: run02 leaves
		{4, 10, "[run04 run03 run01]"},  //
		{5, 10, "[run05 run04 run03]"},  // a fourth run is one too many
		{6, 101, "[run05 run04 run03]"}, // too big to keep
		{7, 100, "[run07]"},
	}
	for _, s := range steps {
		k := ps.keep(run(s.run, s.tasks))
		if got := kept(); got != s.want {
			t.Fatalf("after reading run%02d: kept %s, want %s", s.run, got, s.want)
		}
		if k.id != fmt.Sprintf("run%02d", s.run) {
			t.Fatalf("keep(run%02d) gave %s", s.run, k.id)
		}
		runs, tasks := ps.Held()
		if runs > ps.maxRuns || tasks > ps.maxTasks {
			t.Fatalf("%d runs of %d tasks kept, over the bounds", runs, tasks)
		}
	}
	ps.Forget("run07")
	if runs, tasks := ps.Held(); runs != 0 || tasks != 0 {
		t.Errorf("%d runs of %d tasks kept after forgetting the last, want none", runs, tasks)
	}
	ps.Forget("run07") // twice is harmless
}
