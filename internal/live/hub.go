// Package live pushes order changes to open screens: the staff order board
// and the guest's order status page. A Hub fans updates out to server-sent
// event streams in this process; a Feed fills the hub from the broker, so a
// change made by any process (an order taken by another API instance, a
// status moved on another screen) reaches every process's screens.
package live

import (
	"sync"
	"time"

	"github.com/ladle-dev/ladle"
)

// Update is one change of one order.
type Update struct {
	Type         string            `json:"type"` // the event type: order.placed, order.status_changed
	EventID      string            `json:"event_id"`
	RestaurantID int64             `json:"restaurant_id"`
	OrderID      string            `json:"order_id"`
	Number       int64             `json:"number"`
	Status       ladle.OrderStatus `json:"status"`
	From         ladle.OrderStatus `json:"from,omitempty"`
	// Order is the order after the change (staff screens only: guests get
	// GuestView).
	Order *ladle.Order `json:"order,omitempty"`
	// At is the order's UpdatedAt: screens keep the newest version of an
	// order, so an update that arrives late never rolls one back.
	At time.Time `json:"at"`
}

// GuestView is what the guest's status page receives: no contact details,
// no other fields that page does not show.
type GuestView struct {
	OrderID      string            `json:"order_id"`
	Number       int64             `json:"number"`
	Status       ladle.OrderStatus `json:"status"`
	CancelReason string            `json:"cancel_reason,omitempty"`
	At           time.Time         `json:"at"`
}

// Guest returns the guest's view of u.
func (u Update) Guest() GuestView {
	g := GuestView{OrderID: u.OrderID, Number: u.Number, Status: u.Status, At: u.At}
	if u.Order != nil {
		g.CancelReason = u.Order.CancelReason
	}
	return g
}

// Hub fans updates out to subscribers. Publish never blocks: a subscriber
// that cannot keep up (its buffer of 64 updates is full) is dropped, and its
// screen reconnects and reloads, which is cheaper than one slow browser
// stalling every other screen.
type Hub struct {
	mu        sync.Mutex
	subs      map[*Sub]struct{}
	published int64
	closed    bool
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[*Sub]struct{}{}} }

// Sub is one subscription.
type Sub struct {
	restaurantID int64
	orderID      string
	ch           chan Update
	closed       bool
}

// C delivers the updates; it is closed when the subscriber is dropped or
// unsubscribed.
func (s *Sub) C() <-chan Update { return s.ch }

// Subscribe subscribes to the restaurant's orders: all of them (orderID "",
// the staff board) or one (the guest's page).
func (h *Hub) Subscribe(restaurantID int64, orderID string) *Sub {
	s := &Sub{restaurantID: restaurantID, orderID: orderID, ch: make(chan Update, 64)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.closed = true
		close(s.ch)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// Close ends every subscription, and every later one at once, so open
// event streams return and a graceful server shutdown need not wait for
// browsers to hang up: register it with http.Server.RegisterOnShutdown.
// Browsers reconnect to the next server.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.drop(s)
	}
}

// Unsubscribe ends s (safe to call more than once).
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drop(s)
}

func (h *Hub) drop(s *Sub) {
	if !s.closed {
		s.closed = true
		delete(h.subs, s)
		close(s.ch)
	}
}

// Publish hands u to every subscriber it concerns.
func (h *Hub) Publish(u Update) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.published++
	for s := range h.subs {
		if s.restaurantID != u.RestaurantID || (s.orderID != "" && s.orderID != u.OrderID) {
			continue
		}
		select {
		case s.ch <- u:
		default:
			h.drop(s)
		}
	}
}

// Subscribers returns how many subscriptions are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Published returns how many updates were published.
func (h *Hub) Published() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.published
}
