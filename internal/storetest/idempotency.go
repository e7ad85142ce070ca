package storetest

import (
	"bytes"
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
	)
}

const hashA, hashB = "aaaa", "bbbb"

func testIdemClaimFinish(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	rec, claimed, err := s.ClaimIdempotencyKey(ctx, rid, "k1", hashA, now, time.Minute)
	ok(t, err)
	if !claimed || rec.RestaurantID != rid || rec.Key != "k1" || rec.RequestHash != hashA || rec.LockedAt == nil ||
		!rec.LockedAt.Equal(now) || !rec.CreatedAt.Equal(now) || rec.OrderID != "" || rec.ResponseStatus != 0 || rec.ResponseBody != nil {
		t.Fatalf("first claim = %+v, %v", rec, claimed)
	}
	// While locked: nobody else gets it, whatever the hash.
	for _, h := range []string{hashA, hashB} {
		rec, claimed, err = s.ClaimIdempotencyKey(ctx, rid, "k1", h, now.Add(time.Second), time.Minute)
		ok(t, err)
		if claimed || rec.RequestHash != hashA || rec.LockedAt == nil || !rec.LockedAt.Equal(now) {
			t.Fatalf("claim of a locked key with hash %s = %+v, %v", h, rec, claimed)
		}
	}
	// Keys are per restaurant.
	rec, claimed, err = s.ClaimIdempotencyKey(ctx, f.Other.ID, "k1", hashB, now, time.Minute)
	ok(t, err)
	if !claimed || rec.RequestHash != hashB || rec.RestaurantID != f.Other.ID {
		t.Fatalf("same key, other restaurant = %+v, %v", rec, claimed)
	}

	body := []byte(`{"id":"o1","status":"placed"}`)
	ok(t, s.FinishIdempotencyKey(ctx, rid, "k1", 201, body))
	// Finished: never claimable again, even long after, and it replays.
	rec, claimed, err = s.ClaimIdempotencyKey(ctx, rid, "k1", hashA, now.Add(time.Hour), time.Minute)
	ok(t, err)
	if claimed || rec.ResponseStatus != 201 || !bytes.Equal(rec.ResponseBody, body) || rec.LockedAt != nil {
		t.Fatalf("claim of a finished key = %+v, %v", rec, claimed)
	}
	// An empty body is still a finished response.
	_, _, err = s.ClaimIdempotencyKey(ctx, rid, "k2", hashA, now, time.Minute)
	ok(t, err)
	ok(t, s.FinishIdempotencyKey(ctx, rid, "k2", 204, nil))
	rec, claimed, err = s.ClaimIdempotencyKey(ctx, rid, "k2", hashA, now.Add(time.Hour), time.Minute)
	ok(t, err)
	if claimed || rec.ResponseStatus != 204 {
		t.Fatalf("claim of a key finished with no body = %+v, %v", rec, claimed)
	}

	wantNotFound(t, s.FinishIdempotencyKey(ctx, rid, "nope", 200, nil))
	wantNotFound(t, s.UnlockIdempotencyKey(ctx, rid, "nope"))
	wantNotFound(t, s.FinishIdempotencyKey(ctx, f.Other.ID+1000, "k1", 200, nil))
	_, _, err = s.ClaimIdempotencyKey(ctx, rid, "", hashA, now, time.Minute)
	wantCode(t, err, ladle.CodeValidation)
}

func testIdemUnlockStale(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	_, _, err := s.ClaimIdempotencyKey(ctx, rid, "k", hashA, now, time.Minute)
	ok(t, err)
	ok(t, s.UnlockIdempotencyKey(ctx, rid, "k"))
	// Unlocked: the same request resumes it, another request may not.
	rec, claimed, err := s.ClaimIdempotencyKey(ctx, rid, "k", hashB, now.Add(time.Second), time.Minute)
	ok(t, err)
	if claimed || rec.LockedAt != nil {
		t.Fatalf("other hash claimed an unlocked key: %+v, %v", rec, claimed)
	}
	rec, claimed, err = s.ClaimIdempotencyKey(ctx, rid, "k", hashA, now.Add(2*time.Second), time.Minute)
	ok(t, err)
	if !claimed || !rec.LockedAt.Equal(now.Add(2*time.Second)) || !rec.CreatedAt.Equal(now) {
		t.Fatalf("resume = %+v, %v", rec, claimed)
	}
	// Locked, not yet stale.
	_, claimed, err = s.ClaimIdempotencyKey(ctx, rid, "k", hashA, now.Add(2*time.Second+time.Minute), time.Minute)
	ok(t, err)
	if claimed {
		t.Fatal("claimed a lock exactly staleAfter old")
	}
	// Stale: its holder died; the same request takes over, another does not.
	late := now.Add(2*time.Second + time.Minute + time.Microsecond)
	_, claimed, err = s.ClaimIdempotencyKey(ctx, rid, "k", hashB, late, time.Minute)
	ok(t, err)
	if claimed {
		t.Fatal("another request took over a stale key")
	}
	rec, claimed, err = s.ClaimIdempotencyKey(ctx, rid, "k", hashA, late, time.Minute)
	ok(t, err)
	if !claimed || !rec.LockedAt.Equal(late) {
		t.Fatalf("stale takeover = %+v, %v", rec, claimed)
	}
}

func testIdemDelete(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	_, _, err := s.ClaimIdempotencyKey(ctx, rid, "k", hashA, now, time.Minute)
	ok(t, err)
	ok(t, s.DeleteIdempotencyKey(ctx, rid, "k"))
	// Forgotten: usable again, even for another body.
	rec, claimed, err := s.ClaimIdempotencyKey(ctx, rid, "k", hashB, now.Add(time.Second), time.Minute)
	ok(t, err)
	if !claimed || rec.RequestHash != hashB {
		t.Fatalf("claim after delete = %+v, %v", rec, claimed)
	}
	// A key that led to an order, or that finished, is never forgotten.
	req := f.Request()
	_, _, err = s.ClaimIdempotencyKey(ctx, rid, "ordered", req.Hash(), now, time.Minute)
	ok(t, err)
	o := placeWithKey(t, s, f, "ordered", req)
	wantNotFound(t, s.DeleteIdempotencyKey(ctx, rid, "ordered"))
	ok(t, s.UnlockIdempotencyKey(ctx, rid, "ordered"))
	rec, _, err = s.ClaimIdempotencyKey(ctx, rid, "ordered", req.Hash(), now, time.Minute)
	ok(t, err)
	if rec.OrderID != o.ID {
		t.Fatalf("recovery point lost: %+v", rec)
	}
	ok(t, s.FinishIdempotencyKey(ctx, rid, "k", 422, []byte("{}")))
	wantNotFound(t, s.DeleteIdempotencyKey(ctx, rid, "k"))
	wantNotFound(t, s.DeleteIdempotencyKey(ctx, f.Other.ID, "ordered"))
}

func placeWithKey(t testing.TB, s ladle.Store, f *Fixture, key string, req *ladle.OrderRequest) *ladle.Order {
	t.Helper()
	o, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: f.Restaurant.ID, IdempotencyKey: key, Request: req, Now: now})
	ok(t, err)
	return o
}

func testIdemReap(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	old := now.Add(-ladle.IdempotencyKeyTTL - time.Hour)
	claim := func(key string, at time.Time) {
		t.Helper()
		_, claimed, err := s.ClaimIdempotencyKey(ctx, rid, key, hashA, at, time.Minute)
		ok(t, err)
		if !claimed {
			t.Fatalf("could not claim %s", key)
		}
	}
	claim("old-finished", old)
	ok(t, s.FinishIdempotencyKey(ctx, rid, "old-finished", 201, []byte("{}")))
	claim("old-unlocked", old)
	ok(t, s.UnlockIdempotencyKey(ctx, rid, "old-unlocked"))
	claim("old-but-working", old)
	ok(t, s.UnlockIdempotencyKey(ctx, rid, "old-but-working"))
	claim("old-but-working", now) // resumed just now: locked
	claim("new", now.Add(-time.Hour))
	ok(t, s.FinishIdempotencyKey(ctx, rid, "new", 201, []byte("{}")))

	n, err := s.ReapIdempotencyKeys(ctx, now.Add(-ladle.IdempotencyKeyTTL))
	ok(t, err)
	if n != 2 {
		t.Fatalf("reaped %d keys, want 2 (old-finished, old-unlocked)", n)
	}
	for key, wantClaimed := range map[string]bool{"old-finished": true, "old-unlocked": true, "old-but-working": false, "new": false} {
		rec, claimed, err := s.ClaimIdempotencyKey(ctx, rid, key, hashA, now.Add(time.Second), time.Minute)
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
			rec, claimed, err := s.ClaimIdempotencyKey(ctx, rid, "race", hash, now, time.Minute)
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
