package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(
		testCase{name: "CreateOrder/PayAtPickup", fn: testCreateOrderPayAtPickup},
		testCase{name: "CreateOrder/CouponTipScheduled", fn: testCreateOrderCouponTip},
		testCase{name: "CreateOrder/Refusals", fn: testCreateOrderRefusals},
		testCase{name: "CreateOrder/CouponLimits", fn: testCreateOrderCouponLimits},
		testCase{name: "CreateOrder/DuplicateWindow", fn: testCreateOrderDuplicate},
		testCase{name: "CreateOrder/SnapshotOutlivesMenu", fn: testCreateOrderSnapshot},
		testCase{name: "CreateOrder/RecoveryPoint", fn: testCreateOrderRecoveryPoint},
		testCase{name: "CreateOrder/TenantScoping", fn: testCreateOrderTenantScoping},
		testCase{name: "Orders/Filter", fn: testOrdersFilter},
		testCase{name: "SetOrderStatus/Transitions", fn: testSetOrderStatus},
	)
}

func testCreateOrderPayAtPickup(t *testing.T, e *env) {
	s, f := e.seed()
	req := f.Request()
	id := newID()
	o, err := s.CreateOrder(ctx, ladle.NewOrder{ID: id, RestaurantID: f.Restaurant.ID, Request: req, Now: now})
	ok(t, err)

	if o.ID != id || o.RestaurantID != f.Restaurant.ID || o.Number != 1 || o.Status != ladle.StatusPlaced ||
		o.PaymentMethod != "pay_at_pickup" || o.PaymentStatus != ladle.PaymentDueAtPickup || o.Currency != "USD" ||
		o.CustomerID == 0 || !o.CreatedAt.Equal(now) || !o.UpdatedAt.Equal(now) {
		t.Fatalf("order = %+v", o)
	}
	if o.Subtotal != RequestSubtotal || o.Discount != 0 || o.Tax != RequestTax || o.Tip != 0 || o.Total != RequestTotal {
		t.Fatalf("totals = %d/%d/%d/%d/%d, want %d/0/%d/0/%d", o.Subtotal, o.Discount, o.Tax, o.Tip, o.Total,
			RequestSubtotal, RequestTax, RequestTotal)
	}
	if o.Customer != (ladle.CustomerInput{Name: "Ada Lovelace", Email: "ada@example.com", Phone: "+15550100199"}) {
		t.Fatalf("customer = %+v", o.Customer)
	}
	if o.Fulfillment.Type != "pickup" || o.Fulfillment.Time != nil {
		t.Fatalf("fulfillment = %+v", o.Fulfillment)
	}
	wantLines := []ladle.OrderLine{
		{ItemID: f.Burger.ID, Name: "Burger", UnitPrice: 1349, Quantity: 2, LineTotal: 2698, Modifiers: []ladle.LineModifier{
			{ID: f.Large.ID, GroupName: "Size", Name: "Large", Price: 150},
			{ID: f.Cheese.ID, GroupName: "Extras", Name: "Cheese", Price: 100}}},
		{ItemID: f.Fries.ID, Name: "Fries", UnitPrice: 399, Quantity: 1, LineTotal: 399, Modifiers: []ladle.LineModifier{}},
	}
	if !reflect.DeepEqual(o.Lines, wantLines) {
		t.Fatalf("lines = %+v\nwant    %+v", o.Lines, wantLines)
	}

	// What was returned is what is stored.
	got, err := s.Order(ctx, o.ID)
	ok(t, err)
	if !reflect.DeepEqual(got, o) {
		t.Fatalf("Order() = %+v\nCreateOrder returned %+v", got, o)
	}
	got, err = s.RestaurantOrder(ctx, f.Restaurant.ID, o.ID)
	ok(t, err)
	if !reflect.DeepEqual(got, o) {
		t.Fatalf("RestaurantOrder() = %+v\nCreateOrder returned %+v", got, o)
	}

	ps, err := s.Payments(ctx, o.ID)
	ok(t, err)
	if len(ps) != 1 {
		t.Fatalf("payments = %+v", ps)
	}
	p := ps[0]
	if p.ID == "" || p.OrderID != o.ID || p.Method != "pay_at_pickup" || p.Status != ladle.PaymentDueAtPickup ||
		p.Amount != o.Total || p.Currency != "USD" || p.IdempotencyKey != ladle.PaymentKey(o.ID) || p.Token != "" ||
		!p.CreatedAt.Equal(now) {
		t.Fatalf("payment = %+v", p)
	}

	evs := events(t, s, f.Restaurant.ID)
	placed := eventsOf(evs, ladle.EventOrderPlaced)
	if len(placed) != 1 || len(eventsOf(evs, ladle.EventCouponRedeemed)) != 0 {
		t.Fatalf("events = %v", eventTypes(evs))
	}
	ev := placed[0]
	if ev.AggregateID != o.ID || ev.RestaurantID != f.Restaurant.ID || !ev.CreatedAt.Equal(now) || len(ev.ID) != 36 {
		t.Fatalf("order.placed event = %+v", ev)
	}
	payload := decode[ladle.Order](t, ev)
	if payload.ID != o.ID || payload.Number != 1 || payload.Status != ladle.StatusPlaced || payload.Total != o.Total ||
		len(payload.Lines) != 2 || payload.Customer.Email != "ada@example.com" {
		t.Fatalf("order.placed payload = %+v", payload)
	}

	// Numbers count per restaurant.
	o2 := place(t, s, f, withEmail(f, "bob@example.com"))
	if o2.Number != 2 {
		t.Fatalf("second order number = %d", o2.Number)
	}
	if o2.CustomerID == o.CustomerID {
		t.Fatal("a different email got the same customer")
	}
	// The same guest typing their email in another case is the same
	// customer (the request is not normalized here, so it is not a
	// duplicate either).
	o3 := place(t, s, f, withEmail(f, "ADA@example.com"))
	if o3.CustomerID != o.CustomerID || o3.Customer.Email != "ada@example.com" {
		t.Fatalf("email case made another customer: %d vs %d (%s)", o3.CustomerID, o.CustomerID, o3.Customer.Email)
	}
	req = f.Request()
	req.Lines = req.Lines[1:]
	o4 := place(t, s, f, req)
	if o4.CustomerID != o.CustomerID || o4.Number != 4 {
		t.Fatalf("same email should be the same customer (%d vs %d), number %d", o4.CustomerID, o.CustomerID, o4.Number)
	}
	other, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: f.Other.ID, Now: now, Request: &ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: "Ada", Email: "ada@example.com"},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:       []ladle.LineRequest{{ItemID: f.OtherItem.ID, Quantity: 1}},
		Payment:     ladle.PaymentInput{Method: "pay_at_pickup"},
	}})
	ok(t, err)
	if other.Number != 1 || other.Currency != "EUR" || other.Tax != 440 {
		t.Fatalf("other restaurant's first order = %+v", other)
	}

	_, err = s.Order(ctx, newID())
	wantNotFound(t, err)
	_, err = s.Payments(ctx, newID())
	wantNotFound(t, err)
}

func testCreateOrderCouponTip(t *testing.T, e *env) {
	s, f := e.seed()
	req := f.Request()
	req.CouponCode = "SAVE10"
	req.Tip = 500
	req.MarketingOptIn = true
	pickup := now.Add(90 * time.Minute).Truncate(time.Second)
	req.Fulfillment.Time = pickup.In(f.Restaurant.Location()).Format(time.RFC3339)
	req.Lines[0].Note = "no onions"
	o := place(t, s, f, req)

	discount := (RequestSubtotal*10 + 50) / 100
	tax := ((RequestSubtotal-discount)*825 + 5000) / 10000
	if discount != 310 || tax != 230 {
		t.Fatalf("test arithmetic: discount %d tax %d", discount, tax)
	}
	if o.Subtotal != RequestSubtotal || o.Discount != discount || o.Tax != tax || o.Tip != 500 ||
		o.Total != RequestSubtotal-discount+tax+500 || o.CouponCode != "SAVE10" || !o.MarketingOptIn {
		t.Fatalf("order = %+v", o)
	}
	if o.Fulfillment.Time == nil || !o.Fulfillment.Time.Equal(pickup) || o.Fulfillment.Time.Location() != time.UTC {
		t.Fatalf("pickup time = %v, want %v UTC", o.Fulfillment.Time, pickup)
	}
	if o.Lines[0].Note != "no onions" {
		t.Fatalf("note lost: %+v", o.Lines[0])
	}
	got, err := s.Order(ctx, o.ID)
	ok(t, err)
	if !reflect.DeepEqual(got, o) {
		t.Fatalf("Order() = %+v\nwant %+v", got, o)
	}

	c, err := s.CouponByCode(ctx, f.Restaurant.ID, "SAVE10")
	ok(t, err)
	if c.Uses != 1 {
		t.Fatalf("coupon uses = %d", c.Uses)
	}
	rs, err := s.Redemptions(ctx, f.Restaurant.ID, c.ID)
	ok(t, err)
	if len(rs) != 1 || rs[0].OrderID != o.ID || rs[0].CouponID != c.ID || rs[0].CustomerID != o.CustomerID ||
		rs[0].Amount != discount || !rs[0].CreatedAt.Equal(now) {
		t.Fatalf("redemptions = %+v", rs)
	}
	redeemed := eventsOf(events(t, s, f.Restaurant.ID), ladle.EventCouponRedeemed)
	if len(redeemed) != 1 {
		t.Fatalf("coupon.redeemed events: %d", len(redeemed))
	}
	if r := decode[ladle.Redemption](t, redeemed[0]); r.OrderID != o.ID || r.Amount != discount || r.CouponID != c.ID {
		t.Fatalf("coupon.redeemed payload = %+v", r)
	}
}

// testCreateOrderRefusals checks each refusal's code and that a refused
// order writes nothing.
func testCreateOrderRefusals(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	inactive := &ladle.Coupon{RestaurantID: rid, Code: "OLD", Kind: "fixed", Value: 100, Active: false}
	expired := &ladle.Coupon{RestaurantID: rid, Code: "EXPIRED", Kind: "fixed", Value: 100, Active: true,
		ValidUntil: ptr(now.Add(-time.Second))}
	future := &ladle.Coupon{RestaurantID: rid, Code: "SOON", Kind: "fixed", Value: 100, Active: true,
		ValidFrom: ptr(now.Add(time.Hour))}
	big := &ladle.Coupon{RestaurantID: rid, Code: "BIGSPENDER", Kind: "percent", Value: 20, Active: true, MinSubtotal: 10000}
	for _, c := range []*ladle.Coupon{inactive, expired, future, big} {
		ok(t, s.CreateCoupon(ctx, c))
	}

	cases := []struct {
		name string
		code string
		edit func(r *ladle.OrderRequest)
	}{
		{"unknown item", ladle.CodeValidation, func(r *ladle.OrderRequest) { r.Lines[1].ItemID = f.Soda.ID + 1000 }},
		{"other restaurant's item", ladle.CodeValidation, func(r *ladle.OrderRequest) { r.Lines[1].ItemID = f.OtherItem.ID }},
		{"sold out", ladle.CodeItemUnavailable, func(r *ladle.OrderRequest) {
			r.Lines[1] = ladle.LineRequest{ItemID: f.VeggieBurger.ID, Quantity: 1, ModifierIDs: []int64{f.Small.ID}}
		}},
		{"required group missing", ladle.CodeValidation, func(r *ladle.OrderRequest) { r.Lines[0].ModifierIDs = []int64{f.Cheese.ID} }},
		{"too many in a group", ladle.CodeValidation, func(r *ladle.OrderRequest) {
			r.Lines[0].ModifierIDs = []int64{f.Small.ID, f.Large.ID}
		}},
		{"modifier of another item", ladle.CodeValidation, func(r *ladle.OrderRequest) { r.Lines[1].ModifierIDs = []int64{f.Cheese.ID} }},
		{"other restaurant's modifier", ladle.CodeValidation, func(r *ladle.OrderRequest) {
			r.Lines[0].ModifierIDs = []int64{f.Large.ID, f.OtherModifier.ID}
		}},
		{"quantity", ladle.CodeValidation, func(r *ladle.OrderRequest) { r.Lines[0].Quantity = 100 }},
		{"no name", ladle.CodeValidation, func(r *ladle.OrderRequest) { r.Customer.Name = "" }},
		{"unknown coupon", ladle.CodeCouponInvalid, func(r *ladle.OrderRequest) { r.CouponCode = "NOPE" }},
		{"other restaurant's coupon", ladle.CodeCouponInvalid, func(r *ladle.OrderRequest) { r.CouponCode = f.OtherCoupon.Code }},
		{"inactive coupon", ladle.CodeCouponInvalid, func(r *ladle.OrderRequest) { r.CouponCode = "OLD" }},
		{"expired coupon", ladle.CodeCouponInvalid, func(r *ladle.OrderRequest) { r.CouponCode = "EXPIRED" }},
		{"coupon not valid yet", ladle.CodeCouponInvalid, func(r *ladle.OrderRequest) { r.CouponCode = "SOON" }},
		{"coupon minimum", ladle.CodeCouponInvalid, func(r *ladle.OrderRequest) { r.CouponCode = "BIGSPENDER" }},
	}
	for _, c := range cases {
		req := f.Request()
		c.edit(req)
		_, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: req, Now: now})
		if ladle.ErrorCode(err) != c.code {
			t.Errorf("%s: got %v, want %s", c.name, err, c.code)
		}
	}
	_, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: f.Other.ID + 1000, Request: f.Request(), Now: now})
	wantNotFound(t, err)

	all, err := s.Orders(ctx, rid, ladle.OrderFilter{Statuses: allStatuses})
	ok(t, err)
	if len(all) != 0 {
		t.Fatalf("refused orders were written: %+v", all)
	}
	cs, err := s.Coupons(ctx, rid)
	ok(t, err)
	for _, c := range cs {
		if c.Uses != 0 {
			t.Fatalf("coupon %s used %d times by refused orders", c.Code, c.Uses)
		}
	}
	if evs := events(t, s, rid); len(eventsOf(evs, ladle.EventOrderPlaced))+len(eventsOf(evs, ladle.EventCouponRedeemed)) != 0 {
		t.Fatalf("refused orders appended events: %v", eventTypes(evs))
	}
	// Nothing held the fingerprint: the plain request still goes through.
	place(t, s, f, f.Request())
}

var allStatuses = []ladle.OrderStatus{ladle.StatusPendingPayment, ladle.StatusPaymentFailed, ladle.StatusPlaced,
	ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady, ladle.StatusCompleted, ladle.StatusCancelled}

func ptr[T any](v T) *T { return &v }

func testCreateOrderCouponLimits(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	twice := &ladle.Coupon{RestaurantID: rid, Code: "TWICE", Kind: "fixed", Value: 200, MaxUses: 2, Active: true}
	once := &ladle.Coupon{RestaurantID: rid, Code: "ONCEEACH", Kind: "fixed", Value: 300, PerCustomerLimit: 1, Active: true}
	ok(t, s.CreateCoupon(ctx, twice))
	ok(t, s.CreateCoupon(ctx, once))

	withCoupon := func(email, code string) *ladle.OrderRequest {
		r := withEmail(f, email)
		r.CouponCode = code
		return r
	}
	place(t, s, f, withCoupon("a@example.com", "TWICE"))
	place(t, s, f, withCoupon("b@example.com", "TWICE"))
	_, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: withCoupon("c@example.com", "TWICE"), Now: now})
	wantCode(t, err, ladle.CodeCouponExhausted)

	place(t, s, f, confirmed(withCoupon("a@example.com", "ONCEEACH")))
	again := confirmed(withCoupon("A@example.com", "ONCEEACH")) // same guest, by email
	again.Normalize()
	_, err = s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: again, Now: now})
	wantCode(t, err, ladle.CodeCouponExhausted)
	place(t, s, f, confirmed(withCoupon("b@example.com", "ONCEEACH")))

	for code, want := range map[string]int{"TWICE": 2, "ONCEEACH": 2} {
		c, err := s.CouponByCode(ctx, rid, code)
		ok(t, err)
		if c.Uses != want {
			t.Fatalf("%s uses = %d, want %d", code, c.Uses, want)
		}
		rs, err := s.Redemptions(ctx, rid, c.ID)
		ok(t, err)
		if len(rs) != want {
			t.Fatalf("%s redemptions = %d, want %d", code, len(rs), want)
		}
	}
	all, err := s.Orders(ctx, rid, ladle.OrderFilter{Statuses: allStatuses})
	ok(t, err)
	if len(all) != 4 {
		t.Fatalf("orders = %d, want 4 (refused ones must not be written)", len(all))
	}
}

// confirmed marks the request a deliberate duplicate (tests that reuse
// content on purpose).
func confirmed(r *ladle.OrderRequest) *ladle.OrderRequest {
	r.ConfirmDuplicate = true
	return r
}

func testCreateOrderDuplicate(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	first := place(t, s, f, f.Request())

	at := func(d time.Duration) ladle.NewOrder {
		return ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: f.Request(), Now: now.Add(d)}
	}
	_, err := s.CreateOrder(ctx, at(time.Second))
	wantCode(t, err, ladle.CodePossibleDuplicate)
	var le *ladle.Error
	if !asError(err, &le) || le.Kind != ladle.KindConflict || le.Extra["order_id"] != first.ID || le.Extra["status"] != "placed" {
		t.Fatalf("possible_duplicate error = %#v", err)
	}
	// Tip, coupon and payment are not part of the content.
	req := f.Request()
	req.Tip, req.CouponCode = 100, "SAVE10"
	req.Payment = ladle.PaymentInput{Method: "card", Token: "tok_other"}
	_, err = s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: req, Now: now.Add(time.Minute)})
	wantCode(t, err, ladle.CodePossibleDuplicate)
	_, err = s.CreateOrder(ctx, at(ladle.DuplicateWindow-time.Microsecond))
	wantCode(t, err, ladle.CodePossibleDuplicate)

	// A deliberate duplicate goes through, and does not move the window.
	in := at(2 * time.Minute)
	in.Request.ConfirmDuplicate = true
	second, err := s.CreateOrder(ctx, in)
	ok(t, err)
	if second.Number != 2 {
		t.Fatalf("confirmed duplicate number = %d", second.Number)
	}
	// Once the window has passed, the same content is a new order, and it
	// holds the fingerprint from then on.
	third, err := s.CreateOrder(ctx, at(ladle.DuplicateWindow))
	ok(t, err)
	_, err = s.CreateOrder(ctx, at(ladle.DuplicateWindow+time.Minute))
	wantCode(t, err, ladle.CodePossibleDuplicate)
	if !asError(err, &le) || le.Extra["order_id"] != third.ID {
		t.Fatalf("duplicate should name the newest holder %s: %#v", third.ID, err)
	}
	// Other content, or another restaurant, is not a duplicate.
	place(t, s, f, withEmail(f, "someone.else@example.com"), func() time.Time { return now.Add(time.Second) })
	c, _ := s.CouponByCode(ctx, rid, "SAVE10")
	if c.Uses != 0 {
		t.Fatalf("a refused duplicate used the coupon: %d", c.Uses)
	}
}

func testCreateOrderSnapshot(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	o := place(t, s, f, f.Request())

	burger := *f.Burger
	burger.Name, burger.Price = "Mega Burger", 1999
	ok(t, s.UpdateItem(ctx, &burger))
	large := *f.Large
	large.Name, large.Price = "XL", 400
	ok(t, s.UpdateModifier(ctx, rid, &large))
	ok(t, s.DeleteItem(ctx, rid, f.Fries.ID))
	ok(t, s.DeleteModifier(ctx, rid, f.Cheese.ID))

	got, err := s.Order(ctx, o.ID)
	ok(t, err)
	if !reflect.DeepEqual(got, o) {
		t.Fatalf("order changed with the menu:\n got %+v\nwant %+v", got, o)
	}
	// And a new order prices from the new menu.
	req := f.Request()
	req.Lines = []ladle.LineRequest{{ItemID: f.Burger.ID, Quantity: 1, ModifierIDs: []int64{f.Large.ID}}}
	n := place(t, s, f, req)
	if n.Lines[0].Name != "Mega Burger" || n.Lines[0].UnitPrice != 2399 || n.Lines[0].Modifiers[0].Name != "XL" {
		t.Fatalf("new order line = %+v", n.Lines[0])
	}
}

func testCreateOrderRecoveryPoint(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	req := f.Request()
	rec, claimed, err := claimKey(s, rid, "key-1", req.Hash(), now, time.Minute)
	ok(t, err)
	if !claimed || rec.OrderID != "" {
		t.Fatalf("claim = %+v, %v", rec, claimed)
	}
	o, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, IdempotencyKey: "key-1", Fence: rec.Fence, Request: req, Now: now})
	ok(t, err)
	ok(t, s.UnlockIdempotencyKey(ctx, held(s, rid, "key-1")))
	rec, claimed, err = claimKey(s, rid, "key-1", req.Hash(), now.Add(time.Second), time.Minute)
	ok(t, err)
	if !claimed || rec.OrderID != o.ID {
		t.Fatalf("re-claim after the order: %+v, claimed %v; want recovery point %s", rec, claimed, o.ID)
	}
	// A refused order leaves the key without a recovery point.
	bad := f.Request()
	bad.Lines[0].Quantity = 0
	_, _, err = claimKey(s, rid, "key-2", bad.Hash(), now, time.Minute)
	ok(t, err)
	_, err = s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, IdempotencyKey: "key-2", Fence: held(s, rid, "key-2").Fence, Request: bad, Now: now})
	wantCode(t, err, ladle.CodeValidation)
	rec, _, err = claimKey(s, rid, "key-2", bad.Hash(), now, time.Minute)
	ok(t, err)
	if rec.OrderID != "" {
		t.Fatalf("refused order set a recovery point: %+v", rec)
	}
}

func testCreateOrderTenantScoping(t *testing.T, e *env) {
	s, f := e.seed()
	o := place(t, s, f, f.Request())
	_, err := s.RestaurantOrder(ctx, f.Other.ID, o.ID)
	wantNotFound(t, err)
	_, err = s.SetOrderStatus(ctx, f.Other.ID, o.ID, ladle.StatusAccepted, "", 0, now)
	wantNotFound(t, err)
	_, err = s.SetOrderStatus(ctx, f.Other.ID, o.ID, ladle.StatusCancelled, "mine now", 0, now)
	wantNotFound(t, err)
	list, err := s.Orders(ctx, f.Other.ID, ladle.OrderFilter{Statuses: allStatuses})
	ok(t, err)
	if len(list) != 0 {
		t.Fatalf("other restaurant lists our orders: %+v", list)
	}
	_, err = s.Redemptions(ctx, f.Other.ID, f.Coupon.ID)
	wantNotFound(t, err)
	got, err := s.Order(ctx, o.ID)
	ok(t, err)
	if got.Status != ladle.StatusPlaced || got.UpdatedAt != o.UpdatedAt {
		t.Fatalf("refused calls changed the order: %+v", got)
	}
	if evs := eventsOf(events(t, s, f.Restaurant.ID), ladle.EventOrderStatusChanged); len(evs) != 0 {
		t.Fatalf("refused calls appended %d events", len(evs))
	}
}

func testOrdersFilter(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	at := func(d time.Duration) ladle.Clock { return func() time.Time { return now.Add(d) } }
	o1 := place(t, s, f, withEmail(f, "one@example.com"), at(0))
	o2 := place(t, s, f, withEmail(f, "two@example.com"), at(time.Minute))
	o3 := place(t, s, f, withEmail(f, "three@example.com"), at(2*time.Minute))
	card := place(t, s, f, cardRequest(f), at(3*time.Minute)) // pending_payment: not on the board
	_, err := s.SetOrderStatus(ctx, rid, o2.ID, ladle.StatusAccepted, "", 0, now.Add(4*time.Minute))
	ok(t, err)

	ids := func(os []ladle.Order) []string {
		var ids []string
		for _, o := range os {
			ids = append(ids, o.ID)
		}
		return ids
	}
	board, err := s.Orders(ctx, rid, ladle.OrderFilter{})
	ok(t, err)
	if got, want := ids(board), []string{o3.ID, o2.ID, o1.ID}; !equal(got, want) {
		t.Fatalf("board = %v, want newest first %v", got, want)
	}
	if len(board[0].Lines) != 2 || board[0].Lines[0].Name != "Burger" || board[1].Status != ladle.StatusAccepted {
		t.Fatalf("listed orders lack lines or status: %+v", board[:2])
	}
	got, err := s.Orders(ctx, rid, ladle.OrderFilter{Statuses: []ladle.OrderStatus{ladle.StatusAccepted}})
	ok(t, err)
	if !equal(ids(got), []string{o2.ID}) {
		t.Fatalf("accepted = %v", ids(got))
	}
	got, err = s.Orders(ctx, rid, ladle.OrderFilter{Statuses: []ladle.OrderStatus{ladle.StatusPendingPayment}})
	ok(t, err)
	if !equal(ids(got), []string{card.ID}) {
		t.Fatalf("pending_payment = %v", ids(got))
	}
	got, err = s.Orders(ctx, rid, ladle.OrderFilter{Since: now.Add(time.Minute)})
	ok(t, err)
	if !equal(ids(got), []string{o3.ID, o2.ID}) {
		t.Fatalf("since = %v (created_at >= since)", ids(got))
	}
	got, err = s.Orders(ctx, rid, ladle.OrderFilter{Limit: 1})
	ok(t, err)
	if !equal(ids(got), []string{o3.ID}) {
		t.Fatalf("limit 1 = %v", ids(got))
	}
	_, err = s.Orders(ctx, rid, ladle.OrderFilter{Statuses: []ladle.OrderStatus{"bogus"}})
	wantCode(t, err, ladle.CodeValidation)
}

func testSetOrderStatus(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	o := place(t, s, f, f.Request())
	step := now
	for _, to := range []ladle.OrderStatus{ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady, ladle.StatusCompleted} {
		step = step.Add(time.Minute)
		got, err := s.SetOrderStatus(ctx, rid, o.ID, to, "ignored unless cancelling", f.Owner.ID, step)
		ok(t, err)
		if got.Status != to || !got.UpdatedAt.Equal(step) || got.CancelReason != "" || len(got.Lines) != 2 {
			t.Fatalf("after → %s: %+v", to, got)
		}
	}
	changes := eventsOf(events(t, s, rid), ladle.EventOrderStatusChanged)
	if len(changes) != 4 {
		t.Fatalf("order.status_changed events = %d, want 4", len(changes))
	}
	last := decode[ladle.StatusChange](t, changes[3])
	if last.OrderID != o.ID || last.Number != o.Number || last.From != ladle.StatusReady || last.To != ladle.StatusCompleted ||
		last.Order == nil || last.Order.Status != ladle.StatusCompleted || changes[3].AggregateID != o.ID {
		t.Fatalf("last status change = %+v", last)
	}
	_, err := s.SetOrderStatus(ctx, rid, o.ID, ladle.StatusCancelled, "too late", f.Owner.ID, step)
	wantCode(t, err, ladle.CodeInvalidTransition)

	// Skipping a step is refused and changes nothing.
	p := place(t, s, f, withEmail(f, "p@example.com"))
	_, err = s.SetOrderStatus(ctx, rid, p.ID, ladle.StatusReady, "", 0, now)
	wantCode(t, err, ladle.CodeInvalidTransition)
	if ladle.ErrorKind(err) != ladle.KindConflict {
		t.Fatalf("invalid_transition kind = %v", ladle.ErrorKind(err))
	}
	_, err = s.SetOrderStatus(ctx, rid, p.ID, ladle.StatusCancelled, "  ", 0, now)
	wantCode(t, err, ladle.CodeValidation)
	got, err := s.SetOrderStatus(ctx, rid, p.ID, ladle.StatusCancelled, "out of buns", 0, now.Add(time.Minute))
	ok(t, err)
	if got.Status != ladle.StatusCancelled || got.CancelReason != "out of buns" {
		t.Fatalf("cancelled = %+v", got)
	}
	stored, err := s.Order(ctx, p.ID)
	ok(t, err)
	if stored.CancelReason != "out of buns" {
		t.Fatalf("stored cancel reason = %q", stored.CancelReason)
	}
	changes = eventsOf(events(t, s, rid), ladle.EventOrderStatusChanged)
	if c := decode[ladle.StatusChange](t, changes[len(changes)-1]); c.Reason != "out of buns" || c.To != ladle.StatusCancelled {
		t.Fatalf("cancel event = %+v", c)
	}

	// Staff cannot move an unpaid order.
	card := place(t, s, f, cardRequest(f), func() time.Time { return now.Add(time.Hour) })
	_, err = s.SetOrderStatus(ctx, rid, card.ID, ladle.StatusAccepted, "", 0, now)
	wantCode(t, err, ladle.CodeInvalidTransition)
	_, err = s.SetOrderStatus(ctx, rid, newID(), ladle.StatusAccepted, "", 0, now)
	wantNotFound(t, err)
}
