package payment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ladle-dev/ladle"
)

// TestRefund is one refund as the test processor recorded it.
type TestRefund struct {
	Key      string // the idempotency key it was made with
	ID       string // "re_…"
	ChargeID string
	Amount   ladle.Money
	Currency string
	// Failure is why the processor refused it; "" for a refund made.
	Failure string
	Created time.Time
}

// TestRefundLedger is where the test processor keeps its refunds: the
// database (internal/sqlstore implements it), so every process sharing it
// (api and worker, before and after a restart) sees the same refunds and a
// key is refunded once whichever process calls.
type TestRefundLedger interface {
	// RecordTestRefund stores r under r.Key unless the key is stored
	// already; either way it returns what is stored under the key, and
	// whether this call stored it.
	RecordTestRefund(ctx context.Context, r TestRefund) (stored TestRefund, created bool, err error)
	// TestRefunds lists every refund recorded, oldest first.
	TestRefunds(ctx context.Context) ([]TestRefund, error)
}

// TestRefunder is the test processor's refunds API (ladle.Refunder): it
// honours idempotency keys through its ledger, and can be told to refuse
// refunds or lose their responses, as a real processor sometimes does. It is
// safe for concurrent use.
type TestRefunder struct {
	ledger TestRefundLedger

	mu       sync.Mutex
	calls    int
	failNext int
	loseNext int
}

// NewTestRefunder returns a TestRefunder keeping its refunds in ledger.
func NewTestRefunder(ledger TestRefundLedger) *TestRefunder {
	return &TestRefunder{ledger: ledger}
}

// RefuseNext makes the next n refunds (new keys) be refused, as a processor
// refuses a refund of a charge it disputes or of a closed card.
func (p *TestRefunder) RefuseNext(n int) {
	p.mu.Lock()
	p.failNext = n
	p.mu.Unlock()
}

// LoseNext makes the next n refunds (new keys) be made and their responses
// lost: the call returns ladle.ErrPaymentUnknown; asking again with the key
// returns the refund.
func (p *TestRefunder) LoseNext(n int) {
	p.mu.Lock()
	p.loseNext = n
	p.mu.Unlock()
}

// Refund implements ladle.Refunder.
func (p *TestRefunder) Refund(ctx context.Context, req ladle.RefundRequest) (ladle.RefundResult, error) {
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	switch {
	case req.Key == "":
		return ladle.RefundResult{}, errors.New("payment: refund without an idempotency key")
	case req.ChargeID == "":
		return ladle.RefundResult{}, &ladle.Error{Kind: ladle.KindPaymentRequired, Code: ladle.CodeRefundFailed,
			Message: "the charge to refund is not named"}
	case req.Amount <= 0:
		return ladle.RefundResult{}, &ladle.Error{Kind: ladle.KindPaymentRequired, Code: ladle.CodeRefundFailed,
			Message: "the refund amount must be positive"}
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	r := TestRefund{Key: req.Key, ID: "re_" + hex.EncodeToString(b[:]), ChargeID: req.ChargeID, Amount: req.Amount,
		Currency: req.Currency, Created: time.Now().UTC()}
	p.mu.Lock()
	if p.failNext > 0 {
		r.Failure = "The card processor refused the refund (test: RefuseNext)."
	}
	p.mu.Unlock()
	stored, created, err := p.ledger.RecordTestRefund(ctx, r)
	if err != nil {
		// Whether the ledger kept it is unknown, as with a real
		// processor whose connection broke.
		return ladle.RefundResult{}, fmt.Errorf("%w: %v", ladle.ErrPaymentUnknown, err)
	}
	lose := false
	if created {
		p.mu.Lock()
		if r.Failure != "" && p.failNext > 0 {
			p.failNext--
		}
		if p.loseNext > 0 {
			p.loseNext--
			lose = true
		}
		p.mu.Unlock()
	}
	if !created && (stored.Amount != req.Amount || stored.ChargeID != req.ChargeID) {
		// Stripe answers this with an idempotency error: same key, other parameters.
		return ladle.RefundResult{}, fmt.Errorf("payment: refund key %q reused with other parameters", req.Key)
	}
	if lose {
		return ladle.RefundResult{}, ladle.ErrPaymentUnknown
	}
	if stored.Failure != "" {
		return ladle.RefundResult{}, &ladle.Error{Kind: ladle.KindPaymentRequired, Code: ladle.CodeRefundFailed,
			Message: stored.Failure}
	}
	return ladle.RefundResult{RefundID: stored.ID}, nil
}

// Calls returns how many times Refund was called in this process, retries
// included.
func (p *TestRefunder) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// Refunds returns the refunds the processor made (not the refused ones),
// from the ledger: what a guest's card statement would show, whichever
// process made them.
func (p *TestRefunder) Refunds(ctx context.Context) ([]TestRefund, error) {
	all, err := p.ledger.TestRefunds(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, r := range all {
		if r.Failure == "" {
			out = append(out, r)
		}
	}
	return out, nil
}
