// Package payment holds Ladle's payment providers. TestProvider is the
// built-in one: it behaves like a real card processor (idempotency keys,
// declines, lost responses) without moving money, so the whole ordering path
// can be exercised end to end.
package payment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// Charge is one charge as the provider recorded it.
type Charge struct {
	ID       string
	Key      string
	Amount   ladle.Money
	Currency string
	Token    string
	Declined bool
	Created  time.Time
}

// TestProvider is an in-memory card processor that honours idempotency keys:
// every call with a key already seen returns that key's first outcome, and
// only the first call charges. It is safe for concurrent use.
type TestProvider struct {
	mu      sync.Mutex
	byKey   map[string]*Charge
	charges []*Charge
	calls   int
	delay   time.Duration
}

// NewTestProvider returns an empty TestProvider.
func NewTestProvider() *TestProvider {
	return &TestProvider{byKey: map[string]*Charge{}}
}

// SetDelay makes every Charge call take at least d after it has charged, as a
// slow processor does. Tests use it to hold a request in flight.
func (p *TestProvider) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Charge implements ladle.PaymentProvider.
func (p *TestProvider) Charge(ctx context.Context, req ladle.ChargeRequest) (ladle.ChargeResult, error) {
	if req.Key == "" {
		return ladle.ChargeResult{}, fmt.Errorf("payment: charge without an idempotency key")
	}
	p.mu.Lock()
	p.calls++
	c, seen := p.byKey[req.Key]
	if seen && (c.Amount != req.Amount || c.Currency != req.Currency) {
		p.mu.Unlock()
		// Stripe answers this with an idempotency error: same key, other parameters.
		return ladle.ChargeResult{}, fmt.Errorf("payment: key %q reused with a different amount", req.Key)
	}
	if !seen {
		var b [12]byte
		_, _ = rand.Read(b[:])
		c = &Charge{ID: "ch_" + hex.EncodeToString(b[:]), Key: req.Key, Amount: req.Amount,
			Currency: req.Currency, Token: req.Token, Declined: req.Token == TokenDecline, Created: time.Now()}
		p.byKey[req.Key] = c
		p.charges = append(p.charges, c)
	}
	loseResponse := !seen && req.Token == TokenTimeout
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
	if loseResponse {
		return ladle.ChargeResult{}, ladle.ErrPaymentUnknown
	}
	if c.Declined {
		return ladle.ChargeResult{}, &ladle.Error{Kind: ladle.KindPaymentRequired, Code: ladle.CodePaymentDeclined,
			Message: "Your card was declined.", Extra: map[string]any{"decline_code": "card_declined"}}
	}
	return ladle.ChargeResult{ChargeID: c.ID}, nil
}

// Charges returns the successful charges made, in order: what a guest's
// statement would show.
func (p *TestProvider) Charges() []Charge {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Charge, 0, len(p.charges))
	for _, c := range p.charges {
		if !c.Declined {
			out = append(out, *c)
		}
	}
	return out
}

// Calls returns how many times Charge was called, retries included.
func (p *TestProvider) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}
