package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(
		testCase{name: "Concurrency/SameFingerprint", fn: testConcurrentFingerprint},
		testCase{name: "Concurrency/CouponLastUse", fn: testConcurrentCoupon},
		testCase{name: "Concurrency/SetOrderStatus", fn: testConcurrentStatus},
	)
}

const racers = 50

// race runs fn(i) on racers goroutines released at once and collects the
// error codes ("" for success).
func race(fn func(i int) error) map[string]int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	start := make(chan struct{})
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := fn(i)
			code := ""
			if err != nil {
				code = ladle.ErrorCode(err)
				if code == "internal" {
					code = "internal: " + err.Error()
				}
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return codes
}

// testConcurrentFingerprint: 50 concurrent orders of the same content →
// exactly one order, 49 possible_duplicate naming it.
func testConcurrentFingerprint(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	var mu sync.Mutex
	var winner string
	named := map[any]int{}
	codes := race(func(i int) error {
		o, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: f.Request(),
			Now: now.Add(time.Duration(i) * time.Millisecond)})
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			winner = o.ID
		}
		var le *ladle.Error
		if asError(err, &le) && le.Code == ladle.CodePossibleDuplicate {
			named[le.Extra["order_id"]]++
		}
		return err
	})
	if codes[""] != 1 || codes[ladle.CodePossibleDuplicate] != racers-1 {
		t.Fatalf("outcomes = %v, want 1 success and %d possible_duplicate", codes, racers-1)
	}
	if named[winner] != racers-1 {
		t.Fatalf("duplicates named %v, want all to name the winner %s", named, winner)
	}
	all, err := s.Orders(ctx, rid, ladle.OrderFilter{Statuses: allStatuses})
	ok(t, err)
	if len(all) != 1 || all[0].ID != winner || all[0].Number != 1 {
		t.Fatalf("orders = %+v", all)
	}
}

// testConcurrentCoupon: a coupon with one use left, 50 concurrent orders
// from different guests → one redemption, 49 coupon_exhausted, and no order
// for them.
func testConcurrentCoupon(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	c := &ladle.Coupon{RestaurantID: rid, Code: "ONELEFT", Kind: "percent", Value: 50, MaxUses: 3, Active: true}
	ok(t, s.CreateCoupon(ctx, c))
	for i := range 2 { // use two of three
		req := withEmail(f, fmt.Sprintf("early%d@example.com", i))
		req.CouponCode = "ONELEFT"
		place(t, s, f, req)
	}
	codes := race(func(i int) error {
		req := withEmail(f, fmt.Sprintf("guest%d@example.com", i))
		req.CouponCode = "ONELEFT"
		_, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: req, Now: now})
		return err
	})
	if codes[""] != 1 || codes[ladle.CodeCouponExhausted] != racers-1 {
		t.Fatalf("outcomes = %v, want 1 success and %d coupon_exhausted", codes, racers-1)
	}
	got, err := s.CouponByCode(ctx, rid, "ONELEFT")
	ok(t, err)
	if got.Uses != 3 {
		t.Fatalf("uses = %d, want 3", got.Uses)
	}
	rs, err := s.Redemptions(ctx, rid, c.ID)
	ok(t, err)
	if len(rs) != 3 {
		t.Fatalf("redemptions = %d, want 3", len(rs))
	}
	all, err := s.Orders(ctx, rid, ladle.OrderFilter{Statuses: allStatuses})
	ok(t, err)
	if len(all) != 3 {
		t.Fatalf("orders = %d, want 3 (exhausted guests must get none)", len(all))
	}
	// Numbers stayed gapless: refused orders took none.
	seen := map[int64]bool{}
	for _, o := range all {
		seen[o.Number] = true
	}
	if !seen[1] || !seen[2] || !seen[3] {
		t.Fatalf("order numbers = %v, want 1, 2, 3", seen)
	}
	if n := len(eventsOf(events(t, s, rid), ladle.EventCouponRedeemed)); n != 3 {
		t.Fatalf("coupon.redeemed events = %d", n)
	}
}

// testConcurrentStatus: 50 concurrent moves placed → accepted, exactly one
// applies; the rest see the order already moved and are refused.
func testConcurrentStatus(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	o := place(t, s, f, f.Request())
	codes := race(func(i int) error {
		_, err := s.SetOrderStatus(ctx, rid, o.ID, ladle.StatusAccepted, "", 0, now.Add(time.Second))
		return err
	})
	if codes[""] != 1 || codes[ladle.CodeInvalidTransition] != racers-1 {
		t.Fatalf("outcomes = %v, want 1 success and %d invalid_transition", codes, racers-1)
	}
	if n := len(eventsOf(events(t, s, rid), ladle.EventOrderStatusChanged)); n != 1 {
		t.Fatalf("order.status_changed events = %d, want 1", n)
	}
}
