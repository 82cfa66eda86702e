package wake

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The asynq scripts the hooks act on, by the SHA-1 of their source in asynq v0.26.0, with
// the index among the script's keys of the queue's pending list, which names the queue.
// TestAsynqScripts checks them against the asynq this module builds with.
const (
	dequeueSHA       = "a8153319360adc71cdc370107f8ab9786f204765" // pops a pending task; nil when there is none
	enqueueSHA       = "98d28b42650870a743450ffda9791e9e19c6991b" // Client.Enqueue; 1 when enqueued
	enqueueUniqueSHA = "297b3f9abfd963a3316434ef9d88fc5bf8a7ddc3" // Client.Enqueue with Unique; 1 when enqueued
	forwardSHA       = "522b1a6ae66fe79ea2f24a9af58798ab71879035" // the forwarder; how many tasks it moved
	requeueSHA       = "f34cbfd11d1fc8019af55b50c447fc68eb8b29e5" // an active task back to pending, on shutdown
)

type scriptKind int

const (
	otherScript scriptKind = iota
	dequeueScript
	enqueueScript
	forwardScript
	requeueScript
)

// pendingKeyAt is, for each script, the index among its keys of the queue's pending list.
var pendingKeyAt = map[string]struct {
	kind scriptKind
	key  int
}{
	dequeueSHA:       {dequeueScript, 0},
	enqueueSHA:       {enqueueScript, 1},
	enqueueUniqueSHA: {enqueueScript, 2},
	forwardSHA:       {forwardScript, 1},
	requeueSHA:       {requeueScript, 2},
}

// sourceLens are the lengths of the scripts' sources, so that an EVAL of some other script
// is told apart without hashing it.
var sourceLens = map[int]bool{328: true, 228: true, 362: true, 572: true, 309: true}

// script is what one command is, when it is one of asynq's scripts the hooks act on.
type script struct {
	kind  scriptKind
	queue string
	keys  int // the number of keys: the script's arguments start at 3+keys
}

// classify tells which of asynq's scripts cmd runs (EVALSHA, or EVAL after NOSCRIPT), and
// on which queue.
func classify(cmd redis.Cmder) script {
	name := cmd.Name()
	if name != "evalsha" && name != "eval" {
		return script{}
	}
	args := cmd.Args()
	if len(args) < 3 {
		return script{}
	}
	body, ok := args[1].(string)
	if !ok {
		return script{}
	}
	sha := body
	if name == "eval" {
		if !sourceLens[len(body)] {
			return script{}
		}
		sum := sha1.Sum([]byte(body))
		sha = hex.EncodeToString(sum[:])
	}
	at, ok := pendingKeyAt[sha]
	if !ok {
		return script{}
	}
	n, ok := args[2].(int)
	if !ok || at.key >= n || len(args) < 3+n {
		return script{}
	}
	key, ok := args[3+at.key].(string)
	if !ok {
		return script{}
	}
	q, ok := queueOf(key)
	if !ok {
		return script{}
	}
	return script{kind: at.kind, queue: q, keys: n}
}

// queueOf returns the queue whose pending list is key: asynq:{<queue>}:pending.
func queueOf(key string) (string, bool) {
	q, ok := strings.CutPrefix(key, "asynq:{")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(q, "}:pending")
}
