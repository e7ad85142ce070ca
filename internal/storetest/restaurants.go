package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(
		testCase{name: "Restaurant/RoundTrip", fn: testRestaurantRoundTrip},
		testCase{name: "Restaurant/SlugTaken", fn: testRestaurantSlugTaken},
		testCase{name: "Restaurant/Invalid", fn: testRestaurantInvalid},
		testCase{name: "Staff/Users", fn: testUsers},
		testCase{name: "Staff/Memberships", fn: testMemberships},
		testCase{name: "Staff/Sessions", fn: testSessions},
	)
}

func testRestaurantRoundTrip(t *testing.T, e *env) {
	s := e.open(t)
	b := &ladle.Restaurant{Slug: "zucchini", Name: "Zucchini", Currency: "USD", TaxRateBP: 825,
		TimeZone: "America/New_York", Phone: "+15550100", Address: "1 Main St"}
	a := &ladle.Restaurant{Slug: "artichoke", Name: "Artichoke", Currency: "EUR", TaxRateBP: 0, TimeZone: "Europe/Paris"}
	ok(t, s.CreateRestaurant(ctx, b))
	ok(t, s.CreateRestaurant(ctx, a))
	if b.ID == 0 || b.CreatedAt.IsZero() || b.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreateRestaurant did not set ID/CreatedAt (UTC): %+v", b)
	}
	if b.MenuVersion < 1 {
		t.Fatalf("new restaurant has menu version %d", b.MenuVersion)
	}
	got, err := s.RestaurantByID(ctx, b.ID)
	ok(t, err)
	if *got != *b {
		t.Fatalf("RestaurantByID = %+v, want %+v", got, b)
	}
	got, err = s.RestaurantBySlug(ctx, "zucchini")
	ok(t, err)
	if *got != *b {
		t.Fatalf("RestaurantBySlug = %+v, want %+v", got, b)
	}
	all, err := s.Restaurants(ctx)
	ok(t, err)
	if len(all) != 2 || all[0].Slug != "artichoke" || all[1].Slug != "zucchini" {
		t.Fatalf("Restaurants not by name: %+v", all)
	}
	_, err = s.RestaurantByID(ctx, b.ID+a.ID+100)
	wantNotFound(t, err)
	_, err = s.RestaurantBySlug(ctx, "nope")
	wantNotFound(t, err)
}

func testRestaurantSlugTaken(t *testing.T, e *env) {
	s := e.open(t)
	ok(t, s.CreateRestaurant(ctx, &ladle.Restaurant{Slug: "taken", Name: "A", Currency: "USD", TimeZone: "UTC"}))
	err := s.CreateRestaurant(ctx, &ladle.Restaurant{Slug: "taken", Name: "B", Currency: "USD", TimeZone: "UTC"})
	wantCode(t, err, "slug_taken")
	if ladle.ErrorKind(err) != ladle.KindConflict {
		t.Fatalf("slug_taken kind = %v", ladle.ErrorKind(err))
	}
	all, err := s.Restaurants(ctx)
	ok(t, err)
	if len(all) != 1 || all[0].Name != "A" {
		t.Fatalf("after conflict: %+v", all)
	}
}

func testRestaurantInvalid(t *testing.T, e *env) {
	s := e.open(t)
	good := ladle.Restaurant{Slug: "good", Name: "Good", Currency: "USD", TaxRateBP: 825, TimeZone: "UTC"}
	for name, mutate := range map[string]func(r *ladle.Restaurant){
		"slug":     func(r *ladle.Restaurant) { r.Slug = "Not A Slug" },
		"name":     func(r *ladle.Restaurant) { r.Name = " " },
		"currency": func(r *ladle.Restaurant) { r.Currency = "usd" },
		"tax":      func(r *ladle.Restaurant) { r.TaxRateBP = -1 },
		"zone":     func(r *ladle.Restaurant) { r.TimeZone = "Mars/Olympus" },
	} {
		r := good
		mutate(&r)
		wantCode(t, s.CreateRestaurant(ctx, &r), ladle.CodeValidation)
		_ = name
	}
	all, err := s.Restaurants(ctx)
	ok(t, err)
	if len(all) != 0 {
		t.Fatalf("invalid restaurants were written: %+v", all)
	}
}

func testUsers(t *testing.T, e *env) {
	s := e.open(t)
	u := &ladle.User{Email: "  Chef@Example.COM ", Name: "Chef", PasswordHash: "$argon2id$x"}
	ok(t, s.CreateUser(ctx, u))
	if u.ID == 0 || u.Email != "chef@example.com" || u.CreatedAt.IsZero() {
		t.Fatalf("CreateUser: %+v", u)
	}
	got, err := s.UserByEmail(ctx, "CHEF@example.com")
	ok(t, err)
	if *got != *u {
		t.Fatalf("UserByEmail = %+v, want %+v", got, u)
	}
	got, err = s.UserByID(ctx, u.ID)
	ok(t, err)
	if *got != *u {
		t.Fatalf("UserByID = %+v, want %+v", got, u)
	}
	wantCode(t, s.CreateUser(ctx, &ladle.User{Email: "chef@EXAMPLE.com", Name: "Other", PasswordHash: "x"}), "email_taken")
	// Staff addresses pass the same check as a guest's (ladle.CheckEmail).
	for _, bad := range []string{"chef@example", "chef@exam ple.com", "chef\x00@example.com", "chef\xff@example.com"} {
		wantCode(t, s.CreateUser(ctx, &ladle.User{Email: bad, Name: "Bad", PasswordHash: "x"}), ladle.CodeValidation)
	}
	wantCode(t, s.CreateUser(ctx, &ladle.User{Email: "bidi@example.com", Name: "\u202eBad", PasswordHash: "x"}), ladle.CodeValidation)
	_, err = s.UserByEmail(ctx, "nobody@example.com")
	wantNotFound(t, err)
	_, err = s.UserByID(ctx, u.ID+1)
	wantNotFound(t, err)
}

func testMemberships(t *testing.T, e *env) {
	s, f := e.seed()
	u := &ladle.User{Email: "cook@example.com", Name: "Cook", PasswordHash: "x"}
	ok(t, s.CreateUser(ctx, u))

	_, err := s.Membership(ctx, u.ID, f.Restaurant.ID)
	wantNotFound(t, err)
	ms, err := s.Memberships(ctx, u.ID)
	ok(t, err)
	if len(ms) != 0 {
		t.Fatalf("new user has memberships: %+v", ms)
	}

	ok(t, s.AddMembership(ctx, ladle.Membership{UserID: u.ID, RestaurantID: f.Restaurant.ID, Role: ladle.RoleStaff}))
	ok(t, s.AddMembership(ctx, ladle.Membership{UserID: u.ID, RestaurantID: f.Other.ID, Role: ladle.RoleManager}))
	// Adding again updates the role.
	ok(t, s.AddMembership(ctx, ladle.Membership{UserID: u.ID, RestaurantID: f.Restaurant.ID, Role: ladle.RoleManager}))

	m, err := s.Membership(ctx, u.ID, f.Restaurant.ID)
	ok(t, err)
	if m.Role != ladle.RoleManager || m.RestaurantSlug != f.Restaurant.Slug {
		t.Fatalf("Membership = %+v", m)
	}
	ms, err = s.Memberships(ctx, u.ID)
	ok(t, err)
	if len(ms) != 2 {
		t.Fatalf("Memberships = %+v", ms)
	}
	for _, m := range ms {
		if m.UserID != u.ID || m.RestaurantName == "" || m.RestaurantSlug == "" {
			t.Fatalf("membership without names: %+v", m)
		}
	}
	// The owner of the fixture belongs to Restaurant only.
	_, err = s.Membership(ctx, f.Owner.ID, f.Other.ID)
	wantNotFound(t, err)
	m, err = s.Membership(ctx, f.Owner.ID, f.Restaurant.ID)
	ok(t, err)
	if m.Role != ladle.RoleOwner {
		t.Fatalf("owner's role = %s", m.Role)
	}

	wantCode(t, s.AddMembership(ctx, ladle.Membership{UserID: u.ID, RestaurantID: f.Restaurant.ID, Role: "chef"}), ladle.CodeValidation)
	wantNotFound(t, s.AddMembership(ctx, ladle.Membership{UserID: u.ID + 1000, RestaurantID: f.Restaurant.ID, Role: ladle.RoleStaff}))
	wantNotFound(t, s.AddMembership(ctx, ladle.Membership{UserID: u.ID, RestaurantID: f.Other.ID + 1000, Role: ladle.RoleStaff}))
}

func testSessions(t *testing.T, e *env) {
	s := e.open(t)
	u := &ladle.User{Email: "a@example.com", Name: "A", PasswordHash: "x"}
	ok(t, s.CreateUser(ctx, u))
	live := &ladle.Session{TokenHash: bytes.Repeat([]byte{1}, 32), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	old := &ladle.Session{TokenHash: bytes.Repeat([]byte{2}, 32), UserID: u.ID, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	ok(t, s.CreateSession(ctx, live))
	ok(t, s.CreateSession(ctx, old))

	got, err := s.SessionByTokenHash(ctx, live.TokenHash, now)
	ok(t, err)
	if !bytes.Equal(got.TokenHash, live.TokenHash) || got.UserID != u.ID || !got.ExpiresAt.Equal(live.ExpiresAt) || !got.CreatedAt.Equal(now) {
		t.Fatalf("SessionByTokenHash = %+v", got)
	}
	_, err = s.SessionByTokenHash(ctx, live.TokenHash, now.Add(time.Hour+time.Microsecond))
	wantNotFound(t, err)
	_, err = s.SessionByTokenHash(ctx, old.TokenHash, now)
	wantNotFound(t, err)

	n, err := s.DeleteExpiredSessions(ctx, now)
	ok(t, err)
	if n != 1 {
		t.Fatalf("DeleteExpiredSessions = %d, want 1", n)
	}
	ok(t, s.DeleteSession(ctx, live.TokenHash))
	_, err = s.SessionByTokenHash(ctx, live.TokenHash, now)
	wantNotFound(t, err)
	ok(t, s.DeleteSession(ctx, live.TokenHash)) // logging out twice is fine
}
