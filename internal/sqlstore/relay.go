package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ladle-dev/ladle"
)

// The relay's side of the outbox (internal/outbox drives it).

const sqlUnpublished = `SELECT id, type, restaurant_id, aggregate_id, payload, created_at
	FROM outbox WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1`

// RelayOutbox hands up to limit unpublished events, oldest first, to
// publish, and marks published exactly the ids publish returns (those the
// broker acknowledged), at now. It returns how many it marked and publish's
// error, if any.
//
// Several relays may run at once:
//   - On PostgreSQL the rows are claimed with FOR UPDATE SKIP LOCKED in a
//     transaction that stays open while publish runs (a few milliseconds:
//     one batch of asynchronous publishes and their acks). Concurrent relays
//     skip the locked rows and take the next ones, so no event is published
//     twice by two relays at the same moment, and a relay that dies mid-way
//     releases its rows when its connection drops.
//   - On SQLite there is one writer process. The rows are read outside any
//     transaction (publishing while holding SQLite's write lock would stall
//     every order behind the broker) and marked in a short write afterwards.
//     Two relays in one process would publish the same rows twice; the
//     broker's duplicate window (Nats-Msg-Id) drops the second copy.
//
// A crash between publish and the mark leaves the rows unpublished: the
// next round publishes them again, and the broker drops the duplicates.
func (s *Store) RelayOutbox(ctx context.Context, limit int, now time.Time,
	publish func(ctx context.Context, evs []ladle.Event) (acked []string, err error)) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	if s.d == dialectPostgres {
		return s.relayPostgres(ctx, limit, now, publish)
	}
	evs, err := scanEvents(s.read.QueryContext(ctx, sqlUnpublished, limit))
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	acked, perr := publish(ctx, evs)
	if len(acked) == 0 {
		return 0, perr
	}
	var n int64
	err = s.withTx(ctx, func(tx *Tx) error {
		var err error
		n, err = markPublished(ctx, tx, acked, now)
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), perr
}

func (s *Store) relayPostgres(ctx context.Context, limit int, now time.Time,
	publish func(ctx context.Context, evs []ladle.Event) ([]string, error)) (int, error) {
	var n int64
	var perr error
	err := s.withTx(ctx, func(tx *Tx) error {
		evs, err := scanEvents(tx.QueryContext(ctx, sqlUnpublished+` FOR UPDATE SKIP LOCKED`, limit))
		if err != nil || len(evs) == 0 {
			return err
		}
		var acked []string
		acked, perr = publish(ctx, evs)
		if len(acked) == 0 {
			return nil
		}
		n, err = markPublished(ctx, tx, acked, now)
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), perr
}

func markPublished(ctx context.Context, tx *Tx, ids []string, now time.Time) (int64, error) {
	b, err := json.Marshal(ids)
	if err != nil {
		return 0, err
	}
	q := `UPDATE outbox SET published_at = $1 WHERE published_at IS NULL AND id IN (SELECT value FROM json_each($2))`
	if tx.d == dialectPostgres {
		q = `UPDATE outbox SET published_at = $1 WHERE published_at IS NULL AND id IN (SELECT jsonb_array_elements_text($2::jsonb))`
	}
	res, err := tx.ExecContext(ctx, q, ts(now), string(b))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: mark published: %w", err)
	}
	return res.RowsAffected()
}

func scanEvents(rows *sql.Rows, err error) ([]ladle.Event, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []ladle.Event
	for rows.Next() {
		var ev ladle.Event
		var payload []byte
		if err := rows.Scan(&ev.ID, &ev.Type, &ev.RestaurantID, &ev.AggregateID, &payload, timeCol{&ev.CreatedAt}); err != nil {
			return nil, err
		}
		ev.Payload = json.RawMessage(payload)
		evs = append(evs, ev)
	}
	return evs, rows.Err()
}

// OutboxBacklog returns how many events wait to be published and when the
// oldest of them was created (zero when none wait): the relay's lag, for
// /metrics and /readyz.
func (s *Store) OutboxBacklog(ctx context.Context) (n int, oldest time.Time, err error) {
	var o *time.Time
	err = s.read.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM outbox WHERE published_at IS NULL`).
		Scan(&n, nullTimeCol{&o})
	if o != nil {
		oldest = *o
	}
	return n, oldest, err
}

// PruneOutbox deletes events published before `before`, at most limit of
// them (the stream keeps its own copy for its retention period, and the
// relay never looks at published rows). It returns how many it deleted.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time, limit int) (int64, error) {
	var n int64
	err := s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id IN (
			SELECT id FROM outbox WHERE published_at IS NOT NULL AND published_at < $1 LIMIT $2)`, ts(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// RepublishRecent marks unpublished again every event published within
// window of the latest publication, so the relay publishes them again. It
// is for a broker that may have lost what it acknowledged in its last sync
// interval (broker.Broker.Unsynced); the latest publication stands in for
// the moment the broker stopped, however long ago that was. It returns how
// many events it marked.
func (s *Store) RepublishRecent(ctx context.Context, window time.Duration) (int64, error) {
	var n int64
	err := s.withTx(ctx, func(tx *Tx) error {
		var last *time.Time
		if err := tx.QueryRowContext(ctx, `SELECT max(published_at) FROM outbox`).Scan(nullTimeCol{&last}); err != nil {
			return fmt.Errorf("sqlstore: latest publication: %w", err)
		}
		if last == nil {
			return nil
		}
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET published_at = NULL WHERE published_at >= $1`, ts(last.Add(-window)))
		if err != nil {
			return fmt.Errorf("sqlstore: republish: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
