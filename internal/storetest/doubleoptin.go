package storetest

import (
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(
		testCase{name: "Campaigns/DoubleOptIn", fn: testDoubleOptIn},
		testCase{name: "Campaigns/DoubleOptInSuppressed", fn: testDoubleOptInSuppressed},
		testCase{name: "Campaigns/DoubleOptInImport", fn: testDoubleOptInImport},
		testCase{name: "Campaigns/ConsentCounts", fn: testConsentCounts},
	)
}

// doubleOptIn turns double opt-in on for the fixture's restaurant and
// returns the campaign store.
func doubleOptIn(t *testing.T, s ladle.Store, f *Fixture) ladle.CampaignStore {
	t.Helper()
	cs := campaignStore(t, s)
	ok(t, cs.SetDoubleOptIn(ctx, f.Restaurant.ID, true))
	r, err := s.RestaurantByID(ctx, f.Restaurant.ID)
	ok(t, err)
	if !r.DoubleOptIn {
		t.Fatal("double opt-in set, but the restaurant does not say so")
	}
	wantNotFound(t, cs.SetDoubleOptIn(ctx, 1<<40, true))
	return cs
}

// tick places an order of email with the marketing box ticked at when.
func tick(t *testing.T, s ladle.Store, f *Fixture, email string, when time.Time) *ladle.Order {
	t.Helper()
	req := withEmail(f, email)
	req.MarketingOptIn = true
	req.Customer.Phone = "+1555" + when.Format("150405") // a new fingerprint each time
	return place(t, s, f, req, func() time.Time { return when })
}

func customer(t *testing.T, cs ladle.CampaignStore, rid int64, email string) *ladle.Customer {
	t.Helper()
	c, err := cs.CustomerByEmail(ctx, rid, email)
	ok(t, err)
	return c
}

func audience(t *testing.T, cs ladle.CampaignStore, rid int64) int64 {
	t.Helper()
	n, err := cs.AudienceSize(ctx, rid, ladle.Audience{}, now)
	ok(t, err)
	return n
}

func testDoubleOptIn(t *testing.T, e *env) {
	s, f := e.seed()
	cs := doubleOptIn(t, s, f)
	rid := f.Restaurant.ID
	_, err := cs.ImportCustomers(ctx, rid, []ladle.CustomerImport{{Email: "imported@example.com", Name: "Imp", MarketingOptIn: true}}, now)
	ok(t, err)

	// Ticked under double opt-in: pending, in no audience.
	o := tick(t, s, f, "guest@example.com", now)
	if !o.MarketingOptIn {
		t.Fatal("the order does not record the ticked box")
	}
	c := customer(t, cs, rid, "guest@example.com")
	if c.MarketingOptIn || c.ConsentAt != nil || c.ConsentPendingAt == nil || !c.ConsentPendingAt.Equal(now) ||
		c.Consent() != ladle.ConsentPending {
		t.Fatalf("after a tick under double opt-in: %+v", c)
	}
	if n := audience(t, cs, rid); n != 1 {
		t.Fatalf("audience %d, want 1 (the imported customer only)", n)
	}
	if in, pending, err := cs.ConsentCounts(ctx, rid); err != nil || in != 1 || pending != 1 {
		t.Fatalf("consent counts: %d opted in, %d pending, %v", in, pending, err)
	}
	// Enumeration leaves them out as well.
	camp := &ladle.Campaign{ID: newID(), RestaurantID: rid, Name: "n", Subject: "s", Text: "t", Audience: ladle.Audience{Segment: "opted_in"}}
	ok(t, cs.CreateCampaign(ctx, camp))
	_, err = cs.MoveCampaign(ctx, rid, camp.ID, ladle.CampaignSending, now)
	ok(t, err)
	got, err := cs.EnumerateRecipients(ctx, rid, camp.ID, 0, 100, now)
	ok(t, err)
	if got.Total != 1 {
		t.Fatalf("enumerated %d recipients, want 1", got.Total)
	}

	// One confirmation email per customer per interval; a redelivery of
	// the event that claimed it may claim it again.
	claim := func(ev string, at time.Time) bool {
		t.Helper()
		c, err := cs.ClaimConfirmEmail(ctx, rid, o.CustomerID, ev, at)
		ok(t, err)
		if c != nil && c.Email != "guest@example.com" {
			t.Fatalf("claimed for %+v", c)
		}
		return c != nil
	}
	if !claim("ev1", now) || !claim("ev1", now.Add(time.Minute)) {
		t.Fatal("the first event's claim (or its redelivery) refused")
	}
	if claim("ev2", now.Add(time.Hour)) {
		t.Fatal("a second confirmation email within the interval")
	}
	if !claim("ev3", now.Add(ladle.ConfirmEmailInterval+time.Hour)) {
		t.Fatal("no new confirmation email after the interval")
	}
	if c, err := cs.ClaimConfirmEmail(ctx, f.Other.ID, o.CustomerID, "ev4", now.Add(72*time.Hour)); err != nil || c != nil {
		t.Fatalf("another restaurant claimed this customer: %+v, %v", c, err)
	}

	// Another restaurant's confirmation confirms nothing here.
	out, err := cs.ConfirmConsent(ctx, f.Other.ID, "guest@example.com", now)
	ok(t, err)
	if out != ladle.ConfirmNothing {
		t.Fatalf("confirm at the other restaurant: %v", out)
	}
	at := now.Add(2 * time.Hour)
	out, err = cs.ConfirmConsent(ctx, rid, "Guest@example.com", at)
	ok(t, err)
	if out != ladle.ConfirmDone {
		t.Fatalf("confirm: %v, want done", out)
	}
	c = customer(t, cs, rid, "guest@example.com")
	if !c.MarketingOptIn || c.ConsentSource != ladle.ConsentCheckout || c.ConsentAt == nil || !c.ConsentAt.Equal(at) ||
		c.ConsentConfirmedAt == nil || !c.ConsentConfirmedAt.Equal(at) || c.ConsentPendingAt != nil || c.Consent() != ladle.ConsentOptedIn {
		t.Fatalf("after confirming: %+v", c)
	}
	if n := audience(t, cs, rid); n != 2 {
		t.Fatalf("audience %d after confirming, want 2", n)
	}
	// Confirming again changes nothing.
	out, err = cs.ConfirmConsent(ctx, rid, "guest@example.com", at.Add(time.Hour))
	ok(t, err)
	if c2 := customer(t, cs, rid, "guest@example.com"); out != ladle.ConfirmedAlready || !c2.ConsentAt.Equal(at) {
		t.Fatalf("second confirm: %v, %+v", out, c2)
	}
	if claim("ev5", now.Add(100*time.Hour)) {
		t.Fatal("a confirmation email for a customer who is opted in")
	}
	// Never asked: nothing to confirm.
	out, err = cs.ConfirmConsent(ctx, rid, "nobody@example.com", at)
	ok(t, err)
	if out != ladle.ConfirmNothing {
		t.Fatalf("confirm for an unknown address: %v", out)
	}

	// Without double opt-in a tick is consent at once, and settles a
	// pending one.
	tick(t, s, f, "later@example.com", now)
	ok(t, cs.SetDoubleOptIn(ctx, rid, false))
	if c := customer(t, cs, rid, "later@example.com"); c.Consent() != ladle.ConsentPending {
		t.Fatalf("turning double opt-in off confirmed a pending customer: %+v", c)
	}
	tick(t, s, f, "later@example.com", now.Add(time.Minute))
	if c := customer(t, cs, rid, "later@example.com"); !c.MarketingOptIn || c.ConsentPendingAt != nil || c.ConsentConfirmedAt != nil {
		t.Fatalf("a tick without double opt-in: %+v", c)
	}

	list, err := cs.ListCustomers(ctx, rid, ladle.CustomerQuery{Limit: 10})
	ok(t, err)
	if len(list) != 3 || list[0].Email != "imported@example.com" || list[2].Email != "later@example.com" {
		t.Fatalf("customers: %+v", list)
	}
	if next, err := cs.ListCustomers(ctx, rid, ladle.CustomerQuery{After: list[1].ID, Limit: 10}); err != nil || len(next) != 1 || next[0].ID != list[2].ID {
		t.Fatalf("customers after %d: %+v, %v", list[1].ID, next, err)
	}
	if other, err := cs.ListCustomers(ctx, f.Other.ID, ladle.CustomerQuery{Limit: 10}); err != nil || len(other) != 0 {
		t.Fatalf("the other restaurant's customers: %+v, %v", other, err)
	}
}

// An unsubscribed address is never opted in again silently: a tick at
// checkout without double opt-in leaves it suppressed; with it, the guest
// gets a confirmation email and confirming lifts the unsubscribe. A hard
// bounce gets no confirmation email.
func testDoubleOptInSuppressed(t *testing.T, e *env) {
	s, f := e.seed()
	cs := campaignStore(t, s)
	rid := f.Restaurant.ID
	tick(t, s, f, "gone@example.com", now)
	ok(t, cs.Suppress(ctx, rid, "gone@example.com", ladle.SuppressUnsubscribed, now))
	tick(t, s, f, "gone@example.com", now.Add(time.Minute))
	if c := customer(t, cs, rid, "gone@example.com"); c.Consent() != ladle.ConsentUnsubscribed || audience(t, cs, rid) != 0 {
		t.Fatalf("a tick re-opted in an unsubscribed address: %+v", c)
	}

	cs = doubleOptIn(t, s, f)
	o := tick(t, s, f, "gone@example.com", now.Add(2*time.Minute))
	c, err := cs.ClaimConfirmEmail(ctx, rid, o.CustomerID, "ev1", now)
	ok(t, err)
	if c == nil || audience(t, cs, rid) != 0 {
		t.Fatalf("an unsubscribed guest who ticked again: claim %+v", c)
	}
	out, err := cs.ConfirmConsent(ctx, rid, "gone@example.com", now)
	ok(t, err)
	if why, _ := cs.Suppressed(ctx, rid, "gone@example.com"); out != ladle.ConfirmDone || why != "" || audience(t, cs, rid) != 1 {
		t.Fatalf("confirmed: %v, suppressed %q", out, why)
	}

	b := tick(t, s, f, "bounced@example.com", now)
	ok(t, cs.Suppress(ctx, rid, "bounced@example.com", ladle.SuppressHardBounce, now))
	if c, err := cs.ClaimConfirmEmail(ctx, rid, b.CustomerID, "ev2", now); err != nil || c != nil {
		t.Fatalf("a confirmation email to a bounced address: %+v, %v", c, err)
	}
	out, err = cs.ConfirmConsent(ctx, rid, "bounced@example.com", now)
	ok(t, err)
	if why, _ := cs.Suppressed(ctx, rid, "bounced@example.com"); out != ladle.ConfirmDone || why != ladle.SuppressHardBounce || audience(t, cs, rid) != 1 {
		t.Fatalf("a bounce was lifted: %v, %q", out, why)
	}
}

// An import is the restaurant's word: it settles pending consent either
// way, and lifts no suppression.
func testDoubleOptInImport(t *testing.T, e *env) {
	s, f := e.seed()
	cs := doubleOptIn(t, s, f)
	rid := f.Restaurant.ID
	tick(t, s, f, "yes@example.com", now)
	tick(t, s, f, "no@example.com", now)
	_, err := cs.ImportCustomers(ctx, rid, []ladle.CustomerImport{{Email: "gone@example.com", Name: "Gone"}}, now)
	ok(t, err)
	ok(t, cs.Suppress(ctx, rid, "gone@example.com", ladle.SuppressUnsubscribed, now))
	rows := []ladle.CustomerImport{
		{Email: "yes@example.com", Name: "Yes", MarketingOptIn: true},
		{Email: "no@example.com", Name: "No"},
		{Email: "gone@example.com", Name: "Gone", MarketingOptIn: true},
		{Email: "new@example.com", Name: "New", MarketingOptIn: true},
	}
	out, err := cs.ImportCustomers(ctx, rid, rows, now)
	ok(t, err)
	if out[0] != ladle.ImportUpdated || out[1] != ladle.ImportUpdated {
		t.Fatalf("import over pending consent: %v", out)
	}
	for email, want := range map[string]string{"yes@example.com": ladle.ConsentOptedIn, "no@example.com": ladle.ConsentNone,
		"gone@example.com": ladle.ConsentUnsubscribed, "new@example.com": ladle.ConsentOptedIn} {
		if c := customer(t, cs, rid, email); c.Consent() != want || c.ConsentPendingAt != nil {
			t.Errorf("%s after import: %s (%+v), want %s", email, c.Consent(), c, want)
		}
	}
	if c := customer(t, cs, rid, "yes@example.com"); c.ConsentSource != ladle.ConsentImport || c.ConsentConfirmedAt != nil {
		t.Errorf("imported consent: %+v", c)
	}
	if n := audience(t, cs, rid); n != 2 {
		t.Fatalf("audience %d, want 2 (yes@, new@)", n)
	}
	if out, err := cs.ImportCustomers(ctx, rid, rows, now); err != nil || out[0] != ladle.ImportUnchanged || out[1] != ladle.ImportUnchanged {
		t.Fatalf("the same import again: %v, %v", out, err)
	}
}

// testConsentCounts: the campaigns page's counts are the opted-in
// customers who are not suppressed (for any reason), and the customers
// whose double opt-in is pending, of this restaurant only; a suppression
// of an address that is not a customer, or not opted in, or of another
// restaurant's customer, takes nobody away.
func testConsentCounts(t *testing.T, e *env) {
	s, f := e.seed()
	cs := doubleOptIn(t, s, f)
	rid, other := f.Restaurant.ID, f.Other.ID
	imp := func(rid int64, optIn bool, emails ...string) {
		t.Helper()
		var rows []ladle.CustomerImport
		for _, e := range emails {
			rows = append(rows, ladle.CustomerImport{Email: e, Name: "N", MarketingOptIn: optIn})
		}
		_, err := cs.ImportCustomers(ctx, rid, rows, now)
		ok(t, err)
	}
	counts := func(rid int64, wantIn, wantPending int64) {
		t.Helper()
		in, pending, err := cs.ConsentCounts(ctx, rid)
		ok(t, err)
		if in != wantIn || pending != wantPending {
			t.Fatalf("restaurant %d: %d opted in, %d pending; want %d, %d", rid, in, pending, wantIn, wantPending)
		}
	}
	imp(rid, true, "a@example.com", "b@example.com", "c@example.com", "d@example.com")
	imp(rid, false, "e@example.com")
	imp(other, true, "a@example.com", "f@example.com")
	tick(t, s, f, "pending@example.com", now)
	counts(rid, 4, 1)
	counts(other, 2, 0)

	ok(t, cs.Suppress(ctx, rid, "b@example.com", ladle.SuppressUnsubscribed, now))
	ok(t, cs.Suppress(ctx, rid, "C@Example.com", ladle.SuppressHardBounce, now))
	ok(t, cs.Suppress(ctx, rid, "e@example.com", ladle.SuppressUnsubscribed, now))   // not opted in
	ok(t, cs.Suppress(ctx, rid, "nobody@example.com", ladle.SuppressComplaint, now)) // not a customer
	ok(t, cs.Suppress(ctx, other, "d@example.com", ladle.SuppressUnsubscribed, now)) // another restaurant's
	counts(rid, 2, 1)
	counts(other, 2, 0)
	if n := audience(t, cs, rid); n != 2 {
		t.Fatalf("audience %d, want 2, the opted-in count", n)
	}
}
