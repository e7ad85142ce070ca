package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(
		testCase{name: "Idempotency/ClaimFinish", fn: testIdemClaimFinish},
		testCase{name: "Idempotency/UnlockAndStale", fn: testIdemUnlockStale},
		testCase{name: "Idempotency/Delete", fn: testIdemDelete},
		testCase{name: "Idempotency/Reap", fn: testIdemReap},
		testCase{name: "Idempotency/ConcurrentClaim", fn: testIdemConcurrent},
		testCase{name: "Idempotency/Fenced", fn: testIdemFenced},
		testCase{name: "Idempotency/ReleaseHolder", fn: testIdemReleaseHolder},
		testCase{name: "Idempotency/RespondInCreate", fn: testIdemRespondInCreate},
		testCase{name: "Idempotency/ClaimAndCreate", fn: testIdemClaimAndCreate},
	)
}

const hashA, hashB = "aaaa", "bbbb"

func testIdemClaimFinish(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	rec, claimed, err := claimKey(s, rid, "k1", hashA, now, time.Minute)
	ok(t, err)
	if !claimed || rec.RestaurantID != rid || rec.Key != "k1" || rec.RequestHash != hashA || rec.LockedAt == nil ||
		!rec.LockedAt.Equal(now) || !rec.CreatedAt.Equal(now) || rec.OrderID != "" || rec.ResponseStatus != 0 || rec.ResponseBody != nil {
		t.Fatalf("first claim = %+v, %v", rec, claimed)
	}
	// While locked: nobody else gets it, whatever the hash.
	for _, h := range []string{hashA, hashB} {
		rec, claimed, err = claimKey(s, rid, "k1", h, now.Add(time.Second), time.Minute)
		ok(t, err)
		if claimed || rec.RequestHash != hashA || rec.LockedAt == nil || !rec.LockedAt.Equal(now) {
			t.Fatalf("claim of a locked key with hash %s = %+v, %v", h, rec, claimed)
		}
	}
	// Keys are per restaurant.
	rec, claimed, err = claimKey(s, f.Other.ID, "k1", hashB, now, time.Minute)
	ok(t, err)
	if !claimed || rec.RequestHash != hashB || rec.RestaurantID != f.Other.ID {
		t.Fatalf("same key, other restaurant = %+v, %v", rec, claimed)
	}

	body := []byte(`{"id":"o1","status":"placed"}`)
	ok(t, s.FinishIdempotencyKey(ctx, held(s, rid, "k1"), 201, body))
	// Finished: never claimable again, even long after, and it replays.
	rec, claimed, err = claimKey(s, rid, "k1", hashA, now.Add(time.Hour), time.Minute)
	ok(t, err)
	if claimed || rec.ResponseStatus != 201 || !bytes.Equal(rec.ResponseBody, body) || rec.LockedAt != nil {
		t.Fatalf("claim of a finished key = %+v, %v", rec, claimed)
	}
	// An empty body is still a finished response.
	_, _, err = claimKey(s, rid, "k2", hashA, now, time.Minute)
	ok(t, err)
	ok(t, s.FinishIdempotencyKey(ctx, held(s, rid, "k2"), 204, nil))
	rec, claimed, err = claimKey(s, rid, "k2", hashA, now.Add(time.Hour), time.Minute)
	ok(t, err)
	if claimed || rec.ResponseStatus != 204 {
		t.Fatalf("claim of a key finished with no body = %+v, %v", rec, claimed)
	}

	wantNotFound(t, s.FinishIdempotencyKey(ctx, held(s, rid, "nope"), 200, nil))
	wantNotFound(t, s.UnlockIdempotencyKey(ctx, held(s, rid, "nope")))
	wantNotFound(t, s.FinishIdempotencyKey(ctx, held(s, f.Other.ID+1000, "k1"), 200, nil))
	_, _, err = claimKey(s, rid, "", hashA, now, time.Minute)
	wantCode(t, err, ladle.CodeValidation)
}

func testIdemUnlockStale(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	_, _, err := claimKey(s, rid, "k", hashA, now, time.Minute)
	ok(t, err)
	ok(t, s.UnlockIdempotencyKey(ctx, held(s, rid, "k")))
	// Unlocked: the same request resumes it, another request may not.
	rec, claimed, err := claimKey(s, rid, "k", hashB, now.Add(time.Second), time.Minute)
	ok(t, err)
	if claimed || rec.LockedAt != nil {
		t.Fatalf("other hash claimed an unlocked key: %+v, %v", rec, claimed)
	}
	rec, claimed, err = claimKey(s, rid, "k", hashA, now.Add(2*time.Second), time.Minute)
	ok(t, err)
	if !claimed || !rec.LockedAt.Equal(now.Add(2*time.Second)) || !rec.CreatedAt.Equal(now) {
		t.Fatalf("resume = %+v, %v", rec, claimed)
	}
	// Locked, not yet stale.
	_, claimed, err = claimKey(s, rid, "k", hashA, now.Add(2*time.Second+time.Minute), time.Minute)
	ok(t, err)
	if claimed {
		t.Fatal("claimed a lock exactly staleAfter old")
	}
	// Stale: its holder died; the same request takes over, another does not.
	late := now.Add(2*time.Second + time.Minute + time.Microsecond)
	_, claimed, err = claimKey(s, rid, "k", hashB, late, time.Minute)
	ok(t, err)
	if claimed {
		t.Fatal("another request took over a stale key")
	}
	rec, claimed, err = claimKey(s, rid, "k", hashA, late, time.Minute)
	ok(t, err)
	if !claimed || !rec.LockedAt.Equal(late) {
		t.Fatalf("stale takeover = %+v, %v", rec, claimed)
	}
}

func testIdemDelete(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	_, _, err := claimKey(s, rid, "k", hashA, now, time.Minute)
	ok(t, err)
	ok(t, s.DeleteIdempotencyKey(ctx, held(s, rid, "k")))
	// Forgotten: usable again, even for another body.
	rec, claimed, err := claimKey(s, rid, "k", hashB, now.Add(time.Second), time.Minute)
	ok(t, err)
	if !claimed || rec.RequestHash != hashB {
		t.Fatalf("claim after delete = %+v, %v", rec, claimed)
	}
	// A key that led to an order, or that finished, is never forgotten.
	req := f.Request()
	_, _, err = claimKey(s, rid, "ordered", req.Hash(), now, time.Minute)
	ok(t, err)
	o := placeWithKey(t, s, f, "ordered", req)
	wantNotFound(t, s.DeleteIdempotencyKey(ctx, held(s, rid, "ordered")))
	ok(t, s.UnlockIdempotencyKey(ctx, held(s, rid, "ordered")))
	rec, _, err = claimKey(s, rid, "ordered", req.Hash(), now, time.Minute)
	ok(t, err)
	if rec.OrderID != o.ID {
		t.Fatalf("recovery point lost: %+v", rec)
	}
	ok(t, s.FinishIdempotencyKey(ctx, held(s, rid, "k"), 422, []byte("{}")))
	wantNotFound(t, s.DeleteIdempotencyKey(ctx, held(s, rid, "k")))
	wantNotFound(t, s.DeleteIdempotencyKey(ctx, held(s, f.Other.ID, "ordered")))
}

func placeWithKey(t testing.TB, s ladle.Store, f *Fixture, key string, req *ladle.OrderRequest) *ladle.Order {
	t.Helper()
	o, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: f.Restaurant.ID, IdempotencyKey: key, Fence: held(s, f.Restaurant.ID, key).Fence, Request: req, Now: now})
	ok(t, err)
	return o
}

func testIdemReap(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	old := now.Add(-ladle.IdempotencyKeyTTL - time.Hour)
	claim := func(key string, at time.Time) {
		t.Helper()
		_, claimed, err := claimKey(s, rid, key, hashA, at, time.Minute)
		ok(t, err)
		if !claimed {
			t.Fatalf("could not claim %s", key)
		}
	}
	claim("old-finished", old)
	ok(t, s.FinishIdempotencyKey(ctx, held(s, rid, "old-finished"), 201, []byte("{}")))
	claim("old-unlocked", old)
	ok(t, s.UnlockIdempotencyKey(ctx, held(s, rid, "old-unlocked")))
	claim("old-but-working", old)
	ok(t, s.UnlockIdempotencyKey(ctx, held(s, rid, "old-but-working")))
	claim("old-but-working", now) // resumed just now: locked
	claim("new", now.Add(-time.Hour))
	ok(t, s.FinishIdempotencyKey(ctx, held(s, rid, "new"), 201, []byte("{}")))

	n, err := s.ReapIdempotencyKeys(ctx, now.Add(-ladle.IdempotencyKeyTTL))
	ok(t, err)
	if n != 2 {
		t.Fatalf("reaped %d keys, want 2 (old-finished, old-unlocked)", n)
	}
	for key, wantClaimed := range map[string]bool{"old-finished": true, "old-unlocked": true, "old-but-working": false, "new": false} {
		rec, claimed, err := claimKey(s, rid, key, hashA, now.Add(time.Second), time.Minute)
		ok(t, err)
		if claimed != wantClaimed {
			t.Errorf("%s after reap: claimed %v (rec %+v), want %v", key, claimed, rec, wantClaimed)
		}
	}
	n, err = s.ReapIdempotencyKeys(ctx, now.Add(-ladle.IdempotencyKeyTTL))
	ok(t, err)
	if n != 0 {
		t.Fatalf("second reap deleted %d", n)
	}
}

// testIdemConcurrent: 50 concurrent claimers of one new key, exactly one
// wins; every loser sees the winner's record.
func testIdemConcurrent(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	const n = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	var errs []error
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			hash := hashA
			if i%2 == 1 {
				hash = hashB // half of them even send another body
			}
			rec, claimed, err := claimKey(s, rid, "race", hash, now, time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if claimed {
				won++
			} else if rec.LockedAt == nil || rec.Key != "race" {
				errs = append(errs, fmt.Errorf("loser saw %+v", rec))
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent claimers won, want exactly 1", won, n)
	}
}

// wantFenced fails unless err is KeyFenced.
func wantFenced(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ladle.ErrFenced) || ladle.ErrorCode(err) != ladle.CodeIdempotencyKeyInUse {
		t.Fatalf("err = %v, want KeyFenced", err)
	}
}

// testIdemFenced: once a stale key is taken over, every write under the old
// claim fails and changes nothing: no order, no settlement, no response.
func testIdemFenced(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	req := cardRequest(f)
	first, claimed, err := claimKey(s, rid, "k", req.Hash(), now, time.Minute)
	ok(t, err)
	if !claimed || first.Fence != 1 || first.Holder != "test" || first.Boot != "b1" {
		t.Fatalf("first claim = %+v, %v", first, claimed)
	}
	late := now.Add(time.Minute + time.Second)
	second, claimed, err := claimKey(s, rid, "k", req.Hash(), late, time.Minute)
	ok(t, err)
	if !claimed || second.Fence != 2 {
		t.Fatalf("takeover = %+v, %v", second, claimed)
	}
	old, cur := first.Lease(), second.Lease()

	// The old holder can neither create an order under the key ...
	id := newID()
	_, err = s.CreateOrder(ctx, ladle.NewOrder{ID: id, RestaurantID: rid, IdempotencyKey: "k", Fence: old.Fence, Request: req, Now: late})
	wantFenced(t, err)
	_, err = s.Order(ctx, id)
	wantNotFound(t, err)
	// ... nor store a response, unlock or delete it.
	wantFenced(t, s.FinishIdempotencyKey(ctx, old, 201, []byte("{}")))
	wantFenced(t, s.UnlockIdempotencyKey(ctx, old))
	wantFenced(t, s.DeleteIdempotencyKey(ctx, old))

	// The new holder creates the order; the old one cannot settle it.
	o, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, IdempotencyKey: "k", Fence: cur.Fence, Request: req, Now: late})
	ok(t, err)
	respond := func(o *ladle.Order) (int, []byte) { return 201, []byte(`{"id":"` + o.ID + `"}`) }
	_, err = s.SettlePayment(ctx, ladle.Settlement{OrderID: o.ID, Result: ladle.PaymentResult{Captured: true, ChargeID: "ch_old"},
		Now: late, Lease: &old, Respond: respond})
	wantFenced(t, err)
	ps, err := s.Payments(ctx, o.ID)
	ok(t, err)
	if ps[0].Status != ladle.PaymentPending {
		t.Fatalf("a fenced settlement changed the payment: %+v", ps[0])
	}
	got, err := s.SettlePayment(ctx, ladle.Settlement{OrderID: o.ID, Result: ladle.PaymentResult{Captured: true, ChargeID: "ch_new"},
		Now: late, Lease: &cur, Respond: respond})
	ok(t, err)
	// (Number: a rolled-back settlement may leave a gap on PostgreSQL.)
	if got.Status != ladle.StatusPlaced || got.Number < 1 {
		t.Fatalf("settled = %+v", got)
	}
	rec, err := s.IdempotencyKey(ctx, rid, "k")
	ok(t, err)
	if rec.ResponseStatus != 201 || string(rec.ResponseBody) != `{"id":"`+o.ID+`"}` || rec.LockedAt != nil || rec.OrderID != o.ID {
		t.Fatalf("key after the fenced settlement = %+v", rec)
	}
	// Finished: even the current lease is spent.
	wantFenced(t, s.UnlockIdempotencyKey(ctx, cur))
	wantNotFound(t, s.UnlockIdempotencyKey(ctx, ladle.KeyLease{RestaurantID: rid, Key: "nope", Fence: 1}))
}

// testIdemReleaseHolder: a restarted process releases the keys its earlier
// run held, at once, and only those; the old run is fenced out.
func testIdemReleaseHolder(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	claimAs := func(key, holder, boot string) *ladle.IdempotencyRecord {
		t.Helper()
		rec, claimed, err := s.ClaimIdempotencyKey(ctx, ladle.KeyClaim{RestaurantID: rid, Key: key, RequestHash: hashA,
			Holder: holder, Boot: boot, Now: now, StaleAfter: time.Hour})
		ok(t, err)
		if !claimed {
			t.Fatalf("could not claim %s", key)
		}
		return rec
	}
	dead := claimAs("dead", "host-a:/data", "boot-1")
	claimAs("other-host", "host-b:/data", "boot-1")
	claimAs("mine-now", "host-a:/data", "boot-2")
	finished := claimAs("finished", "host-a:/data", "boot-1")
	ok(t, s.FinishIdempotencyKey(ctx, finished.Lease(), 201, []byte("{}")))

	n, err := s.ReleaseHolderKeys(ctx, "host-a:/data", "boot-2")
	ok(t, err)
	if n != 1 {
		t.Fatalf("released %d keys, want 1", n)
	}
	// Usable again at once (well before StaleAfter), and the dead run's
	// lease is fenced.
	for key, want := range map[string]bool{"dead": true, "other-host": false, "mine-now": false, "finished": false} {
		_, claimed, err := s.ClaimIdempotencyKey(ctx, ladle.KeyClaim{RestaurantID: rid, Key: key, RequestHash: hashA,
			Holder: "host-a:/data", Boot: "boot-2", Now: now.Add(time.Second), StaleAfter: time.Hour})
		ok(t, err)
		if claimed != want {
			t.Errorf("%s after release: claimed %v, want %v", key, claimed, want)
		}
	}
	wantFenced(t, s.UnlockIdempotencyKey(ctx, dead.Lease()))
	_, err = s.ReleaseHolderKeys(ctx, "", "x")
	wantCode(t, err, ladle.CodeValidation)
}

// testIdemRespondInCreate: a pay-at-pickup order and its stored response
// commit together.
func testIdemRespondInCreate(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	req := f.Request()
	rec, _, err := claimKey(s, rid, "k", req.Hash(), now, time.Minute)
	ok(t, err)
	o, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, IdempotencyKey: "k", Fence: rec.Fence,
		Request: req, Now: now, Respond: func(o *ladle.Order) (int, []byte) { return 201, []byte(`{"number":1}`) }})
	ok(t, err)
	rec, err = s.IdempotencyKey(ctx, rid, "k")
	ok(t, err)
	if o.Number != 1 || rec.ResponseStatus != 201 || string(rec.ResponseBody) != `{"number":1}` || rec.LockedAt != nil || rec.OrderID != o.ID {
		t.Fatalf("order %+v, key %+v", o, rec)
	}
}

// testIdemClaimAndCreate: the claim and the order commit together, and a
// refused order keeps nothing of the attempt.
func testIdemClaimAndCreate(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	claimAt := func(key string, req *ladle.OrderRequest, at time.Time) (*ladle.IdempotencyRecord, bool, *ladle.Order, error) {
		return s.ClaimAndCreateOrder(ctx, ladle.KeyClaim{RestaurantID: rid, Key: key, RequestHash: req.Hash(),
			Holder: "test", Boot: "b1", Now: at, StaleAfter: time.Minute}, ladle.NewOrder{ID: newID(), Request: req, Now: at})
	}
	req := cardRequest(f)
	rec, claimed, o, err := claimAt("k", req, now)
	ok(t, err)
	if !claimed || o == nil || rec.OrderID != o.ID || rec.Fence != 1 || rec.LockedAt == nil || o.Status != ladle.StatusPendingPayment {
		t.Fatalf("claim and create = %+v, %v, %+v", rec, claimed, o)
	}
	// Locked: another claimer gets the record and creates nothing.
	rec2, claimed, o2, err := claimAt("k", req, now.Add(time.Second))
	ok(t, err)
	if claimed || o2 != nil || rec2.OrderID != o.ID {
		t.Fatalf("second claim = %+v, %v, %+v", rec2, claimed, o2)
	}
	// Taken over when stale: resumes the order, creates none.
	rec3, claimed, o3, err := claimAt("k", req, now.Add(2*time.Minute))
	ok(t, err)
	if !claimed || o3 != nil || rec3.OrderID != o.ID || rec3.Fence != 2 {
		t.Fatalf("takeover = %+v, %v, %+v", rec3, claimed, o3)
	}

	// A refused order: the new key is not kept, and works once fixed.
	bad := f.Request()
	bad.Lines[0].ItemID = f.VeggieBurger.ID // sold out
	_, _, _, err = claimAt("k2", bad, now)
	wantCode(t, err, ladle.CodeItemUnavailable)
	_, err = s.IdempotencyKey(ctx, rid, "k2")
	wantNotFound(t, err)
	fixed := f.Request()
	fixed.ConfirmDuplicate = true
	_, claimed, o4, err := claimAt("k2", fixed, now)
	ok(t, err)
	if !claimed || o4 == nil {
		t.Fatal("the key of a refused order does not work for a fixed one")
	}

	// A key taken over without a recovery point, then refused: forgotten.
	_, _, err = claimKey(s, rid, "k3", bad.Hash(), now, time.Minute)
	ok(t, err)
	_, _, _, err = claimAt("k3", bad, now.Add(2*time.Minute))
	wantCode(t, err, ladle.CodeItemUnavailable)
	_, err = s.IdempotencyKey(ctx, rid, "k3")
	wantNotFound(t, err)
}
