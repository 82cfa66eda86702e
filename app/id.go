package app

import (
	"crypto/rand"
	"strconv"
	"strings"

	"github.com/oklog/ulid/v2"
)

// NewRunID returns a new run ID: a ULID, URL-safe, time-sortable and free of '-'.
func NewRunID() string { return ulid.MustNew(ulid.Now(), rand.Reader).String() }

// TaskID returns the ID of task index of run runID.
func TaskID(runID string, index int) string { return runID + "-" + strconv.Itoa(index) }

// ParseTaskID splits a task ID into its run ID and index.
func ParseTaskID(id string) (runID string, index int, ok bool) {
	runID, idx, found := strings.Cut(id, "-")
	if !found || !ValidRunID(runID) {
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
