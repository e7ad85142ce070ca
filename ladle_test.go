package ladle_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// menu: Soup 6.50 with a required Size (Cup +0, Bowl +2.50) and optional
// Toppings (max 2: Croutons +0.50, Parmesan +0.75, Chili +0.50); Bread 4.50
// (sold out); Tea 3.00.
func menu() *ladle.Menu {
	size := ladle.ModifierGroup{ID: 10, Name: "Size", Min: 1, Max: 1, Modifiers: []ladle.Modifier{{ID: 100, Name: "Cup"}, {ID: 101, Name: "Bowl", Price: 250}}}
	tops := ladle.ModifierGroup{ID: 11, Name: "Toppings", Min: 0, Max: 2, Modifiers: []ladle.Modifier{
		{ID: 110, Name: "Croutons", Price: 50}, {ID: 111, Name: "Parmesan", Price: 75}, {ID: 112, Name: "Chili", Price: 50}}}
	return &ladle.Menu{Categories: []ladle.Category{{ID: 1, Items: []ladle.Item{
		{ID: 1, Name: "Soup", Price: 650, Available: true, ModifierGroups: []ladle.ModifierGroup{size, tops}},
		{ID: 2, Name: "Bread", Price: 450, Available: false},
		{ID: 3, Name: "Tea", Price: 300, Available: true},
	}}}}
}

var restaurant = &ladle.Restaurant{ID: 7, Currency: "USD", TaxRateBP: 875}

func request(lines ...ladle.LineRequest) *ladle.OrderRequest {
	r := &ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: " Ada ", Email: " Ada@Example.com ", Phone: "(212) 555-0100"},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:       lines,
		Payment:     ladle.PaymentInput{Method: "pay_at_pickup"},
	}
	r.Normalize()
	return r
}

func TestPrice(t *testing.T) {
	r := request(ladle.LineRequest{ItemID: 1, Quantity: 2, ModifierIDs: []int64{111, 101}}, ladle.LineRequest{ItemID: 3, Quantity: 1})
	r.Tip = 200
	p, err := ladle.Price(menu(), restaurant, r, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	// Soup Bowl + Parmesan: 6.50 + 2.50 + 0.75 = 9.75 ×2 = 19.50; Tea 3.00.
	if p.Lines[0].UnitPrice != 975 || p.Lines[0].LineTotal != 1950 || p.Subtotal != 2250 {
		t.Fatalf("lines %+v subtotal %d", p.Lines, p.Subtotal)
	}
	if len(p.Lines[0].Modifiers) != 2 || p.Lines[0].Modifiers[0].GroupName != "Size" {
		t.Fatalf("modifier snapshot %+v", p.Lines[0].Modifiers)
	}
	// Tax 8.75% of 22.50 = 1.96875 → 1.97 (half up); total adds the tip.
	if p.Tax != 197 || p.Total != 2250+197+200 {
		t.Fatalf("tax %d total %d", p.Tax, p.Total)
	}
}

func TestPriceRejects(t *testing.T) {
	cases := map[string]struct {
		line ladle.LineRequest
		code string
	}{
		"sold out":            {ladle.LineRequest{ItemID: 2, Quantity: 1}, ladle.CodeItemUnavailable},
		"unknown item":        {ladle.LineRequest{ItemID: 99, Quantity: 1}, ladle.CodeValidation},
		"required group":      {ladle.LineRequest{ItemID: 1, Quantity: 1}, ladle.CodeValidation},
		"over max":            {ladle.LineRequest{ItemID: 1, Quantity: 1, ModifierIDs: []int64{100, 110, 111, 112}}, ladle.CodeValidation},
		"two in a single":     {ladle.LineRequest{ItemID: 1, Quantity: 1, ModifierIDs: []int64{100, 101}}, ladle.CodeValidation},
		"modifier of another": {ladle.LineRequest{ItemID: 3, Quantity: 1, ModifierIDs: []int64{100}}, ladle.CodeValidation},
	}
	for name, c := range cases {
		_, err := ladle.Price(menu(), restaurant, request(c.line), nil, now)
		if got := ladle.ErrorCode(err); got != c.code {
			t.Errorf("%s: code %q, want %q (%v)", name, got, c.code, err)
		}
	}
}

func TestCouponDiscount(t *testing.T) {
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	cases := []struct {
		name     string
		c        ladle.Coupon
		subtotal ladle.Money
		want     ladle.Money
		code     string
	}{
		{"percent rounds half up", ladle.Coupon{Kind: "percent", Value: 15, Active: true}, 1010, 152, ""},
		{"fixed", ladle.Coupon{Kind: "fixed", Value: 300, Active: true}, 1000, 300, ""},
		{"never more than the subtotal", ladle.Coupon{Kind: "fixed", Value: 3000, Active: true}, 1000, 1000, ""},
		{"below minimum", ladle.Coupon{Kind: "fixed", Value: 300, MinSubtotal: 1500, Active: true}, 1000, 0, ladle.CodeCouponInvalid},
		{"expired", ladle.Coupon{Kind: "fixed", Value: 300, ValidUntil: &past, Active: true}, 1000, 0, ladle.CodeCouponInvalid},
		{"not yet", ladle.Coupon{Kind: "fixed", Value: 300, ValidFrom: &future, Active: true}, 1000, 0, ladle.CodeCouponInvalid},
		{"inactive", ladle.Coupon{Kind: "fixed", Value: 300}, 1000, 0, ladle.CodeCouponInvalid},
	}
	for _, c := range cases {
		d, err := c.c.Discount(c.subtotal, now)
		if ladle.ErrorCode(err) != c.code && !(c.code == "" && err == nil) {
			t.Errorf("%s: %v", c.name, err)
		}
		if d != c.want {
			t.Errorf("%s: discount %d, want %d", c.name, d, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	valid := func() *ladle.OrderRequest { return request(ladle.LineRequest{ItemID: 3, Quantity: 1}) }
	if errs := valid().Validate(now); len(errs) != 0 {
		t.Fatalf("a valid request fails: %v", errs)
	}
	cases := map[string]struct {
		edit  func(r *ladle.OrderRequest)
		field string
	}{
		"no name":          {func(r *ladle.OrderRequest) { r.Customer.Name = "" }, "customer.name"},
		"bad email":        {func(r *ladle.OrderRequest) { r.Customer.Email = "ada@" }, "customer.email"},
		"display email":    {func(r *ladle.OrderRequest) { r.Customer.Email = "Ada <ada@example.com>" }, "customer.email"},
		"quantity 0":       {func(r *ladle.OrderRequest) { r.Lines[0].Quantity = 0 }, "lines[0].quantity"},
		"quantity 100":     {func(r *ladle.OrderRequest) { r.Lines[0].Quantity = 100 }, "lines[0].quantity"},
		"pickup in past":   {func(r *ladle.OrderRequest) { r.Fulfillment.Time = now.Add(-time.Hour).Format(time.RFC3339) }, "fulfillment.time"},
		"pickup not time":  {func(r *ladle.OrderRequest) { r.Fulfillment.Time = "tomorrow" }, "fulfillment.time"},
		"delivery":         {func(r *ladle.OrderRequest) { r.Fulfillment.Type = "delivery" }, "fulfillment.type"},
		"card no token":    {func(r *ladle.OrderRequest) { r.Payment = ladle.PaymentInput{Method: "card"} }, "payment.token"},
		"unknown method":   {func(r *ladle.OrderRequest) { r.Payment = ladle.PaymentInput{Method: "iou"} }, "payment.method"},
		"negative tip":     {func(r *ladle.OrderRequest) { r.Tip = -1 }, "tip"},
		"repeated mod":     {func(r *ladle.OrderRequest) { r.Lines[0].ModifierIDs = []int64{5, 5} }, "lines[0].modifier_ids"},
		"no lines":         {func(r *ladle.OrderRequest) { r.Lines = nil }, "lines"},
		"too long a note":  {func(r *ladle.OrderRequest) { r.Lines[0].Note = string(make([]rune, 201)) }, "lines[0].note"},
		"short phone":      {func(r *ladle.OrderRequest) { r.Customer.Phone = "123" }, "customer.phone"},
		"missing item id":  {func(r *ladle.OrderRequest) { r.Lines[0].ItemID = 0 }, "lines[0].item_id"},
		"huge tip":         {func(r *ladle.OrderRequest) { r.Tip = ladle.MaxTip + 1 }, "tip"},
		"pickup in a year": {func(r *ladle.OrderRequest) { r.Fulfillment.Time = now.AddDate(1, 0, 0).Format(time.RFC3339) }, "fulfillment.time"},
	}
	for name, c := range cases {
		r := valid()
		c.edit(r)
		if errs := r.Validate(now); errs[c.field] == "" {
			t.Errorf("%s: no error on %s (got %v)", name, c.field, errs)
		}
	}
}

func TestNormalizeHashFingerprint(t *testing.T) {
	a := request(ladle.LineRequest{ItemID: 1, Quantity: 1, ModifierIDs: []int64{111, 100}}, ladle.LineRequest{ItemID: 3, Quantity: 2})
	if a.Customer.Email != "ada@example.com" || a.Customer.Name != "Ada" || a.Customer.Phone != "2125550100" {
		t.Fatalf("normalized customer %+v", a.Customer)
	}
	// The same body with keys in another order and other white space hashes the same.
	var b ladle.OrderRequest
	if err := json.Unmarshal([]byte(`{"payment":{"method":"pay_at_pickup"},"lines":[{"quantity":1,"item_id":1,"modifier_ids":[100,111]},{"item_id":3,"quantity":2}],
		"fulfillment":{"time":"asap","type":"pickup"},"customer":{"phone":"212-555-0100","email":"ADA@example.com","name":"Ada"}}`), &b); err != nil {
		t.Fatal(err)
	}
	b.Normalize()
	if a.Hash() != b.Hash() {
		t.Fatal("equal requests hash differently")
	}
	// The fingerprint ignores line order, tip, coupon and payment; not content.
	c := request(ladle.LineRequest{ItemID: 3, Quantity: 2}, ladle.LineRequest{ItemID: 1, Quantity: 1, ModifierIDs: []int64{100, 111}})
	c.Tip, c.CouponCode, c.Payment = 500, "SAVE10", ladle.PaymentInput{Method: "card", Token: "tok_visa"}
	if a.Fingerprint(7) != c.Fingerprint(7) {
		t.Fatal("fingerprint depends on line order, tip, coupon or payment")
	}
	if a.Hash() == c.Hash() {
		t.Fatal("hash ignores the tip")
	}
	d := request(ladle.LineRequest{ItemID: 3, Quantity: 3}, ladle.LineRequest{ItemID: 1, Quantity: 1, ModifierIDs: []int64{100, 111}})
	if a.Fingerprint(7) == d.Fingerprint(7) || a.Fingerprint(7) == a.Fingerprint(8) {
		t.Fatal("fingerprint ignores quantity or restaurant")
	}
}

func TestTransitions(t *testing.T) {
	walk := []ladle.OrderStatus{ladle.StatusPlaced, ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady, ladle.StatusCompleted}
	for i := 0; i+1 < len(walk); i++ {
		if !ladle.CanTransition(walk[i], walk[i+1]) || !ladle.CanTransition(walk[i], ladle.StatusCancelled) {
			t.Fatalf("%s → %s refused", walk[i], walk[i+1])
		}
		if ladle.CanTransition(walk[i+1], walk[i]) {
			t.Fatalf("%s → %s allowed", walk[i+1], walk[i])
		}
	}
	for _, from := range []ladle.OrderStatus{ladle.StatusCompleted, ladle.StatusCancelled, ladle.StatusPendingPayment, ladle.StatusPaymentFailed} {
		if len(ladle.NextStatuses(from)) != 0 {
			t.Fatalf("staff can move an order out of %s", from)
		}
	}
	if ladle.CanTransition(ladle.StatusPlaced, ladle.StatusReady) {
		t.Fatal("a step can be skipped")
	}
}
