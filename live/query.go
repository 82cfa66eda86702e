package live

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/taskrace/taskrace/live/taskstate"
)

// Query selects tasks, parsed from words in Flower's manner:
//
//	state:failed type:email:* queue:critical worker:host retried:yes timeout "dial tcp"
//
// A key:value word filters on a field (state, type, queue, worker, retried); values may list
// alternatives with commas, and type, queue and worker take * wildcards. Every other word,
// or a phrase in double quotes, must occur (any case) in the task's ID or in one of its
// errors. All the words must hold.
type Query struct {
	States  []string // any of these states
	Types   []string // any of these type patterns
	Queues  []string // any of these queue patterns
	Workers []string // any of these patterns, matched against host, host:pid and host:pid/slot
	Retried *bool    // more than one attempt (true), or exactly one (false)
	Words   []string // each in the ID or an error, any case
}

// QueryKeys are the filter keys a query knows.
var QueryKeys = []string{"state", "type", "queue", "worker", "retried"}

// QueryError is a query that cannot be parsed: it names the word and says why.
type QueryError struct {
	Word   string
	Reason string
}

func (e *QueryError) Error() string { return fmt.Sprintf("%q: %s", e.Word, e.Reason) }

// ParseQuery parses a query string; the empty query selects every task.
func ParseQuery(s string) (*Query, error) {
	q := &Query{}
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	for _, w := range words {
		if w.quoted {
			q.Words = append(q.Words, w.text)
			continue
		}
		key, value, ok := strings.Cut(w.text, ":")
		if !ok {
			q.Words = append(q.Words, w.text)
			continue
		}
		if value == "" {
			return nil, &QueryError{w.text, "no value after " + key + ":"}
		}
		alts := strings.Split(value, ",")
		switch key {
		case "state":
			for _, a := range alts {
				if !taskstate.Valid(a) {
					return nil, &QueryError{w.text, fmt.Sprintf("state must be one of %s", strings.Join(taskstate.All, ", "))}
				}
			}
			q.States = append(q.States, alts...)
		case "type":
			q.Types = append(q.Types, alts...)
		case "queue":
			q.Queues = append(q.Queues, alts...)
		case "worker":
			q.Workers = append(q.Workers, alts...)
		case "retried":
			var yes bool
			switch value {
			case "yes", "true":
				yes = true
			case "no", "false":
			default:
				return nil, &QueryError{w.text, "retried must be yes or no"}
			}
			q.Retried = &yes
		default:
			return nil, &QueryError{w.text, fmt.Sprintf("unknown key %q: the keys are %s; put text with a colon in double quotes",
				key, strings.Join(QueryKeys, ", "))}
		}
	}
	for _, p := range append(append(append([]string{}, q.Types...), q.Queues...), q.Workers...) {
		if _, err := path.Match(p, ""); err != nil {
			return nil, &QueryError{p, "not a valid pattern"}
		}
	}
	return q, nil
}

type word struct {
	text   string
	quoted bool
}

func splitWords(s string) ([]word, error) {
	var out []word
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimLeftFunc(s, unicode.IsSpace) {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, &QueryError{s, "a quote is not closed"}
			}
			if text := s[1 : 1+end]; text != "" {
				out = append(out, word{text: text, quoted: true})
			}
			s = s[2+end:]
			continue
		}
		end := strings.IndexFunc(s, unicode.IsSpace)
		if end < 0 {
			end = len(s)
		}
		out = append(out, word{text: s[:end]})
		s = s[end:]
	}
	return out, nil
}

// Empty reports whether q selects every task.
func (q *Query) Empty() bool {
	return q == nil || (len(q.States) == 0 && len(q.Types) == 0 && len(q.Queues) == 0 && len(q.Workers) == 0 &&
		q.Retried == nil && len(q.Words) == 0)
}

// Match reports whether task t is selected.
func (q *Query) Match(t *Task) bool {
	if q == nil {
		return true
	}
	if len(q.States) > 0 && !contains(q.States, t.State) {
		return false
	}
	if len(q.Types) > 0 && !matchAny(q.Types, t.Type) {
		return false
	}
	if len(q.Queues) > 0 && !matchAny(q.Queues, t.Queue) {
		return false
	}
	if q.Retried != nil && (t.Attempts > 1) != *q.Retried {
		return false
	}
	if len(q.Workers) > 0 && !q.matchWorker(t) {
		return false
	}
	for _, w := range q.Words {
		if !containsFold(t.ID, w) && !t.errorContains(w) {
			return false
		}
	}
	return true
}

func (q *Query) matchWorker(t *Task) bool {
	w := t.Worker
	if w.Host == "" {
		return false
	}
	proc := fmt.Sprintf("%s:%d", w.Host, w.PID)
	return matchAny(q.Workers, w.Host) || matchAny(q.Workers, proc) || matchAny(q.Workers, w.String())
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if p == s {
			return true
		}
		if strings.ContainsAny(p, "*?[") {
			if ok, _ := path.Match(p, s); ok {
				return true
			}
			// path.Match's * stops at '/'; task types and queues often hold one.
			if ok, _ := path.Match(strings.ReplaceAll(p, "/", "\x00"), strings.ReplaceAll(s, "/", "\x00")); ok {
				return true
			}
		}
	}
	return false
}

// containsFold reports whether sub occurs in s, ignoring case, without allocating.
func containsFold(s, sub string) bool {
	if sub == "" {
		return true
	}
	first, size := utf8.DecodeRuneInString(sub)
	lower, upper := unicode.ToLower(first), unicode.ToUpper(first)
	for i := 0; i < len(s); {
		j := strings.IndexFunc(s[i:], func(r rune) bool { return r == lower || r == upper || r == first })
		if j < 0 {
			return false
		}
		i += j
		if len(s)-i >= len(sub)-size && hasPrefixFold(s[i:], sub) {
			return true
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	for prefix != "" {
		if s == "" {
			return false
		}
		a, n := utf8.DecodeRuneInString(s)
		b, m := utf8.DecodeRuneInString(prefix)
		if a != b && unicode.ToLower(a) != unicode.ToLower(b) {
			return false
		}
		s, prefix = s[n:], prefix[m:]
	}
	return true
}
