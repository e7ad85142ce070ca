package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ladle-dev/ladle"
)

// sqlInsertOutbox is the prefix of the outbox insert; insertEvents adds
// one "($n, …)" tuple per event.
const sqlInsertOutbox = `INSERT INTO outbox (id, type, restaurant_id, aggregate_id, payload, created_at) VALUES `

// newEvent builds an event with a fresh UUIDv7 id and the payload encoded.
func newEvent(typ string, restaurantID int64, aggregateID string, payload any, now time.Time) (ladle.Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return ladle.Event{}, err
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return ladle.Event{}, fmt.Errorf("sqlstore: encode %s payload: %w", typ, err)
	}
	return ladle.Event{ID: id.String(), Type: typ, RestaurantID: restaurantID, AggregateID: aggregateID,
		Payload: b, CreatedAt: ts(now)}, nil
}

// appendEvent writes one event to the outbox in tx: it commits or rolls back
// with the change it describes. The relay publishes it later.
func appendEvent(ctx context.Context, tx *Tx, typ string, restaurantID int64, aggregateID string, payload any, now time.Time) (ladle.Event, error) {
	ev, err := newEvent(typ, restaurantID, aggregateID, payload, now)
	if err != nil {
		return ev, err
	}
	return ev, insertEvents(ctx, tx, ev)
}

// insertEvents writes events to the outbox in one statement.
func insertEvents(ctx context.Context, tx *Tx, evs ...ladle.Event) error {
	if len(evs) == 0 {
		return nil
	}
	q, args := outboxInsert(evs)
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("sqlstore: append event: %w", err)
	}
	tx.appended = true
	return nil
}

// outboxInsert builds the multi-row outbox insert for evs.
func outboxInsert(evs []ladle.Event) (string, []any) {
	var b strings.Builder
	b.WriteString(sqlInsertOutbox)
	args := make([]any, 0, 6*len(evs))
	for i, ev := range evs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple(len(args)+1, 6))
		args = append(args, ev.ID, ev.Type, ev.RestaurantID, ev.AggregateID, string(ev.Payload), ts(ev.CreatedAt))
	}
	return b.String(), args
}

// tuple returns "($first, $first+1, …)" with n placeholders.
func tuple(first, n int) string {
	var b strings.Builder
	b.WriteByte('(')
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i))
	}
	b.WriteByte(')')
	return b.String()
}

// menuChanged bumps the restaurant's menu version and appends menu.changed:
// every menu edit calls it in its transaction. The UPDATE also proves the
// restaurant exists.
func menuChanged(ctx context.Context, tx *Tx, restaurantID int64) error {
	var version int64
	err := tx.QueryRowContext(ctx,
		`UPDATE restaurants SET menu_version = menu_version + 1 WHERE id = $1 RETURNING menu_version`,
		restaurantID).Scan(&version)
	if err != nil {
		return notFoundIfNoRows(err, "restaurant")
	}
	_, err = appendEvent(ctx, tx, ladle.EventMenuChanged, restaurantID, strconv.FormatInt(restaurantID, 10),
		ladle.MenuChange{RestaurantID: restaurantID, Version: version}, tx.now())
	return err
}

// OutboxEvents lists every outbox event of the restaurant, published or
// not, oldest first (event ids are UUIDv7, so id order is creation order).
// It is for tests and diagnostics, and scans the outbox: no index on
// restaurant_id, so the hot path's insert stays cheap. The relay has its own
// indexed queries.
func (s *Store) OutboxEvents(ctx context.Context, restaurantID int64) ([]ladle.Event, error) {
	return scanEvents(s.read.QueryContext(ctx, `SELECT id, type, restaurant_id, aggregate_id, payload, created_at
		FROM outbox WHERE restaurant_id = $1 ORDER BY id`, restaurantID))
}
