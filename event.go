package ladle

import (
	"encoding/json"
	"time"
)

// Event is a fact others care about, written to the outbox in the same
// transaction as the change it describes, then published to the broker with
// its ID as the message id (so a re-publish is dropped as a duplicate).
type Event struct {
	ID           string          `json:"id"` // UUIDv7
	Type         string          `json:"type"`
	RestaurantID int64           `json:"restaurant_id"`
	AggregateID  string          `json:"aggregate_id"` // the order id, coupon id, restaurant id…
	Payload      json.RawMessage `json:"payload"`
	CreatedAt    time.Time       `json:"created_at"`
}

// Event types. The subject an event is published on is "ladle.events." + Type.
const (
	EventOrderPlaced        = "order.placed"         // payload: Order (status placed)
	EventOrderStatusChanged = "order.status_changed" // payload: StatusChange
	EventPaymentCaptured    = "payment.captured"     // payload: Payment
	EventPaymentDisputed    = "payment.disputed"     // payload: Payment
	EventCouponRedeemed     = "coupon.redeemed"      // payload: Redemption
	EventMenuChanged        = "menu.changed"         // payload: MenuChange
	// EventCampaignWork starts a campaign generation's sending: written
	// with every move to sending (CampaignStore), it is the first
	// fan-out step, on the subject the sender's own work messages use.
	EventCampaignWork = "campaign.work" // payload: CampaignStart
	EventCampaignTest = "campaign.test" // payload: CampaignTest
)

// CampaignTest is the payload of campaign.test: a test send of the
// campaign (the event's aggregate id) to the staff member who asked.
type CampaignTest struct {
	CampaignID string `json:"campaign_id"`
	UserID     int64  `json:"user_id"`
}

// CampaignStart is the payload of campaign.work: the first fan-out step of
// a generation (its JSON is the sender's work message; internal/campaign).
type CampaignStart struct {
	Kind       string `json:"k"` // "fanout"
	Restaurant int64  `json:"r"`
	Campaign   string `json:"c"`
	Generation int64  `json:"g"`
}

// StatusChange is the payload of order.status_changed.
type StatusChange struct {
	OrderID string      `json:"order_id"`
	Number  int64       `json:"number"`
	From    OrderStatus `json:"from"`
	To      OrderStatus `json:"to"`
	Reason  string      `json:"reason,omitempty"`
	// Order is the order after the change, so consumers (the "ready for
	// pickup" email, the live board) need no read-back.
	Order *Order `json:"order"`
}

// MenuChange is the payload of menu.changed.
type MenuChange struct {
	RestaurantID int64 `json:"restaurant_id"`
	Version      int64 `json:"version"`
}
