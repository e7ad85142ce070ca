// Package payment holds Ladle's payment providers: Stripe (stripe.go), and
// TestProvider, the built-in one for the demo and the tests. Both implement
// ladle.PaymentProvider.
package payment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ladle-dev/ladle"
)

// Test card tokens the TestProvider understands. Any other non-empty token is
// a good card.
const (
	TokenVisa    = "tok_visa"    // succeeds
	TokenDecline = "tok_decline" // declined: card_declined
	// TokenTimeout charges the card and then "loses" the response the first
	// time a key is used, as a processor does when the connection drops
	// after it charged. The next call with the same key returns the charge.
	TokenTimeout = "tok_timeout"
)

// TestCharge is one charge as the test provider recorded it.
type TestCharge struct {
	ID           string
	Key          string
	OrderID      string
	RestaurantID int64
	Amount       ladle.Money
	Currency     string
	Declined     bool
	// Calls counts the Charge calls made with Key, the first included.
	Calls   int64
	Created time.Time
}

// ChargeLog keeps the test provider's charges: the database
// (internal/sqlstore), so every process sharing it sees the same charges.
type ChargeLog interface {
	// RecordTestCharge records one Charge call with c.Key: the first one
	// inserts c (Calls 1) and reports first; a later one adds 1 to the
	// stored charge's Calls and returns it as it was first recorded.
	// Concurrent calls with one key record one charge.
	RecordTestCharge(ctx context.Context, c TestCharge) (stored TestCharge, first bool, err error)
	// TestCharge returns the charge with the key (not_found if none).
	TestCharge(ctx context.Context, key string) (TestCharge, error)
	// TestCharges lists every charge, declined ones included, oldest first.
	TestCharges(ctx context.Context) ([]TestCharge, error)
}

// TestProvider is a card processor that moves no money and keeps its
// charges in the database, keyed by idempotency key, so it keeps a real
// processor's promise across processes and restarts: only the first call
// with a key charges, and every call with it returns that charge's outcome.
// It is safe for concurrent use.
type TestProvider struct {
	log ChargeLog

	mu    sync.Mutex
	delay time.Duration
}

// NewTestProvider returns a TestProvider keeping its charges in log.
func NewTestProvider(log ChargeLog) *TestProvider {
	return &TestProvider{log: log}
}

// Name implements ladle.PaymentProvider.
func (p *TestProvider) Name() string { return "test" }

// SetDelay makes every Charge call of this TestProvider value take at least
// d after it has charged, as a slow processor does. Tests use it to hold a
// request in flight.
func (p *TestProvider) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Charge implements ladle.PaymentProvider.
func (p *TestProvider) Charge(ctx context.Context, req ladle.ChargeRequest) (ladle.ChargeResult, error) {
	if req.Key == "" {
		return ladle.ChargeResult{}, errors.New("payment: charge without an idempotency key")
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	c, first, err := p.log.RecordTestCharge(ctx, TestCharge{ID: "ch_" + hex.EncodeToString(b[:]), Key: req.Key,
		OrderID: req.OrderID, RestaurantID: req.RestaurantID, Amount: req.Amount, Currency: req.Currency,
		Declined: req.Token == TokenDecline, Created: time.Now().UTC()})
	if err != nil {
		if ctx.Err() != nil {
			return ladle.ChargeResult{}, ladle.ErrPaymentUnknown
		}
		return ladle.ChargeResult{}, fmt.Errorf("payment: test provider: %w", err)
	}
	if !first && (c.Amount != req.Amount || !strings.EqualFold(c.Currency, req.Currency)) {
		// Stripe answers this with an idempotency error: same key, other parameters.
		return ladle.ChargeResult{}, fmt.Errorf("payment: key %q reused with a different amount", req.Key)
	}
	p.mu.Lock()
	delay := p.delay
	p.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ladle.ChargeResult{}, ladle.ErrPaymentUnknown
		}
	}
	if first && req.Token == TokenTimeout {
		return ladle.ChargeResult{}, ladle.ErrPaymentUnknown
	}
	return outcome(c)
}

// Lookup implements ladle.PaymentProvider: the charge recorded under
// req.Key, without recording a call.
func (p *TestProvider) Lookup(ctx context.Context, req ladle.ChargeRequest) (ladle.ChargeResult, error) {
	c, err := p.log.TestCharge(ctx, req.Key)
	if ladle.ErrorCode(err) == ladle.CodeNotFound {
		return ladle.ChargeResult{}, ladle.ErrChargeNotFound
	}
	if err != nil {
		return ladle.ChargeResult{}, fmt.Errorf("payment: test provider: %w", err)
	}
	return outcome(c)
}

func outcome(c TestCharge) (ladle.ChargeResult, error) {
	if c.Declined {
		return ladle.ChargeResult{}, declined("Your card was declined.", "card_declined")
	}
	return ladle.ChargeResult{ChargeID: c.ID, Status: ladle.ChargeSucceeded}, nil
}

// declined is the payment_declined error every provider returns.
func declined(message, code string) error {
	return &ladle.Error{Kind: ladle.KindPaymentRequired, Code: ladle.CodePaymentDeclined,
		Message: message, Extra: map[string]any{"decline_code": code}}
}

// Charges returns the successful charges made, oldest first: what guests'
// statements would show.
func (p *TestProvider) Charges(ctx context.Context) ([]TestCharge, error) {
	all, err := p.log.TestCharges(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, c := range all {
		if !c.Declined {
			out = append(out, c)
		}
	}
	return out, nil
}

// Calls returns how many times Charge was called, repeats with one key
// included, by every process sharing the database.
func (p *TestProvider) Calls(ctx context.Context) (int64, error) {
	all, err := p.log.TestCharges(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, c := range all {
		n += c.Calls
	}
	return n, nil
}
