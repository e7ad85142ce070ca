package ladle

import (
	"strconv"
	"time"
)

// Coupon is a discount code of one restaurant.
type Coupon struct {
	ID           int64  `json:"id"`
	RestaurantID int64  `json:"-"`
	Code         string `json:"code"` // upper-case, unique per restaurant
	// Kind is "percent" (Value in whole percent, 1–100) or "fixed" (Value in
	// minor units).
	Kind        string     `json:"kind"`
	Value       int64      `json:"value"`
	MinSubtotal Money      `json:"min_subtotal"`
	ValidFrom   *time.Time `json:"valid_from,omitempty"`
	ValidUntil  *time.Time `json:"valid_until,omitempty"`
	// MaxUses caps redemptions across all guests; 0 is unlimited.
	MaxUses int `json:"max_uses"`
	// PerCustomerLimit caps redemptions per guest (by email); 0 is unlimited.
	PerCustomerLimit int       `json:"per_customer_limit"`
	Uses             int       `json:"uses"`
	Active           bool      `json:"active"`
	CreatedAt        time.Time `json:"created_at"`
}

// Redemption records one use of a coupon by one order.
type Redemption struct {
	CouponID   int64     `json:"coupon_id"`
	OrderID    string    `json:"order_id"`
	CustomerID int64     `json:"customer_id"`
	Amount     Money     `json:"amount"`
	CreatedAt  time.Time `json:"created_at"`
}

// Priced is an order request priced against a menu.
type Priced struct {
	Lines    []OrderLine
	Subtotal Money
	Discount Money
	Tax      Money
	Tip      Money
	Total    Money
}

// Price validates req against the menu (items exist and are available,
// modifiers belong to the item and respect each group's min/max) and prices
// it. coupon may be nil; its usage limits are the store's to enforce
// atomically, its validity window and minimum are checked here. The menu must
// be read from the database in the same transaction that writes the order,
// never from a cache: a stale cache must not undercharge.
func Price(menu *Menu, r *Restaurant, req *OrderRequest, coupon *Coupon, now time.Time) (*Priced, error) {
	p := &Priced{Lines: make([]OrderLine, 0, len(req.Lines)), Tip: req.Tip}
	fields := map[string]string{}
	for i, l := range req.Lines {
		at := "lines[" + strconv.Itoa(i) + "]"
		item := menu.ItemByID(l.ItemID)
		if item == nil {
			fields[at+".item_id"] = "no such item on this menu"
			continue
		}
		if !item.Available {
			return nil, &Error{Kind: KindConflict, Code: CodeItemUnavailable,
				Message: item.Name + " is sold out", Fields: map[string]string{at + ".item_id": "is sold out"},
				Extra: map[string]any{"item_id": item.ID}}
		}
		line := OrderLine{ItemID: item.ID, Name: item.Name, Quantity: l.Quantity, Note: l.Note, Modifiers: []LineModifier{}}
		unit := item.Price
		chosen := map[int64]bool{}
		for _, id := range l.ModifierIDs {
			chosen[id] = true
		}
		found := 0
		for _, g := range item.ModifierGroups {
			n := 0
			for _, m := range g.Modifiers {
				if chosen[m.ID] {
					n++
					unit += m.Price
					line.Modifiers = append(line.Modifiers, LineModifier{ID: m.ID, GroupName: g.Name, Name: m.Name, Price: m.Price})
				}
			}
			found += n
			if n < g.Min || (g.Max > 0 && n > g.Max) {
				fields[at+".modifier_ids"] = groupRule(g)
			}
		}
		if found != len(l.ModifierIDs) {
			fields[at+".modifier_ids"] = "has a modifier that does not belong to this item"
		}
		line.UnitPrice = unit
		line.LineTotal = unit * Money(l.Quantity)
		p.Subtotal += line.LineTotal
		p.Lines = append(p.Lines, line)
	}
	if len(fields) > 0 {
		return nil, &Error{Kind: KindInvalid, Code: CodeValidation, Message: "the order has invalid lines", Fields: fields}
	}
	if p.Tip > p.Subtotal {
		// Validate caps the tip absolutely (MaxTip); here it is capped at
		// the order itself: a tip above 100 % of the food is a typo or abuse.
		return nil, &Error{Kind: KindInvalid, Code: CodeValidation, Message: "the tip is larger than the order",
			Fields: map[string]string{"tip": "must not be more than the subtotal (100 %)"}}
	}
	if coupon != nil {
		d, err := coupon.Discount(p.Subtotal, now)
		if err != nil {
			return nil, err
		}
		p.Discount = d
	}
	taxable := p.Subtotal - p.Discount
	// Half-up rounding of taxable × rate / 10000.
	p.Tax = (taxable*Money(r.TaxRateBP) + 5000) / 10000
	p.Total = taxable + p.Tax + p.Tip
	return p, nil
}

func groupRule(g ModifierGroup) string {
	switch {
	case g.Min == g.Max:
		return "choose exactly " + strconv.Itoa(g.Min) + " from " + g.Name
	case g.Max == 0:
		return "choose at least " + strconv.Itoa(g.Min) + " from " + g.Name
	default:
		return "choose " + strconv.Itoa(g.Min) + "–" + strconv.Itoa(g.Max) + " from " + g.Name
	}
}

// Discount returns what the coupon takes off a subtotal at time now, or a
// coupon_invalid error saying why it does not apply. It never exceeds the
// subtotal.
func (c *Coupon) Discount(subtotal Money, now time.Time) (Money, error) {
	invalid := func(msg string) error {
		return &Error{Kind: KindConflict, Code: CodeCouponInvalid, Message: msg,
			Fields: map[string]string{"coupon_code": msg}}
	}
	switch {
	case !c.Active:
		return 0, invalid("this coupon is no longer active")
	case c.ValidFrom != nil && now.Before(*c.ValidFrom):
		return 0, invalid("this coupon is not valid yet")
	case c.ValidUntil != nil && !now.Before(*c.ValidUntil):
		return 0, invalid("this coupon has expired")
	case subtotal < c.MinSubtotal:
		return 0, invalid("the order is below this coupon's minimum")
	}
	var d Money
	if c.Kind == "percent" {
		d = (subtotal*Money(c.Value) + 50) / 100
	} else {
		d = Money(c.Value)
	}
	return min(d, subtotal), nil
}

// Quote is what an order request would cost and when it would be ready,
// priced by the same code as the order itself (OrderStore.QuoteOrder).
type Quote struct {
	Lines      []OrderLine `json:"lines"`
	Subtotal   Money       `json:"subtotal"`
	Discount   Money       `json:"discount"`
	Tax        Money       `json:"tax"`
	Tip        Money       `json:"tip"`
	Total      Money       `json:"total"`
	Currency   string      `json:"currency"`
	CouponCode string      `json:"coupon_code,omitempty"`
	// PickupSlot and ReadyEstimate are as the order would get them.
	PickupSlot    *time.Time `json:"pickup_slot,omitempty"`
	ReadyEstimate *time.Time `json:"ready_estimate,omitempty"`
}
