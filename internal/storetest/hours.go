package storetest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(
		testCase{name: "Hours/DefaultAndRoundTrip", fn: testHoursRoundTrip},
		testCase{name: "Hours/OutsideHoursRefused", fn: testHoursRefused},
		testCase{name: "Slots/Concurrent50IntoCapacity5", fn: testSlotsConcurrent},
		testCase{name: "Slots/DeclinedPaymentReleases", fn: testSlotsDecline},
		testCase{name: "Slots/ASAPReadyEstimate", fn: testSlotsASAP},
		testCase{name: "Slots/ItemCap", fn: testSlotsItems},
		testCase{name: "Quote/EqualsPlacedOrder", fn: testQuoteProperty},
		testCase{name: "Quote/SameErrors", fn: testQuoteErrors},
	)
}

// scheduled returns the fixture request for pickup at t, from email.
func scheduled(f *Fixture, email string, t time.Time) *ladle.OrderRequest {
	r := withEmail(f, email)
	r.Fulfillment.Time = t.UTC().Format(time.RFC3339)
	return r
}

func setHours(t *testing.T, s ladle.Store, rid int64, h *ladle.Hours) {
	t.Helper()
	ok(t, s.SetHours(ctx, rid, h, now))
}

// hm is a wall-clock time for the tests' ranges.
func hm(h, m int) ladle.DayTime { return ladle.DayTime(h*60 + m) }

func testHoursRoundTrip(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	h, err := s.Hours(ctx, rid)
	ok(t, err)
	if len(h.Weekly) != 0 || h.Capped() || h.SlotMinutes != ladle.DefaultSlotMinutes || h.PausedUntil != nil {
		t.Fatalf("default hours = %+v", h)
	}
	_, err = s.Hours(ctx, 1<<40)
	wantNotFound(t, err)

	in := &ladle.Hours{
		Weekly: []ladle.OpenRange{{Day: time.Friday, Open: hm(17, 0), Close: hm(2, 0)},
			{Day: time.Monday, Open: hm(11, 0), Close: hm(14, 0)}},
		Closures:    []ladle.Closure{{Date: "2030-12-25", Note: "Christmas"}},
		SlotMinutes: 30, SlotOrders: 4, SlotItems: 20, PrepMinutes: 20,
	}
	setHours(t, s, rid, in)
	until := now.Add(30 * time.Minute)
	ok(t, s.PauseOrdering(ctx, rid, &until, now))
	got, err := s.Hours(ctx, rid)
	ok(t, err)
	if len(got.Weekly) != 2 || got.Weekly[0].Day != time.Monday || got.Weekly[1].Close != hm(2, 0) ||
		got.Closures[0].Note != "Christmas" || got.SlotOrders != 4 || got.PausedUntil == nil || !got.PausedUntil.Equal(until) {
		t.Fatalf("hours read back = %+v", got)
	}
	// Saving the hours leaves the pause alone; resuming clears it.
	setHours(t, s, rid, in)
	got, _ = s.Hours(ctx, rid)
	if got.PausedUntil == nil {
		t.Fatal("SetHours cleared the pause")
	}
	ok(t, s.PauseOrdering(ctx, rid, nil, now))
	got, _ = s.Hours(ctx, rid)
	if got.PausedUntil != nil {
		t.Fatal("resume kept the pause")
	}
	// The other restaurant is untouched.
	other, _ := s.Hours(ctx, f.Other.ID)
	if len(other.Weekly) != 0 {
		t.Fatal("hours leaked to another restaurant")
	}

	bad := &ladle.Hours{Weekly: []ladle.OpenRange{{Day: time.Monday, Open: hm(11, 0), Close: hm(11, 0)},
		{Day: time.Tuesday, Open: hm(11, 0), Close: hm(15, 0)}, {Day: time.Tuesday, Open: hm(14, 0), Close: hm(16, 0)}},
		Closures: []ladle.Closure{{Date: "2030-02-30"}}, SlotMinutes: 7, PrepMinutes: -1}
	err = s.SetHours(ctx, rid, bad, now)
	wantCode(t, err, ladle.CodeValidation)
	var le *ladle.Error
	asError(err, &le)
	for _, k := range []string{"weekly[0]", "weekly[2]", "closures[0]", "slot_minutes", "prep_minutes"} {
		if le.Fields[k] == "" {
			t.Errorf("no error for %s in %v", k, le.Fields)
		}
	}
	wantCode(t, s.PauseOrdering(ctx, rid, ptr(now.Add(48*time.Hour)), now), ladle.CodeValidation)
}

// testHoursRefused: the suite's clock is Friday 2030-05-17 08:30 in New
// York (12:30 UTC). Mon–Fri 11:00–14:00 and 17:00–02:00 (overnight), a
// closure on Monday the 20th.
func testHoursRefused(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	var weekly []ladle.OpenRange
	for d := time.Monday; d <= time.Friday; d++ {
		weekly = append(weekly, ladle.OpenRange{Day: d, Open: hm(11, 0), Close: hm(14, 0)},
			ladle.OpenRange{Day: d, Open: hm(17, 0), Close: hm(2, 0)})
	}
	setHours(t, s, rid, &ladle.Hours{Weekly: weekly, Closures: []ladle.Closure{{Date: "2030-05-20"}},
		SlotMinutes: 15, PrepMinutes: 15})
	ny := f.Restaurant.Location()
	local := func(d, h, m int) time.Time { return time.Date(2030, 5, d, h, m, 0, 0, ny) }
	refused := func(req *ladle.OrderRequest, at time.Time, reason string, next time.Time) {
		t.Helper()
		for _, quote := range []bool{false, true} {
			var err error
			if quote {
				_, err = s.QuoteOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: req, Now: at})
			} else {
				_, err = s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: req, Now: at})
			}
			wantCode(t, err, ladle.CodeRestaurantClosed)
			var le *ladle.Error
			asError(err, &le)
			if le.Kind != ladle.KindUnprocessable || le.Extra["reason"] != reason || le.Extra["next_open"] != next.UTC().Format(time.RFC3339) {
				t.Fatalf("quote=%v: %v extra %v, want reason %s next_open %s", quote, err, le.Extra, reason, next.UTC().Format(time.RFC3339))
			}
		}
	}
	// ASAP at 08:30: closed, opens 11:00.
	refused(f.Request(), now, "closed", local(17, 11, 0))
	// ASAP at 15:00 (between ranges): opens 17:00.
	refused(withEmail(f, "b@example.com"), local(17, 15, 0), "closed", local(17, 17, 0))
	// Scheduled for noon while closed now: fine (ordering ahead).
	o := place(t, s, f, scheduled(f, "c@example.com", local(17, 12, 0)))
	if o.ReadyEstimate != nil {
		t.Fatalf("a scheduled order got a ready estimate %v", o.ReadyEstimate)
	}
	// Saturday 01:30 is Friday's overnight range; 03:00 is not, and the
	// weekend has no ranges: next is Monday… which is a closure, so Tuesday.
	place(t, s, f, scheduled(f, "d@example.com", local(18, 1, 30)))
	refused(scheduled(f, "e@example.com", local(18, 3, 0)), now, "closed", local(21, 11, 0))
	// Monday noon: the closure.
	refused(scheduled(f, "g@example.com", local(20, 12, 0)), now, "closure", local(21, 11, 0))
	// ASAP at Friday 23:59 and Saturday 01:59 (overnight): taken.
	place(t, s, f, withEmail(f, "h@example.com"), func() time.Time { return local(17, 23, 59) })
	place(t, s, f, withEmail(f, "i@example.com"), func() time.Time { return local(18, 1, 59) })
	refused(withEmail(f, "j@example.com"), local(18, 2, 0), "closed", local(21, 11, 0))

	// Paused for 30 minutes at 12:00: everything refused, even ahead;
	// next opening is when the pause ends. Resumed: taken again.
	at := local(17, 12, 0)
	until := at.Add(30 * time.Minute)
	ok(t, s.PauseOrdering(ctx, rid, &until, at))
	refused(withEmail(f, "k@example.com"), at, "paused", until)
	refused(scheduled(f, "l@example.com", local(17, 13, 0)), at, "paused", until)
	place(t, s, f, withEmail(f, "m@example.com"), func() time.Time { return until })
	ok(t, s.PauseOrdering(ctx, rid, nil, at))
	place(t, s, f, withEmail(f, "n@example.com"), func() time.Time { return at })

	// The other restaurant (no hours set) takes orders at any time.
	if _, err := s.Hours(ctx, f.Other.ID); err != nil {
		t.Fatal(err)
	}
}

// testSlotsConcurrent: a slot of capacity 5, 50 concurrent placements
// (each claiming its own key, as the API does) → exactly 5 orders and 45
// slot_full naming the next slot; cancelling one frees one place.
func testSlotsConcurrent(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	setHours(t, s, rid, &ladle.Hours{SlotMinutes: 15, SlotOrders: 5, PrepMinutes: 15})
	slot := now.Add(2 * time.Hour).Truncate(15 * time.Minute)
	pickup := slot.Add(5 * time.Minute)
	placeKey := func(i int, email string) (*ladle.Order, error) {
		key := fmt.Sprintf("k-%s", email)
		_, _, o, err := s.ClaimAndCreateOrder(ctx,
			ladle.KeyClaim{RestaurantID: rid, Key: key, RequestHash: "h" + key, Holder: "test", Boot: "b1", Now: now, StaleAfter: time.Minute},
			ladle.NewOrder{ID: newID(), Request: scheduled(f, email, pickup), Now: now.Add(time.Duration(i) * time.Millisecond)})
		return o, err
	}
	nextNamed := map[string]int{}
	var placed []*ladle.Order
	var mu = make(chan struct{}, 1)
	codes := race(func(i int) error {
		o, err := placeKey(i, fmt.Sprintf("guest%d@example.com", i))
		mu <- struct{}{}
		defer func() { <-mu }()
		var le *ladle.Error
		if asError(err, &le) && le.Code == ladle.CodeSlotFull {
			if na, _ := le.Extra["next_available"].([]string); len(na) > 0 {
				nextNamed[na[0]]++
			}
		}
		if err == nil {
			placed = append(placed, o)
		}
		return err
	})
	if codes[""] != 5 || codes[ladle.CodeSlotFull] != racers-5 {
		t.Fatalf("outcomes = %v, want 5 orders and %d slot_full", codes, racers-5)
	}
	if want := slot.Add(15 * time.Minute).Format(time.RFC3339); nextNamed[want] != racers-5 {
		t.Fatalf("slot_full named %v first, want %s every time", nextNamed, want)
	}
	for _, o := range placed {
		if o.PickupSlot == nil || !o.PickupSlot.Equal(slot) {
			t.Fatalf("order slot = %v, want %v", o.PickupSlot, slot)
		}
	}
	usage, err := s.SlotUsage(ctx, rid, slot, slot.Add(time.Minute))
	ok(t, err)
	if len(usage) != 1 || usage[0].Orders != 5 || usage[0].Items != 5*3 {
		t.Fatalf("usage = %+v, want 5 orders of 3 items", usage)
	}
	all, err := s.Orders(ctx, rid, ladle.OrderFilter{Statuses: allStatuses})
	ok(t, err)
	if len(all) != 5 {
		t.Fatalf("orders = %d, want 5", len(all))
	}

	// Cancelling one frees exactly one place, once.
	_, err = s.SetOrderStatus(ctx, rid, placed[0].ID, ladle.StatusCancelled, "guest called", 0, now)
	ok(t, err)
	if _, err := placeKey(100, "late1@example.com"); err != nil {
		t.Fatalf("after a cancellation: %v", err)
	}
	_, err = placeKey(101, "late2@example.com")
	wantCode(t, err, ladle.CodeSlotFull)
	o, err := s.RestaurantOrder(ctx, rid, placed[0].ID)
	ok(t, err)
	if o.PickupSlot != nil {
		t.Fatalf("a cancelled order still holds slot %v", o.PickupSlot)
	}
}

// testSlotsDecline: a declined card gives its slot back.
func testSlotsDecline(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	setHours(t, s, rid, &ladle.Hours{SlotMinutes: 15, SlotOrders: 1, PrepMinutes: 15})
	pickup := now.Add(3 * time.Hour)
	card := scheduled(f, "card@example.com", pickup)
	card.Payment = ladle.PaymentInput{Method: "card", Token: "tok_decline"}
	o := place(t, s, f, card)
	_, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: scheduled(f, "b@example.com", pickup), Now: now})
	wantCode(t, err, ladle.CodeSlotFull)
	_, err = s.SettlePayment(ctx, ladle.Settlement{OrderID: o.ID, Result: ladle.PaymentResult{FailureReason: "declined"}, Now: now})
	ok(t, err)
	place(t, s, f, scheduled(f, "c@example.com", pickup))
}

// testSlotsASAP: ASAP orders are ready after the preparation time while
// the kitchen has room, later once the first slot is full.
func testSlotsASAP(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	setHours(t, s, rid, &ladle.Hours{SlotMinutes: 15, SlotOrders: 2, PrepMinutes: 20})
	ready := now.Add(20 * time.Minute)
	first := ready.Truncate(15 * time.Minute)
	for i, want := range []time.Time{ready, ready, first.Add(15 * time.Minute)} {
		q, err := s.QuoteOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: withEmail(f, fmt.Sprintf("a%d@example.com", i)), Now: now})
		ok(t, err)
		o := place(t, s, f, withEmail(f, fmt.Sprintf("a%d@example.com", i)))
		if o.ReadyEstimate == nil || !o.ReadyEstimate.Equal(ts(want)) || q.ReadyEstimate == nil || !q.ReadyEstimate.Equal(*o.ReadyEstimate) {
			t.Fatalf("order %d ready %v (quoted %v), want %v", i, o.ReadyEstimate, q.ReadyEstimate, want)
		}
		got, err := s.Order(ctx, o.ID)
		ok(t, err)
		if got.ReadyEstimate == nil || !got.ReadyEstimate.Equal(*o.ReadyEstimate) {
			t.Fatalf("stored ready estimate %v, want %v", got.ReadyEstimate, o.ReadyEstimate)
		}
	}
}

func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// testSlotsItems: an item cap counts quantities; an order larger than a
// whole slot is invalid, not "full".
func testSlotsItems(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	setHours(t, s, rid, &ladle.Hours{SlotMinutes: 30, SlotItems: 5, PrepMinutes: 15})
	pickup := now.Add(4 * time.Hour)
	place(t, s, f, scheduled(f, "a@example.com", pickup)) // 3 items
	_, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: scheduled(f, "b@example.com", pickup), Now: now})
	wantCode(t, err, ladle.CodeSlotFull)
	small := scheduled(f, "c@example.com", pickup)
	small.Lines = small.Lines[1:] // one fries
	small.Lines[0].Quantity = 2
	place(t, s, f, small)
	big := scheduled(f, "d@example.com", pickup.Add(time.Hour))
	big.Lines[0].Quantity = 5
	_, err = s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: big, Now: now})
	wantCode(t, err, ladle.CodeValidation)
}

// testQuoteProperty: over random carts (items, quantities, modifiers,
// coupons percent and fixed, tips, notes), the quote's lines and totals
// equal the order CreateOrder then places from the same request.
func testQuoteProperty(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	fixed := &ladle.Coupon{RestaurantID: rid, Code: "FIVEOFF", Kind: "fixed", Value: 500, MinSubtotal: 1500, Active: true}
	ok(t, s.CreateCoupon(ctx, fixed))
	big := &ladle.Coupon{RestaurantID: rid, Code: "HALF", Kind: "percent", Value: 50, Active: true}
	ok(t, s.CreateCoupon(ctx, big))
	rng := rand.New(rand.NewPCG(1, uint64(rid)))
	coupons := []string{"", "SAVE10", "FIVEOFF", "HALF"}
	extras := []int64{f.Cheese.ID, f.Bacon.ID, f.Avocado.ID}
	for i := range 60 {
		req := withEmail(f, fmt.Sprintf("p%d@example.com", i))
		req.Lines = nil
		for range 1 + rng.IntN(4) {
			switch rng.IntN(3) {
			case 0:
				l := ladle.LineRequest{ItemID: f.Burger.ID, Quantity: 1 + rng.IntN(5)}
				l.ModifierIDs = append(l.ModifierIDs, []int64{f.Small.ID, f.Large.ID}[rng.IntN(2)])
				for _, x := range extras {
					if rng.IntN(2) == 0 {
						l.ModifierIDs = append(l.ModifierIDs, x)
					}
				}
				if rng.IntN(3) == 0 {
					l.Note = "no onions"
				}
				req.Lines = append(req.Lines, l)
			case 1:
				req.Lines = append(req.Lines, ladle.LineRequest{ItemID: f.Fries.ID, Quantity: 1 + rng.IntN(9)})
			default:
				req.Lines = append(req.Lines, ladle.LineRequest{ItemID: f.Soda.ID, Quantity: 1 + rng.IntN(3)})
			}
		}
		req.CouponCode = coupons[rng.IntN(len(coupons))]
		req.Tip = ladle.Money(rng.IntN(800))
		req.Normalize()
		q, qerr := s.QuoteOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: req, Now: now})
		o, oerr := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: req, Now: now})
		if ladle.ErrorCode(qerr) != ladle.ErrorCode(oerr) || (qerr == nil) != (oerr == nil) {
			t.Fatalf("cart %d: quote error %v, order error %v", i, qerr, oerr)
		}
		if oerr != nil {
			continue // e.g. FIVEOFF under its minimum: both refused alike
		}
		if q.Subtotal != o.Subtotal || q.Discount != o.Discount || q.Tax != o.Tax || q.Tip != o.Tip ||
			q.Total != o.Total || q.Currency != o.Currency || q.CouponCode != o.CouponCode || len(q.Lines) != len(o.Lines) {
			t.Fatalf("cart %d (%+v): quote %+v, order %+v", i, req, q, o)
		}
		for j := range q.Lines {
			if q.Lines[j].LineTotal != o.Lines[j].LineTotal || q.Lines[j].UnitPrice != o.Lines[j].UnitPrice {
				t.Fatalf("cart %d line %d: quote %+v, order %+v", i, j, q.Lines[j], o.Lines[j])
			}
		}
	}
}

// testQuoteErrors: what the order would refuse, the quote refuses the same
// way; a quote needs no contact or payment and writes nothing.
func testQuoteErrors(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	limited := &ladle.Coupon{RestaurantID: rid, Code: "ONCE", Kind: "percent", Value: 20, PerCustomerLimit: 1, Active: true}
	ok(t, s.CreateCoupon(ctx, limited))
	used := withEmail(f, "used@example.com")
	used.CouponCode = "ONCE"
	place(t, s, f, used)
	cases := map[string]func(r *ladle.OrderRequest){
		ladle.CodeItemUnavailable: func(r *ladle.OrderRequest) {
			r.Lines[0] = ladle.LineRequest{ItemID: f.VeggieBurger.ID, Quantity: 1, ModifierIDs: []int64{f.Small.ID}}
		},
		ladle.CodeCouponInvalid: func(r *ladle.OrderRequest) { r.CouponCode = "NOPE" },
		ladle.CodeCouponExhausted: func(r *ladle.OrderRequest) {
			r.Customer.Email, r.CouponCode, r.ConfirmDuplicate = "used@example.com", "ONCE", true
		},
		ladle.CodeValidation: func(r *ladle.OrderRequest) { r.Lines[0].ModifierIDs = nil },
	}
	for code, change := range cases {
		req := withEmail(f, "q@example.com")
		change(req)
		req.Normalize()
		_, qerr := s.QuoteOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: req, Now: now})
		_, oerr := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: req, Now: now})
		wantCode(t, qerr, code)
		wantCode(t, oerr, code)
	}
	// No contact, no payment: still a quote.
	req := f.Request()
	req.Customer = ladle.CustomerInput{}
	req.Payment = ladle.PaymentInput{}
	q, err := s.QuoteOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: req, Now: now})
	ok(t, err)
	if q.Total != RequestTotal {
		t.Fatalf("quote total %d, want %d", q.Total, RequestTotal)
	}
	all, err := s.Orders(ctx, rid, ladle.OrderFilter{Statuses: allStatuses})
	ok(t, err)
	if len(all) != 1 {
		t.Fatalf("orders = %d: a quote wrote an order", len(all))
	}
}
