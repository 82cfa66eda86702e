package live

import "strconv"

// DefaultPrefix starts every Redis key the package uses.
const DefaultPrefix = "taskrace:live:"

// keys are the Redis keys under one prefix: one capped stream of facts, one hash of
// aggregates per minute (kept StatsRetention), and one hash of totals since the start,
// both by task type and queue. The hashes of the layout by type alone were named
// stats:<minute> and totals; they are not read.
type keys struct{ prefix string }

func (k keys) facts() string  { return k.prefix + "facts" }
func (k keys) totals() string { return k.prefix + "queue-totals" }
func (k keys) minute(unixMinute int64) string {
	return k.prefix + "queue-stats:" + strconv.FormatInt(unixMinute, 10)
}
