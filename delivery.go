package ladle

import "time"

// What became of events once consumers took them: the emails they sent and
// the deliveries they gave up on. Both are tenant-scoped records that staff
// see (/admin/mailbox, /admin/dead-letters).

// Email statuses. An email is queued from the moment its consumer reserves
// it (before any attempt to send), sent once the transport accepted it, and
// failed when the consumer gave up; Email.Error says why, and the event's
// dead letter can be replayed.
const (
	EmailQueued = "queued"
	EmailSent   = "sent"
	EmailFailed = "failed"
)

// Email is one email Ladle sends, with its rendered message, so staff can see
// exactly what went out and a resend after a crash sends the same bytes.
// (Consumer, EventID) is unique: one event gives a consumer at most one email.
type Email struct {
	ID           int64  `json:"id"`
	RestaurantID int64  `json:"restaurant_id"`
	Consumer     string `json:"consumer"` // e.g. "receipt"
	EventID      string `json:"event_id"`
	Kind         string `json:"kind"` // the template: "receipt", "ready"
	OrderID      string `json:"order_id,omitempty"`
	From         string `json:"from"`
	To           string `json:"to"`
	Subject      string `json:"subject"`
	Text         string `json:"text"`
	HTML         string `json:"html"`
	MessageID    string `json:"message_id"`
	// ListUnsubscribe, for a campaign's test send, is the https URL of the
	// List-Unsubscribe header (with List-Unsubscribe-Post), as the
	// campaign's own emails carry. Not stored: it is rendered again on
	// each delivery attempt, like the message's other headers.
	ListUnsubscribe string     `json:"-"`
	Status          string     `json:"status"`          // EmailQueued, EmailSent, EmailFailed
	Error           string     `json:"error,omitempty"` // the last failure
	Attempts        int        `json:"attempts"`        // hand-overs to the transport
	Transport       string     `json:"transport"`       // "smtp" or "mailbox"
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	SentAt          *time.Time `json:"sent_at,omitempty"`
}

// DeadLetter is an event a consumer gave up on after its retries (or at once,
// for a failure no retry can fix). Staff see it with its error and can replay
// it: the event goes back to that consumer alone.
type DeadLetter struct {
	ID            int64      `json:"id"`
	RestaurantID  int64      `json:"restaurant_id"`
	Consumer      string     `json:"consumer"`
	Event         Event      `json:"event"`
	Error         string     `json:"error"`
	Deliveries    int        `json:"deliveries"`
	CreatedAt     time.Time  `json:"created_at"`
	ReplayedAt    *time.Time `json:"replayed_at,omitempty"`
	ReplayEventID string     `json:"replay_event_id,omitempty"`
}

// EventReplayPrefix starts the type of a replay event: an event of type
// EventReplayPrefix + consumer name carries, as its payload, an Event to hand
// to that consumer again. Replays go through the outbox like any event, so a
// replay requested while the broker is down still happens.
const EventReplayPrefix = "replay."
