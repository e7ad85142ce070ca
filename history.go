package ladle

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// StatusEntry is one change of an order's status: who made it and when.
// UserID 0 is the system (a payment settlement, a timeout). The first entry
// of an order's history is its creation (From empty), read from the order
// itself.
type StatusEntry struct {
	From     OrderStatus `json:"from,omitempty"`
	To       OrderStatus `json:"to"`
	UserID   int64       `json:"user_id,omitempty"`
	UserName string      `json:"user_name,omitempty"`
	Reason   string      `json:"reason,omitempty"`
	At       time.Time   `json:"at"`
}

// OrderCursor is a position in the history's order (newest first: created
// at, then id): the last order of a page, from which the next page goes on.
type OrderCursor struct {
	CreatedAt time.Time
	ID        string
}

// String encodes the cursor for a URL: "<unix microseconds>_<id>".
func (c OrderCursor) String() string {
	return strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "_" + c.ID
}

// ParseOrderCursor reads a cursor String wrote; ok is false for anything
// else.
func ParseOrderCursor(s string) (c OrderCursor, ok bool) {
	us, id, found := strings.Cut(s, "_")
	if !found || id == "" || len(id) > 64 {
		return c, false
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil {
		return c, false
	}
	return OrderCursor{CreatedAt: time.UnixMicro(n).UTC(), ID: id}, true
}

// OrderQuery selects a restaurant's orders for the staff history: those
// created in [From, To), matching Search, newest first, one page at a time.
type OrderQuery struct {
	From, To time.Time
	// Search matches, case-insensitively: an order number ("1234" or
	// "#1234"), an email (exactly, when it holds an @), the digits of a phone
	// number (7 or more digits, anywhere in the stored number), or a part of
	// the customer's name. Empty matches every order.
	Search string
	// Statuses restricts the statuses; empty is every status.
	Statuses []OrderStatus
	// After is the previous page's last order; nil for the first page.
	After *OrderCursor
	// Limit is the page size: 0 for 50, at most 500.
	Limit int
}

// Report is a restaurant's sales over a date range, in its time zone.
// Sales are orders placed and not cancelled (placed, accepted, preparing,
// ready, completed); Revenue is their totals (tax and tips included), by
// when each order was placed: the gross.
//
// Refunded is the card refunds that succeeded in the range, counted when
// they succeeded (not when their order was placed: a refund on Tuesday of
// Monday's order lowers Tuesday), of orders that are sales: a cancelled
// order's refunds are left out, as the order itself is. Net is Revenue
// minus Refunded; it can be negative for a range with more refunds than
// sales.
type Report struct {
	From, To      time.Time // [From, To), UTC
	Orders        int
	Revenue       Money
	Refunded      Money
	Net           Money
	Discounts     Money
	Tax, Tips     Money
	AverageTicket Money // Revenue / Orders, rounded down; 0 without orders
	Cancelled     int   // orders cancelled (not in the sales)
	// Days has one bucket per local day of the range, in order, zeros
	// included; Hours one per local hour of the day (0–23) over the whole
	// range.
	Days     []ReportBucket
	Hours    []ReportBucket
	TopItems []ItemSales
	Coupons  []CouponUse
}

// ReportBucket is the sales of one day or one hour of the day.
type ReportBucket struct {
	Label    string    `json:"label"` // "2030-05-17" or "14:00"
	Start    time.Time `json:"start"` // a day's local midnight; zero for hours
	Orders   int       `json:"orders"`
	Revenue  Money     `json:"revenue"`  // gross, by when orders were placed
	Refunded Money     `json:"refunded"` // by when refunds succeeded
	Net      Money     `json:"net"`      // Revenue - Refunded
}

// ItemSales is what one menu item sold in a report's range.
type ItemSales struct {
	ItemID   int64  `json:"item_id"`
	Name     string `json:"name"`
	Quantity int    `json:"quantity"`
	Revenue  Money  `json:"revenue"` // its lines' totals, modifiers included
}

// CouponUse is how often a coupon code was used in a report's range.
type CouponUse struct {
	Code     string `json:"code"`
	Orders   int    `json:"orders"`
	Discount Money  `json:"discount"`
}

// SalesSlot is the sales of one quarter hour (UTC, aligned to :00, :15,
// :30, :45): what stores aggregate, so BuildReport can place each slot in
// any time zone's day and hour (every zone's offset is a whole number of
// quarter hours).
type SalesSlot struct {
	Start     time.Time
	Orders    int
	Revenue   Money
	Refunded  Money // refunds that succeeded in the slot (Report.Refunded)
	Discounts Money
	Tax, Tips Money
	Cancelled int
}

// BuildReport assembles a Report for [from, to) in loc from the range's
// quarter-hour slots, top items and coupon uses.
func BuildReport(loc *time.Location, from, to time.Time, slots []SalesSlot, items []ItemSales, coupons []CouponUse) *Report {
	rep := &Report{From: from.UTC(), To: to.UTC(), TopItems: items, Coupons: coupons}
	if rep.TopItems == nil {
		rep.TopItems = []ItemSales{}
	}
	if rep.Coupons == nil {
		rep.Coupons = []CouponUse{}
	}
	dayIndex := map[string]int{}
	for d := from.In(loc); d.Before(to); {
		y, m, dd := d.Date()
		start := time.Date(y, m, dd, 0, 0, 0, 0, loc)
		label := start.Format("2006-01-02")
		dayIndex[label] = len(rep.Days)
		rep.Days = append(rep.Days, ReportBucket{Label: label, Start: start})
		d = time.Date(y, m, dd+1, 0, 0, 0, 0, loc)
	}
	rep.Hours = make([]ReportBucket, 24)
	for h := range rep.Hours {
		rep.Hours[h].Label = strconv.Itoa(h) + ":00"
		if h < 10 {
			rep.Hours[h].Label = "0" + rep.Hours[h].Label
		}
	}
	add := func(b *ReportBucket, s SalesSlot) {
		b.Orders += s.Orders
		b.Revenue += s.Revenue
		b.Refunded += s.Refunded
		b.Net = b.Revenue - b.Refunded
	}
	for _, s := range slots {
		rep.Cancelled += s.Cancelled
		if s.Orders == 0 && s.Refunded == 0 {
			continue
		}
		rep.Orders += s.Orders
		rep.Revenue += s.Revenue
		rep.Refunded += s.Refunded
		rep.Discounts += s.Discounts
		rep.Tax += s.Tax
		rep.Tips += s.Tips
		lt := s.Start.In(loc)
		if i, ok := dayIndex[lt.Format("2006-01-02")]; ok {
			add(&rep.Days[i], s)
		}
		add(&rep.Hours[lt.Hour()], s)
	}
	rep.Net = rep.Revenue - rep.Refunded
	if rep.Orders > 0 {
		rep.AverageTicket = rep.Revenue / Money(rep.Orders)
	}
	return rep
}

// SalesStatuses are the statuses whose orders count as sales in reports.
var SalesStatuses = []OrderStatus{StatusPlaced, StatusAccepted, StatusPreparing, StatusReady, StatusCompleted}

// HistoryStore is the staff's view of past orders. Every method is scoped
// to one restaurant: another restaurant's order is not_found.
type HistoryStore interface {
	// SearchOrders returns one page of OrderQuery, lines included. A next
	// page exists when the page is full; its After is the last order's
	// cursor.
	SearchOrders(ctx context.Context, restaurantID int64, q OrderQuery) ([]Order, error)
	// OrderHistory lists the order's status changes, oldest first, its
	// creation first.
	OrderHistory(ctx context.Context, restaurantID int64, orderID string) ([]StatusEntry, error)
	// OrderEmails lists the emails recorded for the order, oldest first.
	OrderEmails(ctx context.Context, restaurantID int64, orderID string) ([]Email, error)
	// SalesReport aggregates [from, to): quarter-hour sales slots (with
	// the refunds that succeeded in each, of orders not cancelled), the top
	// items by quantity (at most topItems) and every coupon code used.
	SalesReport(ctx context.Context, restaurantID int64, from, to time.Time, topItems int) ([]SalesSlot, []ItemSales, []CouponUse, error)
}
