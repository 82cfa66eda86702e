package web

import (
	"html"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/templates"
)

// A launch from a presented page lands on a presented page; one from a normal page does
// not; a refused launch shows the dashboard again, still presented, with the reason.
func TestLaunchKeepsPresentationMode(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	plan := url.Values{"tasks": {"2"}, "delay": {"0.01"}, "parallelism": {"2"}, "target": {app.BuiltinTarget}}
	with := func(k, v string) url.Values {
		c := url.Values{}
		for key, vs := range plan {
			c[key] = vs
		}
		c.Set(k, v)
		return c
	}
	cases := []struct {
		name, path string
		form       url.Values
		want       *regexp.Regexp
	}{
		{"a run, presented", "/runs?present=1", with("mode", "distributed"), regexp.MustCompile(`^/runs/[0-9A-Z]{26}\?present=1$`)},
		{"a run", "/runs", with("mode", "concurrent"), regexp.MustCompile(`^/runs/[0-9A-Z]{26}$`)},
		{"a run, present spelled otherwise", "/runs?present=yes", with("mode", "sequential"), regexp.MustCompile(`^/runs/[0-9A-Z]{26}$`)},
		{"a race, presented", "/race?present=1", plan, regexp.MustCompile(`^/compare\?runs=[0-9A-Z]{26},[0-9A-Z]{26}&present=1$`)},
		{"a race", "/race", plan, regexp.MustCompile(`^/compare\?runs=[0-9A-Z]{26},[0-9A-Z]{26}$`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := h.postForm(c.path, c.form)
			if loc := res.header.Get("Location"); res.status != http.StatusSeeOther || !c.want.MatchString(loc) {
				t.Errorf("POST %s: %d to %q, want 303 to %s", c.path, res.status, loc, c.want)
			}
		})
	}
	t.Run("refused, presented", func(t *testing.T) {
		res := h.postForm("/runs?present=1", with("tasks", "zero"))
		page := string(res.body)
		if res.status != http.StatusUnprocessableEntity && res.status != http.StatusBadRequest {
			t.Errorf("a bad launch answered %d", res.status)
		}
		if !strings.Contains(page, `class="min-h-screen present"`) || !strings.Contains(page, "data-error") ||
			!strings.Contains(page, `action="/runs?present=1"`) {
			t.Errorf("a bad launch from a presented dashboard: want it presented again, with the error and its forms presented: %.300s", page)
		}
	})
}

// A presented run page offers Run again in presentation mode, Replay once ended, and Exit;
// a normal one offers no such bar.
func TestPresentBar(t *testing.T) {
	t.Parallel()
	h := start(t)
	r := h.launch(map[string]any{"mode": "sequential", "tasks": 2, "delay_ms": 10})
	h.follow(r.ID)
	page := string(h.get("/runs/" + r.ID + "?present=1").body)
	bar := regexp.MustCompile(`(?s)<nav aria-label="Presentation controls".*?</nav>`).FindString(page)
	for _, want := range []string{`action="/runs?present=1"`, `data-run-again`, `data-replay="4"`, `href="/runs/` + r.ID + `"`} {
		if !strings.Contains(bar, want) {
			t.Errorf("the presented page's bar lacks %s: %s", want, bar)
		}
	}
	if regexp.MustCompile(`<button[^>]*data-replay="4"[^>]* hidden`).MatchString(bar) {
		t.Errorf("an ended run's Replay is hidden: %s", bar)
	}
	if plain := string(h.get("/runs/" + r.ID).body); strings.Contains(plain, "data-present-bar") {
		t.Error("a run page out of presentation mode has the presentation bar")
	}
	// Exit leads to the same view out of presentation mode, however the IDs were spelled.
	o := h.launch(map[string]any{"mode": "concurrent", "tasks": 2, "delay_ms": 10, "parallelism": 2})
	h.follow(o.ID)
	cmp := string(h.get("/compare?runs=" + url.QueryEscape(" "+r.ID+" , "+o.ID) + "&present=1").body)
	if want := `href="/compare?runs=` + r.ID + `,` + o.ID + `" data-exit-present`; !strings.Contains(cmp, want) {
		t.Errorf("the presented compare page's Exit: want %s", want)
	}
	if strings.Contains(cmp, "Race again") {
		t.Error("a compare of a sequential and a concurrent run offers Race again")
	}
}

// GET /runs/{id}/replay gives an ended run's moments: status, progress and summary as its
// projection has them at each instant before the end. A live run has none yet; an unknown
// run is not found.
func TestReplayFrames(t *testing.T) {
	t.Parallel()
	h := start(t, withWorker())
	r := h.launch(map[string]any{"mode": "concurrent", "tasks": 4, "delay_ms": 20, "parallelism": 2})
	h.follow(r.ID)
	res := h.get("/runs/" + r.ID + "/replay")
	if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
		t.Fatalf("replay of an ended run: %d %s", res.status, res.header.Get("Content-Type"))
	}
	body := string(res.body)
	frames := regexp.MustCompile(`<template data-at-ms="([0-9.]+)">`).FindAllStringSubmatch(body, -1)
	if len(frames) < 2 || frames[0][1] != "0" {
		t.Fatalf("want frames from 0 on: %v", frames)
	}
	if n := strings.Count(body, `id="status-`+r.ID+`"`); n != 1 || !strings.Contains(body, `data-status="running"`) {
		t.Errorf("want one status, running: %d in %.400s", n, body)
	}
	if !strings.Contains(body, `id="summary-`+r.ID+`"`) || !strings.Contains(body, "Results appear when the run ends") {
		t.Errorf("want the summary of a running run: %.400s", body)
	}
	// Each progress shown is the projection's at its instant, and the count only grows.
	evs, err := h.core.Log.ReadAll(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := h.core.Runs.Get(t.Context(), r.ID)
	lines := regexp.MustCompile(`<template data-at-ms="([0-9.]+)">.*?<p class="mt-1 text-sm" aria-live="polite" aria-atomic="true">([^<]*)</p>`).FindAllStringSubmatch(body, -1)
	if len(lines) != len(frames) {
		t.Fatalf("%d frames, %d progress lines", len(frames), len(lines))
	}
	seen := map[string]bool{}
	for _, m := range ms(t, lines) {
		p := app.ProjectAt(rec, evs, rec.CreatedAt.Add(m.at), nil)
		if want := templates.ProgressLine(p.Run, p.Summary); m.line != want {
			t.Errorf("at %s the frame says %q, the projection %q", m.at, m.line, want)
		}
		if seen[m.line] {
			t.Errorf("the progress %q is sent twice", m.line)
		}
		seen[m.line] = true
	}

	// A distributed run's frames carry its workers tally as of each instant too.
	d := h.launch(map[string]any{"mode": "distributed", "tasks": 6, "delay_ms": 20})
	h.follow(d.ID)
	drec, _ := h.core.Runs.Get(t.Context(), d.ID)
	devs, err := h.core.Log.ReadAll(t.Context(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	dbody := string(h.get("/runs/" + d.ID + "/replay").body)
	frameAt := regexp.MustCompile(`^([0-9.]+)">`)
	procs := regexp.MustCompile(`<div id="procs-` + d.ID + `" data-procs>(.*?)</div>`)
	tallies := 0
	for _, chunk := range strings.Split(dbody, `<template data-at-ms="`)[1:] {
		at, tally := frameAt.FindStringSubmatch(chunk), procs.FindStringSubmatch(chunk)
		if at == nil || tally == nil {
			continue
		}
		tallies++
		f, _ := strconv.ParseFloat(at[1], 64)
		p := app.ProjectAt(drec, devs, drec.CreatedAt.Add(offset(f)), nil)
		taken := 0
		for _, pr := range p.Processes() {
			taken += pr.Tasks
		}
		got := 0
		for _, n := range regexp.MustCompile(`data-proc-tasks>(\d+)<`).FindAllStringSubmatch(tally[1], -1) {
			k, _ := strconv.Atoi(n[1])
			got += k
		}
		if got != taken {
			t.Errorf("at %s ms the replay's tally counts %d tasks taken, the projection %d", at[1], got, taken)
		}
	}
	if tallies < 2 {
		t.Errorf("a distributed run's replay has %d tallies: %.600s", tallies, dbody)
	}

	live := h.launch(map[string]any{"mode": "sequential", "tasks": 1, "delay_ms": 30_000})
	if res := h.get("/runs/" + live.ID + "/replay"); res.status != http.StatusConflict {
		t.Errorf("replay of a live run: %d, want 409", res.status)
	}
	if _, err := h.core.Launcher.Cancel(t.Context(), live.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"01ARZ3NDEKTSV4RRFFQ69G5FAV", "not-a-run", "%2e%2e"} {
		if res := h.get("/runs/" + id + "/replay"); res.status != http.StatusNotFound {
			t.Errorf("replay of %q: %d, want 404", id, res.status)
		}
	}
}

type frameLine struct {
	at   time.Duration
	line string
}

// ms reads the instants and progress lines of the frames.
func ms(t *testing.T, lines [][]string) []frameLine {
	t.Helper()
	var out []frameLine
	for _, l := range lines {
		f, err := strconv.ParseFloat(l[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, frameLine{offset(f), html.UnescapeString(l[2])})
	}
	return out
}

// offset is the instant a frame's data-at-ms gives: milliseconds with microseconds, as the
// events' times have them (a float's truncation would land a microsecond early).
func offset(ms float64) time.Duration {
	return time.Duration(math.Round(ms*1000)) * time.Microsecond
}
