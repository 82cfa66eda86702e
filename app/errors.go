package app

import (
	"errors"
	"fmt"
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

// Unavailable wraps a Redis or network failure in a message a person can act on.
func Unavailable(msg string, err error) *Error {
	return &Error{Code: EUnavailable, Message: msg, Err: err}
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
