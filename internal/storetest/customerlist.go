package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(testCase{name: "Campaigns/ListCustomers", fn: testListCustomers})
}

// ListCustomers: a restaurant's customers only (never another's, whose
// suppression of the same address does not leak either), in id order,
// every one exactly once across pages, with consent and suppression; a
// search matches a part of the email or name, ignoring case, wildcards
// taken literally; bad queries are validation_failed.
func testListCustomers(t *testing.T, e *env) {
	s, f := e.seed()
	cs := doubleOptIn(t, s, f)
	rid, oid := f.Restaurant.ID, f.Other.ID

	rows := []ladle.CustomerImport{
		{Email: "zed@example.com", Name: "Zed Zimmer", MarketingOptIn: true},
		{Email: "a_b@example.com", Name: "Under Score"},
		{Email: "axb@example.com", Name: "Ex Bee"},
		{Email: "bounced@example.com", Name: "Bo Unce", MarketingOptIn: true},
		{Email: "shared@example.com", Name: "Shared Here"},
	}
	for i := range 105 {
		rows = append(rows, ladle.CustomerImport{Email: fmt.Sprintf("bulk%03d@example.com", i), Name: "Bulk Buyer"})
	}
	_, err := cs.ImportCustomers(ctx, rid, rows, now)
	ok(t, err)
	ok(t, cs.Suppress(ctx, rid, "bounced@example.com", ladle.SuppressHardBounce, now))
	tick(t, s, f, "pending@example.com", now) // pending: double opt-in is on
	// Another restaurant: its own customers, and a suppression of an
	// address that is not suppressed here.
	_, err = cs.ImportCustomers(ctx, oid, []ladle.CustomerImport{
		{Email: "foreign@example.com", Name: "Zed Foreign", MarketingOptIn: true},
		{Email: "shared@example.com", Name: "Shared There"},
	}, now)
	ok(t, err)
	ok(t, cs.Suppress(ctx, oid, "shared@example.com", ladle.SuppressComplaint, now))
	const total = 5 + 105 + 1

	list := func(q ladle.CustomerQuery) []ladle.Customer {
		t.Helper()
		page, err := cs.ListCustomers(ctx, rid, q)
		ok(t, err)
		return page
	}
	// all pages through the whole list, limit at a time.
	all := func(search string, limit int) []ladle.Customer {
		t.Helper()
		var out []ladle.Customer
		var after int64
		for range total + 2 {
			page := list(ladle.CustomerQuery{After: after, Search: search, Limit: limit})
			out = append(out, page...)
			if len(page) < limit {
				return out
			}
			after = page[len(page)-1].ID
		}
		t.Fatalf("paging with limit %d does not end", limit)
		return nil
	}

	// Pages: every customer once, ids ascending, none of the other
	// restaurant's.
	for _, limit := range []int{7, 37, 100} {
		got := all("", limit)
		if len(got) != total {
			t.Fatalf("limit %d: %d customers across pages, want %d", limit, len(got), total)
		}
		for i, c := range got {
			if i > 0 && c.ID <= got[i-1].ID {
				t.Fatalf("limit %d: id %d after %d: skipped or repeated", limit, c.ID, got[i-1].ID)
			}
			if c.Email == "foreign@example.com" || c.Name == "Shared There" || c.RestaurantID != rid {
				t.Fatalf("another restaurant's customer listed: %+v", c)
			}
		}
	}
	if n := len(list(ladle.CustomerQuery{})); n != ladle.DefaultCustomerLimit {
		t.Errorf("default page: %d customers, want %d", n, ladle.DefaultCustomerLimit)
	}
	if n := len(list(ladle.CustomerQuery{Limit: 1000})); n != ladle.MaxCustomerLimit {
		t.Errorf("a limit of 1000: %d customers, want %d", n, ladle.MaxCustomerLimit)
	}
	first := list(ladle.CustomerQuery{Limit: 100})
	if last := first[len(first)-1]; len(list(ladle.CustomerQuery{After: last.ID + 1_000_000})) != 0 {
		t.Error("customers after an id past the last one")
	}

	// Consent and suppression, as recorded.
	byEmail := map[string]ladle.Customer{}
	for _, c := range all("", 100) {
		byEmail[c.Email] = c
	}
	if c := byEmail["zed@example.com"]; !c.MarketingOptIn || c.ConsentAt == nil || !c.ConsentAt.Equal(now) ||
		c.ConsentSource != ladle.ConsentImport || c.Suppressed != "" || c.Name != "Zed Zimmer" {
		t.Errorf("opted-in customer: %+v", c)
	}
	if c := byEmail["pending@example.com"]; c.MarketingOptIn || c.ConsentPendingAt == nil || !c.ConsentPendingAt.Equal(now) {
		t.Errorf("pending customer: %+v", c)
	}
	if c := byEmail["bounced@example.com"]; c.Suppressed != ladle.SuppressHardBounce || !c.MarketingOptIn {
		t.Errorf("bounced customer: %+v", c)
	}
	if c := byEmail["shared@example.com"]; c.Suppressed != "" || c.Name != "Shared Here" {
		t.Errorf("the other restaurant's suppression or name leaked: %+v", c)
	}
	if c := byEmail["axb@example.com"]; c.MarketingOptIn || c.ConsentAt != nil || c.ConsentPendingAt != nil || c.Suppressed != "" {
		t.Errorf("customer without consent: %+v", c)
	}

	// Search: part of the email or the name, any case; the other
	// restaurant's "Zed Foreign" never.
	emails := func(page []ladle.Customer) []string {
		var out []string
		for _, c := range page {
			out = append(out, c.Email)
		}
		slices.Sort(out)
		return out
	}
	for search, want := range map[string][]string{
		"ZED":             {"zed@example.com"},
		"  zimm ":         {"zed@example.com"},
		"bee":             {"axb@example.com"},
		"a_b":             {"a_b@example.com"}, // _ is not a wildcard
		"%":               nil,                 // nor is %
		"PENDING@EXAMPLE": {"pending@example.com"},
		"foreign":         nil,
		"nobody":          nil,
	} {
		if got := emails(all(search, 10)); !slices.Equal(got, want) {
			t.Errorf("search %q: %v, want %v", search, got, want)
		}
	}
	if got := all("bulk", 10); len(got) != 105 {
		t.Errorf("search \"bulk\" across pages: %d customers, want 105", len(got))
	}

	// Bad queries.
	for _, q := range []ladle.CustomerQuery{
		{After: -1},
		{Search: strings.Repeat("x", ladle.MaxCustomerSearch+1)},
		{Search: "bad\xffutf8"},
		{Search: "nul\x00"},
	} {
		_, err := cs.ListCustomers(ctx, rid, q)
		wantCode(t, err, ladle.CodeValidation)
	}
	if got := list(ladle.CustomerQuery{Search: strings.Repeat("é", ladle.MaxCustomerSearch)}); len(got) != 0 {
		t.Errorf("a search of %d characters: %+v", ladle.MaxCustomerSearch, got)
	}
	if other, err := cs.ListCustomers(ctx, oid, ladle.CustomerQuery{}); err != nil || len(other) != 2 {
		t.Fatalf("the other restaurant's list: %d customers, %v; want its 2", len(other), err)
	}
	if none, err := cs.ListCustomers(ctx, 1<<40, ladle.CustomerQuery{}); err != nil || len(none) != 0 {
		t.Fatalf("an unknown restaurant's list: %+v, %v", none, err)
	}
}
