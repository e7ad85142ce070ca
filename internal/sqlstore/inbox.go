package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// The inbox: which events each consumer has processed. A consumer writes its
// row in the same transaction as its effect (markProcessed inside that
// transaction), so a redelivered event finds the row and is acknowledged
// without a second effect.

// Processed reports whether consumer has processed the event.
func (s *Store) Processed(ctx context.Context, consumer, eventID string) (bool, error) {
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2`,
		consumer, eventID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// MarkProcessed records that consumer processed the event, for consumers
// whose effect is outside this database or is itself idempotent. It is
// idempotent; first reports whether this call recorded it.
func (s *Store) MarkProcessed(ctx context.Context, consumer, eventID string, now time.Time) (first bool, err error) {
	err = s.withTx(ctx, func(tx *Tx) error {
		first, err = markProcessed(ctx, tx, consumer, eventID, now)
		return err
	})
	return first, err
}

// markProcessed inserts the inbox row in tx; first is false when it was
// already there.
func markProcessed(ctx context.Context, tx *Tx, consumer, eventID string, now time.Time) (first bool, err error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3)
		ON CONFLICT (consumer, event_id) DO NOTHING`, consumer, eventID, ts(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// PruneInbox deletes inbox rows processed before `before`, at most limit.
// Keep them longer than the stream keeps events (and the broker's duplicate
// window): an event redelivered after its row is gone would be processed
// again.
func (s *Store) PruneInbox(ctx context.Context, before time.Time, limit int) (int64, error) {
	var n int64
	err := s.withTx(ctx, func(tx *Tx) error {
		q := `DELETE FROM inbox WHERE (consumer, event_id) IN (
			SELECT consumer, event_id FROM inbox WHERE processed_at < $1 LIMIT $2)`
		res, err := tx.ExecContext(ctx, q, ts(before), limit)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		// Interruptions are rare (a few per deploy): no batching needed.
		_, err = tx.ExecContext(ctx, `DELETE FROM delivery_interruptions WHERE updated_at < $1`, ts(before))
		return err
	})
	return n, err
}

// InterruptDelivery records that consumer handed the message back undone
// because it was shutting down, so that delivery does not count as an
// attempt (see DeliveryInterruptions).
func (s *Store) InterruptDelivery(ctx context.Context, consumer, messageID string, now time.Time) error {
	return s.withTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO delivery_interruptions (consumer, message_id, count, updated_at)
			VALUES ($1, $2, 1, $3) ON CONFLICT (consumer, message_id)
			DO UPDATE SET count = delivery_interruptions.count + 1, updated_at = $3`, consumer, messageID, ts(now))
		return err
	})
}

// DeliveryInterruptions is how many deliveries of the message consumer
// handed back at shutdown (0 for none).
func (s *Store) DeliveryInterruptions(ctx context.Context, consumer, messageID string) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT count FROM delivery_interruptions WHERE consumer = $1 AND message_id = $2`,
		consumer, messageID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}
