package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/httpapi"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/payment/stripefake"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// stripeBundle is the API over a real store with the Stripe provider
// talking (through stripe-go) to a Stripe-shaped fake.
type stripeBundle struct {
	*bundle
	st   *sqlstore.Store
	fake *stripefake.Server
}

func stripeBackends(t *testing.T, fn func(t *testing.T, b *stripeBundle)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, stripeSetup(t, "sqlite:"+t.TempDir()+"/ladle.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, stripeSetup(t, testenv.PostgresSchema(t)))
	})
}

func stripeSetup(t *testing.T, dbURL string) *stripeBundle {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	fix := storetest.Seed(t, st)
	fake := stripefake.New(t)
	pay, err := payment.NewStripe(payment.StripeConfig{SecretKey: "sk_test_123", APIURL: fake.URL, NetworkRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	svc := ordering.New(st, pay, []byte("test-secret-test-secret"), ordering.WithConnect(250))
	menus, err := menucache.New(menucache.Config{Source: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { menus.Close() })
	mux := http.NewServeMux()
	httpapi.Register(mux, httpapi.Deps{Store: st, Menus: menus, Ordering: svc, StripeWebhookSecret: stripefake.WebhookSecret})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &stripeBundle{bundle: &bundle{srv: srv, store: st, fix: fix, orders: svc, clock: newClock()}, st: st, fake: fake}
}

func (b *stripeBundle) do(t *testing.T, method, path string, body []byte, header map[string]string) response {
	t.Helper()
	req, _ := http.NewRequest(method, b.url(path), bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, rb}
}

// deliver POSTs a signed webhook body.
func (b *stripeBundle) deliver(t *testing.T, body []byte, sig string) response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if sig != "" {
		h["Stripe-Signature"] = sig
	}
	return b.do(t, "POST", "/webhooks/stripe", body, h)
}

// place3DS places a card order whose card needs 3-D Secure and returns
// the 202's order id, access token, intent id and confirm URL.
func (b *stripeBundle) place3DS(t *testing.T, key string) (orderID, intentID, confirmURL string) {
	t.Helper()
	req := b.fix.Request()
	req.Payment = ladle.PaymentInput{Method: "card", Token: stripefake.CardThreeDS}
	r := b.post(t, key, req)
	if r.status != http.StatusAccepted {
		t.Fatalf("3DS order: %d %s", r.status, r.body)
	}
	m := r.json(t)
	act, _ := m["payment_action"].(map[string]any)
	if m["status"] != "pending_payment" || act["status"] != "requires_action" || act["client_secret"] == "" ||
		act["next_action"] != "use_stripe_sdk" || act["provider"] != "stripe" {
		t.Fatalf("3DS answer: %s", r.body)
	}
	intents := b.fake.Intents()
	return m["id"].(string), intents[len(intents)-1].ID, act["confirm_url"].(string)
}

func (b *stripeBundle) status(t *testing.T, orderID string) ladle.OrderStatus {
	t.Helper()
	o, err := b.st.Order(context.Background(), orderID)
	if err != nil {
		t.Fatal(err)
	}
	return o.Status
}

// events counts the outbox events of a type for an order: one
// order.placed is one receipt (the receipt worker sends one email per
// event id).
func (b *stripeBundle) events(t *testing.T, typ, orderID string) int {
	t.Helper()
	var n int
	if err := b.st.DB().QueryRowContext(context.Background(), `SELECT count(*) FROM outbox WHERE type = $1 AND aggregate_id = $2`,
		typ, orderID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStripeWebhookBeforeClientReturn: the guest finishes 3-D Secure; the
// webhook arrives before the browser's confirm call. The webhook places
// the order; the confirm, the retried POST and a second webhook find it
// placed: one order placed, one receipt event, one PaymentIntent.
func TestStripeWebhookBeforeClientReturn(t *testing.T) {
	t.Parallel()
	stripeBackends(t, func(t *testing.T, b *stripeBundle) {
		orderID, pi, confirm := b.place3DS(t, "3ds-1")
		if s := b.status(t, orderID); s != ladle.StatusPendingPayment {
			t.Fatalf("before authentication: %s", s)
		}
		// Not authenticated yet: the browser's confirm says so, nothing moves.
		if r := b.do(t, "POST", confirm, nil, nil); r.status != http.StatusAccepted {
			t.Fatalf("confirm before authentication: %d %s", r.status, r.body)
		}
		b.fake.Authenticate(pi, true)
		body, sig := b.fake.Event("evt_1", "payment_intent.succeeded", pi, time.Time{})
		if r := b.deliver(t, body, sig); r.status != http.StatusOK {
			t.Fatalf("webhook: %d %s", r.status, r.body)
		}
		if s := b.status(t, orderID); s != ladle.StatusPlaced {
			t.Fatalf("after the webhook: %s", s)
		}
		r := b.do(t, "POST", confirm, nil, nil)
		if r.status != http.StatusCreated || r.json(t)["id"] != orderID || r.json(t)["status"] != "placed" {
			t.Fatalf("confirm after the webhook: %d %s", r.status, r.body)
		}
		req := b.fix.Request()
		req.Payment = ladle.PaymentInput{Method: "card", Token: stripefake.CardThreeDS}
		if r := b.post(t, "3ds-1", req); r.status != http.StatusCreated || r.json(t)["id"] != orderID {
			t.Fatalf("retried POST: %d %s", r.status, r.body)
		}
		body, sig = b.fake.Event("evt_2", "payment_intent.succeeded", pi, time.Time{})
		if r := b.deliver(t, body, sig); r.status != http.StatusOK {
			t.Fatalf("second webhook: %d %s", r.status, r.body)
		}
		if n, c := b.events(t, ladle.EventOrderPlaced, orderID), b.events(t, ladle.EventPaymentCaptured, orderID); n != 1 || c != 1 {
			t.Fatalf("order.placed %d, payment.captured %d; want 1 and 1", n, c)
		}
		if n := len(b.fake.Intents()); n != 1 {
			t.Fatalf("%d PaymentIntents", n)
		}
		ps, _ := b.st.Payments(context.Background(), orderID)
		if len(ps) != 1 || ps[0].Status != ladle.PaymentCaptured || ps[0].ChargeID != pi {
			t.Fatalf("payments %+v", ps)
		}
	})
}

// TestStripeClientReturnBeforeWebhook: the other order of arrival.
func TestStripeClientReturnBeforeWebhook(t *testing.T) {
	t.Parallel()
	stripeBackends(t, func(t *testing.T, b *stripeBundle) {
		orderID, pi, confirm := b.place3DS(t, "3ds-2")
		b.fake.Authenticate(pi, true)
		if r := b.do(t, "POST", confirm, nil, nil); r.status != http.StatusCreated || r.json(t)["status"] != "placed" {
			t.Fatalf("confirm: %d %s", r.status, r.body)
		}
		body, sig := b.fake.Event("evt_late", "payment_intent.succeeded", pi, time.Time{})
		if r := b.deliver(t, body, sig); r.status != http.StatusOK {
			t.Fatalf("webhook: %d %s", r.status, r.body)
		}
		if n := b.events(t, ladle.EventOrderPlaced, orderID); n != 1 {
			t.Fatalf("order.placed %d, want 1", n)
		}
		// The confirm URL needs the order's token.
		if r := b.do(t, "POST", "/api/v1/orders/"+orderID+"/payment/confirm?token=guess", nil, nil); r.status != http.StatusNotFound {
			t.Fatalf("confirm without the token: %d", r.status)
		}
	})
}

// TestStripeWebhookDuplicatesAndOrder: the same event delivered twice (and
// at once), events out of order (a failure notice from before the success
// arriving after it), and a dispute notified twice: each has its effect
// once.
func TestStripeWebhookDuplicatesAndOrder(t *testing.T) {
	t.Parallel()
	stripeBackends(t, func(t *testing.T, b *stripeBundle) {
		orderID, pi, _ := b.place3DS(t, "3ds-3")
		// A stale failure event, made while the intent needed action, is
		// delivered only after the guest authenticated.
		staleBody, staleSig := stripefake.SignedEvent("evt_stale", "payment_intent.payment_failed", b.fake.IntentJSON(pi), time.Time{})
		b.fake.Authenticate(pi, true)
		body, sig := b.fake.Event("evt_ok", "payment_intent.succeeded", pi, time.Time{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if r := b.deliver(t, body, sig); r.status != http.StatusOK {
					t.Errorf("concurrent duplicate delivery: %d %s", r.status, r.body)
				}
			})
		}
		wg.Wait()
		if r := b.deliver(t, body, sig); r.status != http.StatusOK || r.json(t)["duplicate"] != true {
			t.Fatalf("redelivery: %d %s", r.status, r.body)
		}
		if r := b.deliver(t, staleBody, staleSig); r.status != http.StatusOK {
			t.Fatalf("stale event: %d %s", r.status, r.body)
		}
		if s := b.status(t, orderID); s != ladle.StatusPlaced {
			t.Fatalf("after a stale failure event: %s", s)
		}
		if n := b.events(t, ladle.EventOrderPlaced, orderID); n != 1 {
			t.Fatalf("order.placed %d", n)
		}

		dispute := stripefake.Dispute(pi)
		for _, id := range []string{"evt_dp1", "evt_dp1", "evt_dp2"} {
			body, sig := stripefake.SignedEvent(id, "charge.dispute.created", dispute, time.Time{})
			if r := b.deliver(t, body, sig); r.status != http.StatusOK {
				t.Fatalf("dispute %s: %d %s", id, r.status, r.body)
			}
		}
		o, _ := b.st.Order(context.Background(), orderID)
		if o.Attention != ladle.AttentionDisputed || b.events(t, ladle.EventPaymentDisputed, orderID) != 1 {
			t.Fatalf("after the disputes: attention %q, %d events", o.Attention, b.events(t, ladle.EventPaymentDisputed, orderID))
		}
		// An event about an intent that is no order of ours is acknowledged.
		foreign, fsig := stripefake.SignedEvent("evt_foreign", "payment_intent.succeeded",
			map[string]any{"id": "pi_other", "object": "payment_intent", "status": "succeeded", "metadata": map[string]any{}}, time.Time{})
		if r := b.deliver(t, foreign, fsig); r.status != http.StatusOK {
			t.Fatalf("foreign event: %d %s", r.status, r.body)
		}
	})
}

// TestStripeWebhookSignature: a delivery without a signature, signed with
// another secret, signed more than 5 minutes ago, or altered after signing
// is a 400 and changes nothing: the same event, delivered properly
// afterwards, is processed then.
func TestStripeWebhookSignature(t *testing.T) {
	t.Parallel()
	stripeBackends(t, func(t *testing.T, b *stripeBundle) {
		orderID, pi, _ := b.place3DS(t, "3ds-4")
		b.fake.Authenticate(pi, true)
		body, good := b.fake.Event("evt_sig", "payment_intent.succeeded", pi, time.Time{})
		_, stale := b.fake.Event("evt_sig", "payment_intent.succeeded", pi, time.Now().Add(-6*time.Minute))
		altered := bytes.Replace(body, []byte(`"evt_sig"`), []byte(`"evt_sih"`), 1)
		for name, d := range map[string]struct {
			body []byte
			sig  string
		}{
			"missing":   {body, ""},
			"wrong":     {body, "t=" + time.Now().Format("20060102") + ",v1=00deadbeef"},
			"garbage":   {body, "not a signature"},
			"stale":     {body, stale},
			"altered":   {altered, good},
			"not json":  {[]byte("hello"), good},
			"too large": {bytes.Repeat([]byte("x"), httpapi.MaxWebhookBytes+1), good},
		} {
			r := b.deliver(t, d.body, d.sig)
			want := http.StatusBadRequest
			if name == "too large" {
				want = http.StatusRequestEntityTooLarge
			}
			if r.status != want {
				t.Fatalf("%s signature: %d %s, want %d", name, r.status, r.body, want)
			}
			if s := b.status(t, orderID); s != ladle.StatusPendingPayment {
				t.Fatalf("%s signature changed the order: %s", name, s)
			}
		}
		if done, _ := b.st.Processed(context.Background(), httpapi.StripeWebhookConsumer, "evt_sig"); done {
			t.Fatal("a refused delivery was recorded as processed")
		}
		if r := b.deliver(t, body, good); r.status != http.StatusOK || b.status(t, orderID) != ladle.StatusPlaced {
			t.Fatalf("the properly signed delivery: %d %s", r.status, r.body)
		}
	})
}

// TestStripeCharges: a plain card succeeds at once (201), a declined one is
// a 402 with nothing placed, and a restaurant with a connected account is
// charged on it with the platform fee.
func TestStripeCharges(t *testing.T) {
	t.Parallel()
	stripeBackends(t, func(t *testing.T, b *stripeBundle) {
		ctx := context.Background()
		req := b.fix.Request()
		req.Payment = ladle.PaymentInput{Method: "card", Token: stripefake.CardDeclined}
		if r := b.post(t, "dec", req); r.status != http.StatusPaymentRequired || r.code(t) != ladle.CodePaymentDeclined {
			t.Fatalf("declined: %d %s", r.status, r.body)
		}
		if err := b.st.SetPaymentAccount(ctx, b.fix.Restaurant.ID, ladle.PaymentAccount{StripeAccount: "acct_1Pizza"}, ladle.Now()); err != nil {
			t.Fatal(err)
		}
		req = b.fix.Request()
		req.Payment = ladle.PaymentInput{Method: "card", Token: stripefake.CardVisa}
		req.ConfirmDuplicate = true
		r := b.post(t, "visa", req)
		if r.status != http.StatusCreated || r.json(t)["status"] != "placed" {
			t.Fatalf("visa: %d %s", r.status, r.body)
		}
		intents := b.fake.Intents()
		pi := intents[len(intents)-1]
		total := int64(r.json(t)["total"].(float64))
		if pi.Account != "acct_1Pizza" || pi.Amount != total || pi.ApplicationFee != total*250/10000 ||
			pi.Metadata["order_id"] != r.json(t)["id"] {
			t.Fatalf("intent %+v for total %d", pi, total)
		}
	})
}

// TestStripeRefundWebhooks: a refund made in Stripe's dashboard is reported
// by refund.created, delivered twice, and again inside charge.refunded: the
// order shows one refund of that amount. A pending refund and one for an
// intent that is no payment of ours change nothing.
func TestStripeRefundWebhooks(t *testing.T) {
	t.Parallel()
	stripeBackends(t, func(t *testing.T, b *stripeBundle) {
		ctx := context.Background()
		orderID, pi, _ := b.place3DS(t, "3ds-refund")
		b.fake.Authenticate(pi, true)
		body, sig := b.fake.Event("evt_paid", "payment_intent.succeeded", pi, time.Time{})
		if r := b.deliver(t, body, sig); r.status != http.StatusOK {
			t.Fatalf("webhook: %d %s", r.status, r.body)
		}
		refund := func(id, status, intent string) map[string]any {
			return map[string]any{"id": id, "object": "refund", "amount": 500, "currency": "usd",
				"status": status, "payment_intent": intent, "metadata": map[string]any{}}
		}
		for _, ev := range []struct {
			id, typ string
			obj     map[string]any
		}{
			{"evt_r1", "refund.created", refund("re_dash", "succeeded", pi)},
			{"evt_r1", "refund.created", refund("re_dash", "succeeded", pi)}, // redelivered
			{"evt_r2", "charge.refunded", map[string]any{"id": "ch_1", "object": "charge", "payment_intent": pi,
				"amount_refunded": 500, "refunds": map[string]any{"object": "list", "data": []any{refund("re_dash", "succeeded", pi)}}}},
			{"evt_r3", "refund.created", refund("re_wait", "pending", pi)},
			{"evt_r4", "refund.created", refund("re_other", "succeeded", "pi_not_ours")},
		} {
			body, sig := stripefake.SignedEvent(ev.id, ev.typ, ev.obj, time.Time{})
			if r := b.deliver(t, body, sig); r.status != http.StatusOK {
				t.Fatalf("%s %s: %d %s", ev.id, ev.typ, r.status, r.body)
			}
		}
		o, err := b.st.Order(ctx, orderID)
		if err != nil {
			t.Fatal(err)
		}
		refunds, totals, err := b.st.Refunds(ctx, o.RestaurantID, orderID)
		if err != nil {
			t.Fatal(err)
		}
		if len(refunds) != 1 || refunds[0].ProviderRefundID != "re_dash" || refunds[0].Amount != 500 ||
			refunds[0].Status != ladle.RefundSucceeded || refunds[0].Source != ladle.RefundSourceProvider {
			t.Fatalf("refunds %+v", refunds)
		}
		if totals.Refunded != 500 {
			t.Fatalf("totals %+v, want 500 refunded", totals)
		}
	})
}
