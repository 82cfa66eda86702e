package app

import (
	"crypto/rand"
	"strconv"

	"github.com/oklog/ulid/v2"
)

// NewRunID returns a new run ID: a ULID, URL-safe, time-sortable and free of '-'.
func NewRunID() string { return ulid.MustNew(ulid.Now(), rand.Reader).String() }

// TaskSeparator joins a run ID and a task index into a task ID. It is not '-': asynqmon shows
// an ID only up to its first '-', which would show every task of a run as the run.
const TaskSeparator = "."

// TaskID returns the ID of task index of run runID: "<run ID>.<index>".
func TaskID(runID string, index int) string { return runID + TaskSeparator + strconv.Itoa(index) }

// ParseTaskID splits a task ID into its run ID and index. The older form "<run ID>-<index>",
// which links shared before keep, is read too.
func ParseTaskID(id string) (runID string, index int, ok bool) {
	if len(id) <= ulid.EncodedSize || (id[ulid.EncodedSize] != TaskSeparator[0] && id[ulid.EncodedSize] != '-') {
		return "", 0, false
	}
	runID, idx := id[:ulid.EncodedSize], id[ulid.EncodedSize+1:]
	if !ValidRunID(runID) {
		return "", 0, false
	}
	index, err := strconv.Atoi(idx)
	if err != nil || index < 0 || strconv.Itoa(index) != idx {
		return "", 0, false
	}
	return runID, index, true
}

// ValidRunID reports whether id has the form of a run ID.
func ValidRunID(id string) bool {
	_, err := ulid.ParseStrict(id)
	return err == nil && len(id) == ulid.EncodedSize
}
