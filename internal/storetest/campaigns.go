package storetest

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(
		testCase{name: "Campaigns/ImportIdempotent", fn: testImportIdempotent},
		testCase{name: "Campaigns/CheckoutConsent", fn: testCheckoutConsent},
		testCase{name: "Campaigns/AudienceFilters", fn: testAudienceFilters},
		testCase{name: "Campaigns/Lifecycle", fn: testCampaignLifecycle},
		testCase{name: "Campaigns/SendRecords", fn: testSendRecords},
		testCase{name: "Campaigns/TenantScoped", fn: testCampaignTenantScoped},
		testCase{name: "Campaigns/APITokens", fn: testAPITokens},
	)
}

func campaignStore(t *testing.T, s ladle.Store) ladle.CampaignStore {
	t.Helper()
	cs, isCS := s.(ladle.CampaignStore)
	if !isCS {
		t.Fatalf("%T does not implement ladle.CampaignStore", s)
	}
	return cs
}

func testImportIdempotent(t *testing.T, e *env) {
	s, f := e.seed()
	cs := campaignStore(t, s)
	rid := f.Restaurant.ID
	rows := []ladle.CustomerImport{
		{Email: "a@example.com", Name: "Ada", MarketingOptIn: true},
		{Email: "b@example.com", Name: "Bob", Phone: "+15550101"},
	}
	out, err := cs.ImportCustomers(ctx, rid, rows, now)
	ok(t, err)
	if out[0] != ladle.ImportCreated || out[1] != ladle.ImportCreated {
		t.Fatalf("first import: %v", out)
	}
	out, err = cs.ImportCustomers(ctx, rid, rows, now.Add(time.Hour))
	ok(t, err)
	if out[0] != ladle.ImportUnchanged || out[1] != ladle.ImportUnchanged {
		t.Fatalf("same rows again: %v, want unchanged", out)
	}
	c, err := cs.CustomerByEmail(ctx, rid, "a@example.com")
	ok(t, err)
	if !c.MarketingOptIn || c.ConsentSource != ladle.ConsentImport || c.ConsentAt == nil || !c.ConsentAt.Equal(now) {
		t.Fatalf("consent after import: %+v", c)
	}
	// Withdrawing consent is an update, and clears the consent record.
	out, err = cs.ImportCustomers(ctx, rid, []ladle.CustomerImport{{Email: "a@example.com", Name: "Ada"}}, now)
	ok(t, err)
	if out[0] != ladle.ImportUpdated {
		t.Fatalf("withdraw: %v", out)
	}
	c, err = cs.CustomerByEmail(ctx, rid, "a@example.com")
	ok(t, err)
	if c.MarketingOptIn || c.ConsentAt != nil {
		t.Fatalf("after withdrawal: %+v", c)
	}
	// The other restaurant does not see them.
	_, err = cs.CustomerByEmail(ctx, f.Other.ID, "a@example.com")
	wantNotFound(t, err)
}

func testCheckoutConsent(t *testing.T, e *env) {
	s, f := e.seed()
	cs := campaignStore(t, s)
	req := withEmail(f, "guest@example.com")
	req.MarketingOptIn = true
	place(t, s, f, req)
	c, err := cs.CustomerByEmail(ctx, f.Restaurant.ID, "guest@example.com")
	ok(t, err)
	if !c.MarketingOptIn || c.ConsentSource != ladle.ConsentCheckout || c.ConsentAt == nil || !c.ConsentAt.Equal(now) {
		t.Fatalf("consent from checkout: %+v", c)
	}
}

func testAudienceFilters(t *testing.T, e *env) {
	s, f := e.seed()
	cs := campaignStore(t, s)
	rid := f.Restaurant.ID
	// Two guests who opted in at checkout: one ordered twice (at now and
	// 40 days before), one once 40 days before; a third did not opt in.
	old := func() time.Time { return now.Add(-40 * 24 * time.Hour) }
	r1 := withEmail(f, "twice@example.com")
	r1.MarketingOptIn = true
	place(t, s, f, r1, old)
	r1b := withEmail(f, "twice@example.com")
	r1b.Customer.Phone = "+15550199" // another fingerprint
	place(t, s, f, r1b)
	r2 := withEmail(f, "once@example.com")
	r2.MarketingOptIn = true
	place(t, s, f, r2, old)
	place(t, s, f, withEmail(f, "noconsent@example.com"))
	_, err := cs.ImportCustomers(ctx, rid, []ladle.CustomerImport{{Email: "imported@example.com", Name: "Imp", MarketingOptIn: true}}, now)
	ok(t, err)

	size := func(a ladle.Audience) int64 {
		t.Helper()
		n, err := cs.AudienceSize(ctx, rid, a, now)
		ok(t, err)
		return n
	}
	since := now.Add(-7 * 24 * time.Hour)
	for _, c := range []struct {
		name string
		a    ladle.Audience
		want int64
	}{
		{"opted in", ladle.Audience{}, 3},
		{"within 30 days", ladle.Audience{OrderedWithinDays: 30}, 1},
		{"within 60 days", ladle.Audience{OrderedWithinDays: 60}, 2},
		{"at least 2 orders", ladle.Audience{MinOrders: 2}, 1},
		{"not since a week", ladle.Audience{NotOrderedSince: &since}, 2}, // once@ and imported@
	} {
		if got := size(c.a); got != c.want {
			t.Errorf("%s: audience %d, want %d", c.name, got, c.want)
		}
	}
	ok(t, cs.Suppress(ctx, rid, "Imported@example.com", ladle.SuppressUnsubscribed, now))
	if got := size(ladle.Audience{}); got != 2 {
		t.Errorf("after suppressing one: %d, want 2", got)
	}
	why, err := cs.Suppressed(ctx, rid, "imported@example.com")
	ok(t, err)
	if why != ladle.SuppressUnsubscribed {
		t.Errorf("suppressed: %q", why)
	}
	if n, err := cs.AudienceSize(ctx, f.Other.ID, ladle.Audience{}, now); err != nil || n != 0 {
		t.Errorf("other restaurant's audience: %d, %v", n, err)
	}
}

func newCampaign(t *testing.T, cs ladle.CampaignStore, rid int64) *ladle.Campaign {
	t.Helper()
	c := &ladle.Campaign{ID: newID(), RestaurantID: rid, Name: "Spring", Subject: "Hi {{.Name}}", HTML: "<p>Hi</p>", Text: "Hi"}
	ok(t, cs.CreateCampaign(ctx, c))
	return c
}

func testCampaignLifecycle(t *testing.T, e *env) {
	s, f := e.seed()
	cs := campaignStore(t, s)
	rid := f.Restaurant.ID
	c := newCampaign(t, cs, rid)
	if c.Status != ladle.CampaignDraft {
		t.Fatalf("new campaign: %s", c.Status)
	}
	_, err := cs.MoveCampaign(ctx, rid, c.ID, ladle.CampaignPaused, now)
	wantCode(t, err, ladle.CodeInvalidTransition)
	got, err := cs.ScheduleCampaign(ctx, rid, c.ID, now.Add(time.Hour))
	ok(t, err)
	if got.Status != ladle.CampaignScheduled || got.ScheduledAt == nil {
		t.Fatalf("scheduled: %+v", got)
	}
	due, err := cs.DueCampaigns(ctx, now.Add(2*time.Hour), 10)
	ok(t, err)
	if len(due) != 1 || due[0].ID != c.ID {
		t.Fatalf("due: %+v", due)
	}
	got, err = cs.MoveCampaign(ctx, rid, c.ID, ladle.CampaignSending, now)
	ok(t, err)
	if got.Status != ladle.CampaignSending || got.Generation != 1 || got.StartedAt == nil {
		t.Fatalf("sending: %+v", got)
	}
	got, err = cs.MoveCampaign(ctx, rid, c.ID, ladle.CampaignPaused, now)
	ok(t, err)
	got, err = cs.MoveCampaign(ctx, rid, c.ID, ladle.CampaignSending, now)
	ok(t, err)
	if got.Generation != 2 {
		t.Fatalf("resume generation %d, want 2", got.Generation)
	}
	got, err = cs.MoveCampaign(ctx, rid, c.ID, ladle.CampaignCancelled, now)
	ok(t, err)
	if got.FinishedAt == nil {
		t.Fatal("cancelled without finished_at")
	}
	_, err = cs.MoveCampaign(ctx, rid, c.ID, ladle.CampaignSending, now)
	wantCode(t, err, ladle.CodeInvalidTransition)
	list, err := cs.Campaigns(ctx, rid, 10)
	ok(t, err)
	if len(list) != 1 || list[0].Status != ladle.CampaignCancelled {
		t.Fatalf("list: %+v", list)
	}
}

func testSendRecords(t *testing.T, e *env) {
	s, f := e.seed()
	cs := campaignStore(t, s)
	rid := f.Restaurant.ID
	var rows []ladle.CustomerImport
	for i := range 7 {
		rows = append(rows, ladle.CustomerImport{Email: fmt.Sprintf("c%d@example.com", i), Name: fmt.Sprintf("C%d", i), MarketingOptIn: true})
	}
	rows = append(rows, ladle.CustomerImport{Email: "no@example.com", Name: "No"})
	_, err := cs.ImportCustomers(ctx, rid, rows, now)
	ok(t, err)
	c := newCampaign(t, cs, rid)
	_, err = cs.MoveCampaign(ctx, rid, c.ID, ladle.CampaignSending, now)
	ok(t, err)

	// Enumerate in pages of 3: 3, 3, 1 (then enumerated).
	var got *ladle.Campaign
	cursor := int64(0)
	for range 3 {
		got, err = cs.EnumerateRecipients(ctx, rid, c.ID, cursor, 3, now)
		ok(t, err)
		cursor = got.Cursor
	}
	if got.Total != 7 || !got.Enumerated {
		t.Fatalf("after enumeration: total %d enumerated %v", got.Total, got.Enumerated)
	}
	// A stale enumerator (old cursor) changes nothing.
	again, err := cs.EnumerateRecipients(ctx, rid, c.ID, 0, 3, now)
	ok(t, err)
	if again.Total != 7 {
		t.Fatalf("stale enumeration changed total to %d", again.Total)
	}
	ids, err := cs.SendIDs(ctx, rid, c.ID, 0, 1<<62, []ladle.SendStatus{ladle.SendPending}, 100)
	ok(t, err)
	if len(ids) != 7 {
		t.Fatalf("pending ids: %v", ids)
	}
	lo, hi := ids[0], ids[len(ids)-1]
	claim := ladle.SendClaim{RestaurantID: rid, CampaignID: c.ID, From: lo, To: hi, Limit: 5, Now: now, Lease: time.Minute}
	first, err := cs.ClaimSends(ctx, claim)
	ok(t, err)
	if len(first) != 5 || first[0].CustomerID != lo || first[0].Attempts != 1 {
		t.Fatalf("claim: %+v", first)
	}
	second, err := cs.ClaimSends(ctx, claim)
	ok(t, err)
	if len(second) != 2 {
		t.Fatalf("second claim got %d, want the 2 left", len(second))
	}
	// All claimed and leased: nothing until the lease runs out.
	none, err := cs.ClaimSends(ctx, claim)
	ok(t, err)
	if len(none) != 0 {
		t.Fatalf("claimed leased records: %+v", none)
	}
	stale := claim
	stale.Now = now.Add(2 * time.Minute)
	stale.From, stale.To = second[1].CustomerID, second[1].CustomerID
	re, err := cs.ClaimSends(ctx, stale)
	ok(t, err)
	if len(re) != 1 || re[0].Attempts != 2 {
		t.Fatalf("reclaim after lease: %+v", re)
	}

	results := []ladle.SendResult{
		{CustomerID: first[0].CustomerID, Status: ladle.SendSent},
		{CustomerID: first[1].CustomerID, Status: ladle.SendSent},
		{CustomerID: first[2].CustomerID, Status: ladle.SendFailed, Reason: "550 no such user", Suppress: ladle.SuppressHardBounce},
		{CustomerID: first[3].CustomerID, Status: ladle.SendSkipped, Reason: "unsubscribed"},
		{CustomerID: first[4].CustomerID, Status: ladle.SendPending, Reason: "451 later", RetryAt: now.Add(time.Minute)},
	}
	ok(t, cs.FinishSends(ctx, rid, c.ID, results, now))
	// Finishing again (a redelivery) counts nothing twice.
	ok(t, cs.FinishSends(ctx, rid, c.ID, results, now))
	got, err = cs.Campaign(ctx, rid, c.ID)
	ok(t, err)
	if got.Sent != 2 || got.Failed != 1 || got.Skipped != 1 || got.Pending() != 3 || got.Status != ladle.CampaignSending {
		t.Fatalf("counts: sent %d failed %d skipped %d pending %d status %s", got.Sent, got.Failed, got.Skipped, got.Pending(), got.Status)
	}
	if why, _ := cs.Suppressed(ctx, rid, first[2].Email); why != ladle.SuppressHardBounce {
		t.Fatalf("hard bounce not suppressed: %q", why)
	}
	failed, err := cs.Sends(ctx, rid, c.ID, ladle.SendFailed, 0, 10)
	ok(t, err)
	if len(failed) != 1 || failed[0].Reason != "550 no such user" {
		t.Fatalf("failed list: %+v", failed)
	}
	// The retried one is due in a minute.
	due, found, err := cs.NextDue(ctx, rid, c.ID, first[4].CustomerID, first[4].CustomerID)
	ok(t, err)
	if !found || !due.Equal(now.Add(time.Minute)) {
		t.Fatalf("next due %v %v", due, found)
	}
	// Send the rest: the campaign is done.
	rest := []ladle.SendResult{}
	for _, sd := range second {
		rest = append(rest, ladle.SendResult{CustomerID: sd.CustomerID, Status: ladle.SendSent})
	}
	ok(t, cs.FinishSends(ctx, rid, c.ID, rest, now))
	later := claim
	later.Now = now.Add(time.Minute)
	last, err := cs.ClaimSends(ctx, later)
	ok(t, err)
	if len(last) != 1 {
		t.Fatalf("retry claim: %+v", last)
	}
	ok(t, cs.FinishSends(ctx, rid, c.ID, []ladle.SendResult{{CustomerID: last[0].CustomerID, Status: ladle.SendSent}}, now))
	got, err = cs.Campaign(ctx, rid, c.ID)
	ok(t, err)
	if got.Status != ladle.CampaignDone || got.Sent != 5 || got.Failed != 1 || got.FinishedAt == nil {
		t.Fatalf("end: %+v", got)
	}
	// A chunk recorded again after its records were taken over and
	// recorded by another worker (all sent, the one-statement path on
	// PostgreSQL) counts nothing twice.
	ok(t, cs.FinishSends(ctx, rid, c.ID, rest, now))
	if got, err = cs.Campaign(ctx, rid, c.ID); err != nil || got.Sent != 5 {
		t.Fatalf("recorded twice: sent %d (%v)", got.Sent, err)
	}
	n, got, err := cs.RetryFailed(ctx, rid, c.ID, now)
	ok(t, err)
	if n != 1 || got.Status != ladle.CampaignSending || got.Failed != 0 || got.Generation != 2 {
		t.Fatalf("retry failed: n %d %+v", n, got)
	}
}

func testCampaignTenantScoped(t *testing.T, e *env) {
	s, f := e.seed()
	cs := campaignStore(t, s)
	c := newCampaign(t, cs, f.Restaurant.ID)
	_, err := cs.Campaign(ctx, f.Other.ID, c.ID)
	wantNotFound(t, err)
	_, err = cs.MoveCampaign(ctx, f.Other.ID, c.ID, ladle.CampaignSending, now)
	wantNotFound(t, err)
	_, err = cs.EnumerateRecipients(ctx, f.Other.ID, c.ID, 0, 10, now)
	wantNotFound(t, err)
}

func testAPITokens(t *testing.T, e *env) {
	s, f := e.seed()
	cs := campaignStore(t, s)
	hash := sha256.Sum256([]byte("secret-" + newID()))
	tok := &ladle.APIToken{RestaurantID: f.Restaurant.ID, UserID: f.Owner.ID, Name: "ci"}
	ok(t, cs.CreateAPIToken(ctx, tok, hash[:]))
	if tok.ID == 0 || tok.Role != ladle.RoleOwner {
		t.Fatalf("token: %+v", tok)
	}
	got, err := cs.APITokenByHash(ctx, hash[:], now)
	ok(t, err)
	if got.RestaurantID != f.Restaurant.ID || got.Email != f.Owner.Email || got.Role != ladle.RoleOwner {
		t.Fatalf("by hash: %+v", got)
	}
	list, err := cs.APITokens(ctx, f.Restaurant.ID)
	ok(t, err)
	if len(list) != 1 || list[0].LastUsedAt == nil {
		t.Fatalf("list: %+v", list)
	}
	wantNotFound(t, cs.RevokeAPIToken(ctx, f.Other.ID, tok.ID, now))
	ok(t, cs.RevokeAPIToken(ctx, f.Restaurant.ID, tok.ID, now))
	_, err = cs.APITokenByHash(ctx, hash[:], now)
	wantNotFound(t, err)
	// Not a member of the other restaurant: no token there.
	err = cs.CreateAPIToken(ctx, &ladle.APIToken{RestaurantID: f.Other.ID, UserID: f.Owner.ID}, hash[:])
	wantNotFound(t, err)
}
