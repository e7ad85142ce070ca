package ladle

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it. The HTTP layer
// maps each kind to one status code in a single table (internal/httpapi), so
// the domain never speaks HTTP.
type Kind int

const (
	KindInternal         Kind = iota // a bug or an outage: logged, shown as "internal error"
	KindInvalid                      // the request is malformed or fails validation (400)
	KindUnprocessable                // well-formed but cannot be honoured, e.g. a reused key (422)
	KindNotFound                     // the thing does not exist, or the caller may not know it does (404)
	KindConflict                     // the request conflicts with current state (409)
	KindUnauthorized                 // not logged in / bad credentials (401)
	KindForbidden                    // logged in but not allowed (403)
	KindPaymentRequired              // the payment was declined (402)
	KindTooLarge                     // the body is over its bound (413)
	KindRateLimited                  // slow down (429)
	KindUnavailable                  // a dependency is down or an outcome is not yet known (503)
	KindMethodNotAllowed             // the resource exists, but not with this method (405)
)

// Error is the one error type that crosses package boundaries with meaning.
// Code is stable and machine-readable (snake_case, documented in the README);
// Message is for people. Fields carries per-field validation messages and
// Extra carries structured details (for example the existing order of a
// possible duplicate); both are rendered into the problem+json body.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Fields  map[string]string
	Extra   map[string]any
	// cause is the underlying error (for logs and errors.Is/As); it is
	// never rendered to a client.
	cause error
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.cause }

func (e *Error) Error() string {
	msg := e.Code + ": " + e.Message
	if len(e.Fields) > 0 {
		msg = fmt.Sprintf("%s %v", msg, e.Fields)
	}
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

// Errorf returns an *Error of the given kind and code.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorKind returns the kind of err: KindInternal unless err wraps an *Error.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// ErrorCode returns the code of err, or "internal" unless err wraps an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "internal"
}

// Codes shared by several packages. Package-specific codes are written inline.
const (
	CodeNotFound              = "not_found"
	CodeValidation            = "validation_failed"
	CodeInvalidJSON           = "invalid_json"
	CodeMethodNotAllowed      = "method_not_allowed"
	CodeIdempotencyKeyMissing = "idempotency_key_missing"
	CodeIdempotencyKeyInUse   = "idempotency_key_in_use"
	CodeIdempotencyKeyReused  = "idempotency_key_reused"
	CodePossibleDuplicate     = "possible_duplicate"
	CodeCouponExhausted       = "coupon_exhausted"
	CodeCouponInvalid         = "coupon_invalid"
	CodeItemUnavailable       = "item_unavailable"
	CodePaymentDeclined       = "payment_declined"
	CodePaymentPending        = "payment_pending"
	CodeInvalidTransition     = "invalid_transition"
	CodeUnauthorized          = "unauthorized"
	CodeForbidden             = "forbidden"
	CodeRateLimited           = "rate_limited"
	CodeUnavailable           = "unavailable"
)

// Unavailable is the error for a dependency that is down, slow past its
// deadline or out of capacity (database, broker, payment provider), and for
// work shed because the process is at its limit: 503 with Retry-After, so a
// client knows the same request is safe to retry after retryAfter seconds.
// Adapters return it (wrapping the cause, which is logged, never shown); code
// above them never guesses from driver errors.
func Unavailable(cause error, retryAfter int, format string, args ...any) *Error {
	return &Error{Kind: KindUnavailable, Code: CodeUnavailable, Message: fmt.Sprintf(format, args...),
		Extra: map[string]any{"retry_after": max(retryAfter, 1)}, cause: cause}
}

// RateLimited is the error for a client that sent too much: 429 with
// Retry-After seconds.
func RateLimited(retryAfter int, format string, args ...any) *Error {
	return &Error{Kind: KindRateLimited, Code: CodeRateLimited, Message: fmt.Sprintf(format, args...),
		Extra: map[string]any{"retry_after": max(retryAfter, 1)}}
}

// RetryAfter returns the seconds after which err says a retry may succeed
// (Extra "retry_after"), or 0 when it says nothing.
func RetryAfter(err error) int {
	var e *Error
	if errors.As(err, &e) {
		if v, ok := e.Extra["retry_after"].(int); ok {
			return v
		}
	}
	return 0
}

// NotFound is the error every lookup returns for a missing row, and every
// tenant-scoped lookup returns for a row of another restaurant: callers cannot
// tell "not yours" from "not there".
func NotFound(what string) *Error {
	return &Error{Kind: KindNotFound, Code: CodeNotFound, Message: what + " not found"}
}
