package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/ladle-dev/ladle/internal/mail"
)

// permanent marks a failure that no retry can fix.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent wraps err so the worker dead-letters the event at once instead
// of retrying it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

// IsPermanent reports whether err was marked Permanent, or is a mail failure
// no retry can fix (a bad address, an SMTP 5xx).
func IsPermanent(err error) bool {
	var p *permanent
	return errors.As(err, &p) || mail.IsPermanent(err)
}

// retryAfter asks for the event again after d without counting a failure.
type retryAfter struct{ d time.Duration }

func (r *retryAfter) Error() string { return fmt.Sprintf("busy; retry in %v", r.d) }

// RetryAfter tells the worker to deliver the event again after d (at least
// 100ms) without counting a failure: another handler holds it right now.
func RetryAfter(d time.Duration) error {
	return &retryAfter{max(d, 100*time.Millisecond)}
}
