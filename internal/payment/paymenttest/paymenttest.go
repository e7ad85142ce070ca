// Package paymenttest reads the test provider's records for tests: what a
// guest's card statement would show, and how often the provider was asked.
package paymenttest

import (
	"context"
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/payment"
)

// Charges returns how many successful charges p's database holds.
func Charges(t testing.TB, p *payment.TestProvider) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := p.Charges(ctx)
	if err != nil {
		t.Fatalf("test provider charges: %v", err)
	}
	return len(cs)
}

// Calls returns how many Charge calls every process sharing p's database
// made, repeats with one idempotency key included.
func Calls(t testing.TB, p *payment.TestProvider) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := p.Calls(ctx)
	if err != nil {
		t.Fatalf("test provider calls: %v", err)
	}
	return int(n)
}
