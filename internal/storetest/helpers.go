package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ladle-dev/ladle"
)

// newID returns a fresh UUIDv7 string, as the ordering service generates
// order ids.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// ok fails the test on err.
func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// wantCode fails unless err is an *ladle.Error with the code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got := ladle.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %s), want code %s", err, got, code)
	}
}

// wantNotFound fails unless err is not_found.
func wantNotFound(t testing.TB, err error) {
	t.Helper()
	wantCode(t, err, ladle.CodeNotFound)
	if ladle.ErrorKind(err) != ladle.KindNotFound {
		t.Fatalf("not_found error has kind %v", ladle.ErrorKind(err))
	}
}

// events returns the restaurant's outbox events, oldest first.
func events(t testing.TB, s ladle.Store, restaurantID int64) []ladle.Event {
	t.Helper()
	l, isLister := s.(EventLister)
	if !isLister {
		t.Fatalf("%T does not implement storetest.EventLister", s)
	}
	evs, err := l.OutboxEvents(ctx, restaurantID)
	ok(t, err)
	return evs
}

// eventTypes lists the types of evs.
func eventTypes(evs []ladle.Event) []string {
	var ts []string
	for _, ev := range evs {
		ts = append(ts, ev.Type)
	}
	return ts
}

// eventsOf returns the events of one type.
func eventsOf(evs []ladle.Event, typ string) []ladle.Event {
	return slices.DeleteFunc(slices.Clone(evs), func(ev ladle.Event) bool { return ev.Type != typ })
}

// decode unmarshals an event payload.
func decode[T any](t testing.TB, ev ladle.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(ev.Payload, &v); err != nil {
		t.Fatalf("event %s payload: %v", ev.Type, err)
	}
	return v
}

// place creates an order for the request at the given time.
func place(t testing.TB, s ladle.Store, f *Fixture, req *ladle.OrderRequest, at ...ladle.Clock) *ladle.Order {
	t.Helper()
	when := now
	if len(at) > 0 {
		when = at[0]()
	}
	o, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: f.Restaurant.ID, Request: req, Now: when})
	ok(t, err)
	return o
}

// withEmail returns the fixture request with another customer email (so a
// different fingerprint and customer).
func withEmail(f *Fixture, email string) *ladle.OrderRequest {
	r := f.Request()
	r.Customer.Email = email
	return r
}

// cardRequest is the fixture request paid by card.
func cardRequest(f *Fixture) *ladle.OrderRequest {
	r := f.Request()
	r.Payment = ladle.PaymentInput{Method: "card", Token: "tok_visa"}
	return r
}

// asError is errors.As for *ladle.Error.
func asError(err error, target **ladle.Error) bool { return errors.As(err, target) }

// claimKey claims key as holder "test" (boot "b1").
func claimKey(s ladle.Store, rid int64, key, hash string, at time.Time, stale time.Duration) (*ladle.IdempotencyRecord, bool, error) {
	return s.ClaimIdempotencyKey(ctx, ladle.KeyClaim{RestaurantID: rid, Key: key, RequestHash: hash,
		Holder: "test", Boot: "b1", Now: at, StaleAfter: stale})
}

// held returns the lease of the key's current claim (fence 1 for a key that
// does not exist), for cases that write as whoever holds it now.
func held(s ladle.Store, rid int64, key string) ladle.KeyLease {
	rec, err := s.IdempotencyKey(ctx, rid, key)
	if err != nil {
		return ladle.KeyLease{RestaurantID: rid, Key: key, Fence: 1}
	}
	return rec.Lease()
}
