package mail

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/emersion/go-smtp"
)

// Transport delivers rendered messages.
type Transport interface {
	// Send delivers m. An error wrapping ErrPermanent will fail the same way
	// on every retry (a rejected recipient, a malformed address); any other
	// error is worth retrying later.
	Send(ctx context.Context, m *Message) error
	// Name is recorded with each email: "smtp" or "mailbox".
	Name() string
	Close() error
}

// BatchTransport is a Transport that hands many messages over at once
// (SMTP pipelines them): one error per message, nil when it was accepted.
type BatchTransport interface {
	Transport
	SendBatch(ctx context.Context, msgs []*Message) []error
}

// WithPacer returns a context under which SendBatch calls pace before
// each message it writes: bulk mail passes a function that waits while
// urgent work is in progress (internal/priority), so a batch in flight
// pauses between messages instead of only between batches.
func WithPacer(ctx context.Context, pace func(context.Context)) context.Context {
	return context.WithValue(ctx, pacerKey{}, pace)
}

type pacerKey struct{}

func pacer(ctx context.Context) func(context.Context) {
	f, _ := ctx.Value(pacerKey{}).(func(context.Context))
	return f
}

// ErrPermanent is wrapped by errors a retry cannot fix.
var ErrPermanent = errors.New("permanent failure")

// IsPermanent reports whether err is a delivery failure that a retry cannot
// fix: an unusable address, or an SMTP 5xx reply.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrPermanent) || errors.Is(err, ErrBadAddress) {
		return true
	}
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code >= 500 && se.Code < 600
}

// DevMailbox is the transport of the embedded default: nothing leaves the
// machine. The worker stores every email's rendered message in its database
// row before sending; with this transport that row, once marked sent, is the
// delivered message, and the staff UI lists it at /admin/mailbox. Marking
// sent, the inbox row and "delivery" are then one transaction, so the dev
// mailbox receives every email exactly once, even across crashes.
type DevMailbox struct{}

// MailboxName is DevMailbox's Name.
const MailboxName = "mailbox"

// Send checks that m could be delivered (its addresses parse) and does
// nothing else: see DevMailbox.
func (DevMailbox) Send(_ context.Context, m *Message) error {
	_, _, err := m.Envelope()
	return err
}

func (DevMailbox) Name() string { return MailboxName }
func (DevMailbox) Close() error { return nil }

// Open returns the transport for a --smtp-url value: "" for the dev mailbox,
// smtp:// or smtps:// for an SMTP relay (see NewSMTP).
func Open(rawURL string) (Transport, error) {
	if rawURL == "" || rawURL == MailboxName {
		return DevMailbox{}, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("mail: smtp url: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "smtp", "smtps":
		return NewSMTP(u)
	default:
		return nil, fmt.Errorf("mail: smtp url: unknown scheme %q (want smtp:// or smtps://)", u.Scheme)
	}
}
