package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/payment/stripefake"
)

// TestOwnerPaymentSettings: an owner sets the restaurant's Stripe
// connected account; a bad id is a form error; staff get 403 and change
// nothing; another restaurant's staff get 404.
func TestOwnerPaymentSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	ctx := context.Background()
	owner := e.user("owner", e.fx.Restaurant.ID)
	if err := e.store.AddMembership(ctx, ladle.Membership{UserID: owner.ID, RestaurantID: e.fx.Restaurant.ID, Role: ladle.RoleOwner}); err != nil {
		t.Fatal(err)
	}
	page := "/admin/r/" + strconv.FormatInt(e.fx.Restaurant.ID, 10) + "/payments"
	account := func() string {
		a, err := e.store.PaymentAccount(ctx, e.fx.Restaurant.ID)
		if err != nil {
			t.Fatal(err)
		}
		return a.StripeAccount
	}

	staff := e.client()
	staff.login(e.staffA)
	staff.get(page).want(t, http.StatusForbidden, "Owners only")
	staff.post(page, url.Values{"stripe_account": {"acct_1Staff"}}).want(t, http.StatusForbidden)
	other := e.client()
	other.login(e.staffB)
	other.post(page, url.Values{"stripe_account": {"acct_1Other"}}).want(t, http.StatusNotFound)
	if a := account(); a != "" {
		t.Fatalf("account set by a non-owner: %q", a)
	}

	o := e.client()
	o.login(owner)
	o.post(page, url.Values{"stripe_account": {"cus_123"}}).want(t, http.StatusUnprocessableEntity, "not a Stripe account id")
	if res := o.post(page, url.Values{"stripe_account": {" acct_1Pizza "}}); res.status != http.StatusSeeOther {
		t.Fatalf("save: %d %s", res.status, res.body)
	}
	if a := account(); a != "acct_1Pizza" {
		t.Fatalf("account = %q", a)
	}
	o.get(page+"?saved=1").want(t, http.StatusOK, "acct_1Pizza", "Saved.")
}

// TestStripeJSOnlyWithPublishableKey: with a publishable key the checkout
// mounts Stripe's card element and the CSP allows js.stripe.com; without
// one, nothing of Stripe's is loaded or allowed.
func TestStripeJSOnlyWithPublishableKey(t *testing.T) {
	t.Parallel()
	with := newEnv(t, "sqlite", func(d *Deps) { d.StripePublishableKey = "pk_test_123" })
	res := with.client().get("/r/" + with.fx.Restaurant.Slug + "/checkout")
	res.want(t, http.StatusOK, `data-stripe-card`, `pk_test_123`, `https://js.stripe.com/v3/`)
	if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self' https://js.stripe.com") ||
		!strings.Contains(csp, "frame-src https://js.stripe.com https://hooks.stripe.com") {
		t.Fatalf("CSP with a key: %s", csp)
	}
	without := newEnv(t, "sqlite")
	res = without.client().get("/r/" + without.fx.Restaurant.Slug + "/checkout")
	res.want(t, http.StatusOK)
	res.wantNot(t, "js.stripe.com", "data-stripe-card")
	if csp := res.header.Get("Content-Security-Policy"); strings.Contains(csp, "stripe") {
		t.Fatalf("CSP without a key: %s", csp)
	}
}

// TestCheckoutThreeDSecure: with Stripe, a card that needs 3-D Secure
// answers the checkout with the payment action page (202): the intent's
// client secret and the confirm URL for Stripe.js, and the order stays
// pending. Once the guest authenticated, the confirm URL places it.
func TestCheckoutThreeDSecure(t *testing.T) {
	t.Parallel()
	fake := stripefake.New(t)
	var svc *ordering.Service
	e := newEnv(t, "sqlite", func(d *Deps) {
		p, err := payment.NewStripe(payment.StripeConfig{SecretKey: "sk_test_123", APIURL: fake.URL, NetworkRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		svc = ordering.New(d.Store, p, []byte("web-test-secret-0123456789abcdef"), ordering.WithLogger(quiet))
		d.Ordering = svc
		d.StripePublishableKey = "pk_test_123"
	})
	form := e.checkoutForm("3ds@example.com", newKey())
	form.Set("card_token", stripefake.CardThreeDS)
	res := e.client().post(e.checkoutPath(), form)
	intents := fake.Intents()
	if len(intents) != 1 {
		t.Fatalf("%d intents", len(intents))
	}
	pi := intents[0]
	res.want(t, http.StatusAccepted, "Confirm your payment", `data-client-secret="`+pi.ClientSecret+`"`,
		"/payment/confirm?token=", "https://js.stripe.com/v3/")
	orderID := pi.Metadata["order_id"]
	o, err := e.store.Order(context.Background(), orderID)
	if err != nil || o.Status != ladle.StatusPendingPayment {
		t.Fatalf("order while 3DS is pending: %+v, %v", o, err)
	}
	fake.Authenticate(pi.ID, true)
	done, err := svc.ResolvePayment(context.Background(), orderID, "")
	if err != nil || done.Status != http.StatusCreated || done.Order.Status != ladle.StatusPlaced {
		t.Fatalf("after authentication: %+v, %v", done, err)
	}
}
