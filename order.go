package ladle

import (
	"time"
)

// OrderStatus is where an order is in its life.
//
//	pending_payment ──> placed ──> accepted ──> preparing ──> ready ──> completed
//	       │              └──────────┴─────────────┴────────────┴──> cancelled (with a reason)
//	       └──> payment_failed
//
// pending_payment and payment_failed are never shown on the staff board: the
// kitchen sees an order only once it is paid for (or is pay-at-pickup).
type OrderStatus string

const (
	StatusPendingPayment OrderStatus = "pending_payment"
	StatusPaymentFailed  OrderStatus = "payment_failed"
	StatusPlaced         OrderStatus = "placed"
	StatusAccepted       OrderStatus = "accepted"
	StatusPreparing      OrderStatus = "preparing"
	StatusReady          OrderStatus = "ready"
	StatusCompleted      OrderStatus = "completed"
	StatusCancelled      OrderStatus = "cancelled"
)

// staffTransitions lists the moves staff may make. Payment moves
// (pending_payment → placed / payment_failed) are made by the ordering
// service only.
var staffTransitions = map[OrderStatus][]OrderStatus{
	StatusPlaced:    {StatusAccepted, StatusCancelled},
	StatusAccepted:  {StatusPreparing, StatusCancelled},
	StatusPreparing: {StatusReady, StatusCancelled},
	StatusReady:     {StatusCompleted, StatusCancelled},
}

// CanTransition reports whether staff may move an order from one status to another.
func CanTransition(from, to OrderStatus) bool {
	for _, s := range staffTransitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// NextStatuses lists the statuses staff may move an order to from s.
func NextStatuses(s OrderStatus) []OrderStatus { return staffTransitions[s] }

// OnBoard reports whether the status belongs on the staff order board.
func (s OrderStatus) OnBoard() bool {
	return s != StatusPendingPayment && s != StatusPaymentFailed
}

// Order is a guest's order. Lines hold snapshots, so an order reads the same
// after the menu changes.
type Order struct {
	ID           string `json:"id"` // UUIDv7, time-ordered
	RestaurantID int64  `json:"restaurant_id"`
	// Number is the human order number, per restaurant, counting from 1.
	Number      int64           `json:"number"`
	Status      OrderStatus     `json:"status"`
	CustomerID  int64           `json:"-"`
	Customer    CustomerInput   `json:"customer"`
	Fulfillment FulfillmentInfo `json:"fulfillment"`
	// PickupSlot is the start of the pickup slot the order counts against
	// (nil when the restaurant's slots are uncapped); ReadyEstimate is when
	// an ASAP order should be ready, from the preparation time and the
	// kitchen's load (nil for a scheduled pickup).
	PickupSlot    *time.Time  `json:"pickup_slot,omitempty"`
	ReadyEstimate *time.Time  `json:"ready_estimate,omitempty"`
	Lines         []OrderLine `json:"lines"`
	CouponCode    string      `json:"coupon_code,omitempty"`
	Subtotal      Money       `json:"subtotal"`
	Discount      Money       `json:"discount"`
	Tax           Money       `json:"tax"`
	Tip           Money       `json:"tip"`
	Total         Money       `json:"total"`
	Currency      string      `json:"currency"`
	// PaymentMethod is "card" or "pay_at_pickup"; PaymentStatus mirrors the
	// payment row (pending, captured, declined, due_at_pickup).
	PaymentMethod string `json:"payment_method"`
	PaymentStatus string `json:"payment_status"`
	// Refunded is what was given back to the card so far (succeeded
	// refunds, refund.go); the details are RefundStore.Refunds.
	Refunded     Money  `json:"refunded"`
	CancelReason string `json:"cancel_reason,omitempty"`
	// Attention is set when staff must look at the order by hand, e.g. a
	// card payment whose outcome the provider never confirmed; "" normally.
	Attention string `json:"attention,omitempty"`
	// AccessToken is the guest's capability to read the order: an HMAC of the
	// order id under the server secret (internal/ordering), so it is never
	// stored and any process holding the secret (the receipt worker) can
	// put it in a link. Filled only in responses to the guest.
	AccessToken    string    `json:"access_token,omitempty"`
	MarketingOptIn bool      `json:"marketing_opt_in"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// FulfillmentInfo is how and when the guest gets the order. ASAP orders have
// a nil Time.
type FulfillmentInfo struct {
	Type string     `json:"type"` // "pickup"
	Time *time.Time `json:"time,omitempty"`
}

// OrderLine is one line of an order, as it was priced when ordered.
type OrderLine struct {
	ItemID    int64          `json:"item_id"`
	Name      string         `json:"name"`
	UnitPrice Money          `json:"unit_price"` // item price plus modifier prices
	Quantity  int            `json:"quantity"`
	Modifiers []LineModifier `json:"modifiers"`
	Note      string         `json:"note,omitempty"`
	LineTotal Money          `json:"line_total"`
}

// LineModifier is a chosen modifier, snapshotted.
type LineModifier struct {
	ID        int64  `json:"id"`
	GroupName string `json:"group"`
	Name      string `json:"name"`
	Price     Money  `json:"price"`
}

// PaymentStatus values.
const (
	PaymentPending     = "pending"
	PaymentCaptured    = "captured"
	PaymentDeclined    = "declined"
	PaymentDueAtPickup = "due_at_pickup"
)

// Payment is one attempt to take the order's money.
type Payment struct {
	ID       string `json:"id"`
	OrderID  string `json:"order_id"`
	Method   string `json:"method"` // card | pay_at_pickup
	Amount   Money  `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"`
	Token    string `json:"-"` // the card token the guest sent, needed to resume a charge
	ChargeID string `json:"charge_id,omitempty"`
	// IdempotencyKey is what the provider is called with: derived from the
	// order ("order:<id>"), so every retry of the charge is the same charge.
	IdempotencyKey string `json:"-"`
	FailureReason  string `json:"failure_reason,omitempty"`
	// Attempts counts the recovery loop's attempts whose outcome stayed
	// unknown.
	Attempts  int       `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PaymentKey is the provider idempotency key for an order's charge.
func PaymentKey(orderID string) string { return "order:" + orderID }
