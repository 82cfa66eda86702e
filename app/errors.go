package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Error codes: the one vocabulary every layer speaks. The web layer maps each to an HTTP
// status in one place.
const (
	EInvalid     = "invalid"     // a value is outside its limits or of the wrong kind
	EMalformed   = "malformed"   // the input cannot be parsed at all
	ENotFound    = "not_found"   // no such run or task
	EConflict    = "conflict"    // the request does not fit the current state
	ETooMany     = "too_many"    // a limit on active work is reached
	EUnavailable = "unavailable" // Redis or the workers cannot be reached
	EInternal    = "internal"    // anything else; its text never reaches a user
)

// Error is a domain error with a code and a message a person can act on.
type Error struct {
	Code    string
	Message string
	Field   string // for EInvalid: the offending field
	Err     error  // the cause, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports a field outside its limits, naming the field, the limit and the value.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// Unavailable reports that doing failed on Redis or the network ("cannot save the run"), in
// a message that names the cause err stands for: Redis did not answer in time, is
// unreachable, refused, or this process is stopping. err itself is kept for the logs.
func Unavailable(doing string, err error) *Error {
	msg := doing
	if err != nil {
		msg += ": " + unavailableCause(err)
	}
	return &Error{Code: EUnavailable, Message: msg, Err: err}
}

// unavailableCause says in words what a failed Redis call's error means.
func unavailableCause(err error) string {
	var ne net.Error
	var re redis.Error
	switch {
	case errors.Is(err, redis.ErrPoolTimeout):
		return "no Redis connection came free in time: the server is overloaded; try again in a moment"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "Redis did not answer in time: it is overloaded or the network is slow; try again in a moment"
	case errors.Is(err, context.Canceled):
		return "the request was canceled before Redis answered"
	case errors.Is(err, redis.ErrClosed):
		return "this server is shutting down"
	case errors.As(err, &re):
		if strings.HasPrefix(re.Error(), "LOADING") {
			return "Redis is still loading its data; try again in a moment"
		}
		if strings.HasPrefix(re.Error(), "OOM") {
			return "Redis is out of memory"
		}
		return "Redis refused the command"
	}
	return "Redis is unreachable: check that it runs and that REDIS_URL points to it"
}

// ErrorCode returns the code of err, EInternal for errors that are not *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the user-facing message of err; internal errors get a generic one.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
