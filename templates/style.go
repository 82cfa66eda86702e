package templates

import "github.com/taskrace/taskrace/app"

// Class names are spelled out in full here so that Tailwind, which scans these files,
// keeps them in the built CSS. Every state has an icon and a word besides its colour.

// TaskStateOrphaned is how a task whose worker process is gone reads on the page; it is
// not a state of the domain, which still has it running until asynq retries it.
const TaskStateOrphaned = "orphaned"

// StateIcon is a glyph per task state or attempt outcome, so state is never told by
// colour alone.
func StateIcon(state string) string {
	switch state {
	case app.TaskStateQueued:
		return "…"
	case app.TaskStateRunning:
		return "▶"
	case app.TaskStateDone:
		return "✓"
	case app.TaskStateFailed:
		return "✕"
	case app.TaskStateRetrying:
		return "↻"
	case app.TaskStateCanceled:
		return "⊘"
	case TaskStateOrphaned, app.AttemptLost:
		return "⚠"
	}
	return "•"
}

// RunStatusIcon is a glyph per run status.
func RunStatusIcon(status string) string {
	switch status {
	case app.StatusRunning:
		return "▶"
	case app.StatusFinished:
		return "✓"
	case app.StatusCanceled:
		return "⊘"
	}
	return "!"
}

// RunStatusBadge is the badge class of a run status.
func RunStatusBadge(status string) string {
	switch status {
	case app.StatusRunning:
		return "badge badge-running"
	case app.StatusFinished:
		return "badge badge-done"
	case app.StatusCanceled:
		return "badge badge-canceled"
	}
	return "badge badge-failed"
}

// StateBadgeClass is the badge class of a task state.
func StateBadgeClass(state string) string {
	switch state {
	case app.TaskStateRunning:
		return "badge badge-running"
	case app.TaskStateDone:
		return "badge badge-done"
	case app.TaskStateFailed:
		return "badge badge-failed"
	case app.TaskStateRetrying:
		return "badge badge-retrying"
	case app.TaskStateCanceled:
		return "badge badge-canceled"
	case TaskStateOrphaned, app.AttemptLost:
		return "badge badge-orphaned"
	}
	return "badge badge-queued"
}

// RowBarClass is the class of a task row's bar.
func RowBarClass(state string) string {
	switch state {
	case app.TaskStateRunning:
		return "rowbar h-2 rounded bar-running"
	case app.TaskStateDone:
		return "rowbar h-2 rounded bar-done"
	case app.TaskStateFailed:
		return "rowbar h-2 rounded bar-failed"
	case app.TaskStateRetrying:
		return "rowbar h-2 rounded bar-retrying"
	case app.TaskStateCanceled:
		return "rowbar h-2 rounded bar-canceled"
	case TaskStateOrphaned:
		return "rowbar h-2 rounded bar-orphaned"
	}
	return "rowbar h-2 rounded bar-queued"
}

// GanttClass is the class of an attempt's bar on the timeline, by its outcome. A failed
// attempt has a colour and a pattern of its own, a canceled one a dashed outline, a lost
// one a double outline.
func GanttClass(outcome string) string {
	switch outcome {
	case app.AttemptRunning:
		return "gbar gbar-running"
	case app.AttemptFailed:
		return "gbar gbar-failed"
	case app.AttemptCanceled:
		return "gbar gbar-canceled"
	case app.AttemptLost:
		return "gbar gbar-lost"
	}
	return "gbar gbar-done"
}

// ModeDotClass is the colour dot of a mode.
func ModeDotClass(m app.Mode) string {
	switch m {
	case app.Sequential:
		return "inline-block h-2.5 w-2.5 rounded-full bg-seq-500"
	case app.Concurrent:
		return "inline-block h-2.5 w-2.5 rounded-full bg-conc-500"
	}
	return "inline-block h-2.5 w-2.5 rounded-full bg-dist-500"
}

// ModeFillClass is the fill of a mode's bar in a chart.
func ModeFillClass(m app.Mode) string {
	switch m {
	case app.Sequential:
		return "fill-seq-600 dark:fill-seq-400"
	case app.Concurrent:
		return "fill-conc-600 dark:fill-conc-400"
	}
	return "fill-dist-600 dark:fill-dist-400"
}
