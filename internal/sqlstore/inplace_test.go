package sqlstore_test

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/storetest"
)

// TestCampaignSendsUpdateInPlace: on PostgreSQL a send record's claim and
// its sent mark are heap-only (HOT) updates, which add no index entry
// (migration 0065). That takes two things the test checks: no index of
// campaign_sends reads a column a send changes (a new index on status would
// silently double the campaign's index writes), and the table's pages keep
// room for a row's next version. Then it claims and marks 300 records
// through the store and reads the table's counters: with the index of
// before 0065 none of the 600 updates was HOT; here the claims at least
// must be (the sent marks too, unless another test's open transaction
// keeps the claimed versions from being pruned).
func TestCampaignSendsUpdateInPlace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := freshSchema(t)
	s := open(t, url)
	db := s.DB()

	rows, err := db.QueryContext(ctx, `SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'campaign_sends'::regclass`)
	if err != nil {
		t.Fatal(err)
	}
	changed := regexp.MustCompile(`\b(status|reason|attempts|due_at|sent_at)\b`)
	n := 0
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			t.Fatal(err)
		}
		n++
		if m := changed.FindString(def); m != "" {
			t.Errorf("index reads %s, which sending a record changes: %s", m, def)
		}
	}
	if err := rows.Err(); err != nil || n < 2 {
		t.Fatalf("indexes of campaign_sends: %d, %v", n, err)
	}
	var opts string
	if err := db.QueryRowContext(ctx, `SELECT coalesce(array_to_string(reloptions, ','), '') FROM pg_class
		WHERE oid = 'campaign_sends'::regclass`).Scan(&opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(opts, "fillfactor=50") {
		t.Errorf("campaign_sends options %q, want fillfactor=50", opts)
	}

	f := storetest.Seed(t, s)
	rid := f.Restaurant.ID
	var imports []ladle.CustomerImport
	for i := range 300 {
		imports = append(imports, ladle.CustomerImport{Email: fmt.Sprintf("c%03d@example.com", i), Name: fmt.Sprintf("Customer %d", i), MarketingOptIn: true})
	}
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := s.ImportCustomers(ctx, rid, imports, now); err != nil {
		t.Fatal(err)
	}
	c := &ladle.Campaign{ID: "c-inplace", RestaurantID: rid, Name: "In place", Subject: "Hi", HTML: "<p>Hi</p>", Text: "Hi"}
	if err := s.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MoveCampaign(ctx, rid, c.ID, ladle.CampaignSending, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnumerateRecipients(ctx, rid, c.ID, 0, 1000, now); err != nil {
		t.Fatal(err)
	}
	sends, err := s.ClaimSends(ctx, ladle.SendClaim{RestaurantID: rid, CampaignID: c.ID, From: 0, To: math.MaxInt64,
		Limit: 300, Now: now, Lease: time.Minute})
	if err != nil || len(sends) != 300 {
		t.Fatalf("claimed %d, %v", len(sends), err)
	}
	results := make([]ladle.SendResult, len(sends))
	for i, sd := range sends {
		results[i] = ladle.SendResult{CustomerID: sd.CustomerID, Status: ladle.SendSent}
	}
	if err := s.FinishSends(ctx, rid, c.ID, results, now); err != nil {
		t.Fatal(err)
	}
	// A backend reports its table counters when it ends: close the store,
	// then read them on a connection of a new one.
	s.Close()
	s2 := open(t, url)
	var upd, hot int64
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := s2.DB().QueryRowContext(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
			WHERE schemaname = current_schema() AND relname = 'campaign_sends'`).Scan(&upd, &hot); err != nil {
			t.Fatal(err)
		}
		if upd >= 600 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("campaign_sends: %d updates, %d of them HOT", upd, hot)
	if upd < 600 {
		t.Fatalf("campaign_sends: %d updates counted in 30 s, want 600 (300 claims, 300 sent marks)", upd)
	}
	if hot < upd*45/100 {
		t.Fatalf("campaign_sends: %d of %d updates HOT, want at least the claims", hot, upd)
	}
}
