package app

// Redis keys. Every key of a run shares its expiry: the record, its event stream and the set
// of its ended task indexes.
const (
	keyPrefix   = "taskrace:"
	keyRuns     = keyPrefix + "runs"   // sorted set of run IDs, all scored 0: ordered by ID, which is by time
	keyActive   = keyPrefix + "active" // set of IDs of running runs
	keyCancel   = keyPrefix + "cancel" // pub/sub channel carrying IDs of canceled runs
	procTTLSecs = 10
)

func keyRun(id string) string      { return keyPrefix + "run:" + id }
func keyEvents(id string) string   { return keyPrefix + "run:" + id + ":events" }
func keyDone(id string) string     { return keyPrefix + "run:" + id + ":done" }
func keyProc(procID string) string { return keyPrefix + "proc:" + procID }
func keyWake(procID string) string { return keyPrefix + "wake:" + procID }
func runKeys(id string) []string   { return []string{keyRun(id), keyEvents(id), keyDone(id), keyActive} }
