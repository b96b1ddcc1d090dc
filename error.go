package ivrpay

import (
	"errors"
	"fmt"
)

// Error codes. Transports map them to statuses in exactly one place and never
// string-match messages.
const (
	EINVALID      = "RequestBody"      // 400
	EUNAUTHORIZED = "AuthUnauthorized" // 401
	EFORBIDDEN    = "AuthForbidden"    // 403
	ENOTFOUND     = "EntityNotFound"   // 404
	ECONFLICT     = "Conflict"         // 409
	ERATELIMITED  = "RateLimited"      // 429
	EINTERNAL     = "Internal"         // 500
)

// Error is an error a client may see: a code, the offending field (if any) and
// a message meant for the platform developer. Anything else is internal and is
// reported as EINTERNAL without detail.
type Error struct {
	Code    string
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("ivrpay: %s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("ivrpay: %s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with no field.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an EINVALID *Error naming field.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err's *Error, or EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of err's *Error, or a generic message that
// leaks nothing about internal failures.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// ErrorField returns the field of err's *Error, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
