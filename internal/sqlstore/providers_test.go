package sqlstore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
)

// Two store handles on one database: what two processes (api and worker,
// or one process before and after a restart) see.
func eachDialectTwice(t *testing.T, fn func(t *testing.T, a, b *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		url := "sqlite:" + filepath.Join(t.TempDir(), "ladle.db")
		fn(t, open(t, url), open(t, url))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url := freshSchema(t)
		fn(t, open(t, url), open(t, url))
	})
}

// TestTestProviderSharedAcrossProcesses: the test provider's charges live
// in the database, so two processes charging one key (concurrently, and
// again after one "restarted") make one charge, return its outcome to
// every caller, and count every call.
func TestTestProviderSharedAcrossProcesses(t *testing.T) {
	t.Parallel()
	eachDialectTwice(t, func(t *testing.T, a, b *sqlstore.Store) {
		ctx := context.Background()
		pa, pb := payment.NewTestProvider(a), payment.NewTestProvider(b)
		req := ladle.ChargeRequest{Key: "order:o-1", OrderID: "o-1", RestaurantID: 7, Amount: 1250, Currency: "USD",
			Token: payment.TokenVisa}
		if _, err := pa.Lookup(ctx, req); err != ladle.ErrChargeNotFound {
			t.Fatalf("lookup before any charge: %v, want ErrChargeNotFound", err)
		}
		var wg sync.WaitGroup
		ids := make([]string, 8)
		for i := range ids {
			p := pa
			if i%2 == 1 {
				p = pb
			}
			wg.Go(func() {
				res, err := p.Charge(ctx, req)
				if err != nil || res.Status != ladle.ChargeSucceeded {
					t.Errorf("charge %d: %+v, %v", i, res, err)
				}
				ids[i] = res.ChargeID
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("one key, several charge ids: %v", ids)
			}
		}
		// A new provider value (a restarted process) knows the charge.
		again := payment.NewTestProvider(b)
		if res, err := again.Lookup(ctx, req); err != nil || res.ChargeID != ids[0] {
			t.Fatalf("lookup after restart: %+v, %v", res, err)
		}
		if res, err := again.Charge(ctx, req); err != nil || res.ChargeID != ids[0] {
			t.Fatalf("charge after restart: %+v, %v", res, err)
		}
		cs, err := pa.Charges(ctx)
		if err != nil || len(cs) != 1 || cs[0].OrderID != "o-1" || cs[0].Amount != 1250 || cs[0].Calls != 9 {
			t.Fatalf("charges %+v, %v; want one with 9 calls", cs, err)
		}
		if n, err := pb.Calls(ctx); err != nil || n != 9 {
			t.Fatalf("calls %d, %v; want 9", n, err)
		}

		// Another amount under the same key is refused, as Stripe does.
		other := req
		other.Amount = 999
		if _, err := pa.Charge(ctx, other); err == nil {
			t.Fatal("same key, other amount: charged")
		}
		// A lost response: charged, the caller told "unknown"; the retry
		// (from the other process) returns the charge.
		lost := ladle.ChargeRequest{Key: "order:o-2", OrderID: "o-2", Amount: 500, Currency: "USD", Token: payment.TokenTimeout}
		if _, err := pa.Charge(ctx, lost); err != ladle.ErrPaymentUnknown {
			t.Fatalf("lost response: %v", err)
		}
		if res, err := pb.Charge(ctx, lost); err != nil || res.ChargeID == "" {
			t.Fatalf("retry after a lost response: %+v, %v", res, err)
		}
		// A decline is final, for every caller.
		dec := ladle.ChargeRequest{Key: "order:o-3", OrderID: "o-3", Amount: 500, Currency: "USD", Token: payment.TokenDecline}
		for _, p := range []*payment.TestProvider{pa, pb} {
			if _, err := p.Charge(ctx, dec); ladle.ErrorCode(err) != ladle.CodePaymentDeclined {
				t.Fatalf("decline: %v", err)
			}
		}
		if _, err := pb.Lookup(ctx, dec); ladle.ErrorCode(err) != ladle.CodePaymentDeclined {
			t.Fatalf("lookup of a decline: %v", err)
		}
		if cs, _ := pa.Charges(ctx); len(cs) != 2 {
			t.Fatalf("successful charges %d, want 2", len(cs))
		}
	})
}

func TestPaymentAccount(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		f := storetest.Seed(t, s)
		if a, err := s.PaymentAccount(ctx, f.Restaurant.ID); err != nil || a.StripeAccount != "" {
			t.Fatalf("unset account: %+v, %v", a, err)
		}
		for _, bad := range []string{"acct_", "acct_abc def", "cus_123", "acct_<script>"} {
			err := s.SetPaymentAccount(ctx, f.Restaurant.ID, ladle.PaymentAccount{StripeAccount: bad}, ladle.Now())
			if ladle.ErrorCode(err) != ladle.CodeValidation {
				t.Fatalf("account %q: %v, want validation_failed", bad, err)
			}
		}
		if err := s.SetPaymentAccount(ctx, f.Restaurant.ID, ladle.PaymentAccount{StripeAccount: "acct_1Abc"}, ladle.Now()); err != nil {
			t.Fatal(err)
		}
		if a, _ := s.PaymentAccount(ctx, f.Restaurant.ID); a.StripeAccount != "acct_1Abc" {
			t.Fatalf("account = %+v", a)
		}
		if a, _ := s.PaymentAccount(ctx, f.Other.ID); a.StripeAccount != "" {
			t.Fatalf("the other restaurant's account = %+v", a)
		}
		if err := s.SetPaymentAccount(ctx, f.Restaurant.ID, ladle.PaymentAccount{}, ladle.Now()); err != nil {
			t.Fatal(err)
		}
		if a, _ := s.PaymentAccount(ctx, f.Restaurant.ID); a.StripeAccount != "" {
			t.Fatalf("cleared account = %+v", a)
		}
		if err := s.SetPaymentAccount(ctx, 99999, ladle.PaymentAccount{}, ladle.Now()); ladle.ErrorCode(err) != ladle.CodeNotFound {
			t.Fatalf("unknown restaurant: %v", err)
		}
	})
}
