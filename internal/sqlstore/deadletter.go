package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ladle-dev/ladle"
)

// Dead letters: deliveries a consumer gave up on, and their replay.

const deadLetterColumns = `id, restaurant_id, consumer, event, error, deliveries, created_at, replayed_at, replay_event_id`

func scanDeadLetter(row interface{ Scan(...any) error }, d *ladle.DeadLetter) error {
	var event []byte
	var replayID sql.NullString
	err := row.Scan(&d.ID, &d.RestaurantID, &d.Consumer, &event, &d.Error, &d.Deliveries, timeCol{&d.CreatedAt},
		nullTimeCol{&d.ReplayedAt}, &replayID)
	if err != nil {
		return err
	}
	d.ReplayEventID = replayID.String
	if err := json.Unmarshal(event, &d.Event); err != nil {
		return fmt.Errorf("sqlstore: dead letter %d: %w", d.ID, err)
	}
	return nil
}

// AddDeadLetter records that d.Consumer gave up on d.Event (setting ID and
// CreatedAt). If the consumer already has an open (not replayed) letter for
// the event, nothing is added and created is false: a crash between
// recording the letter and terminating the message records it once.
func (s *Store) AddDeadLetter(ctx context.Context, d *ladle.DeadLetter) (created bool, err error) {
	event, err := json.Marshal(d.Event)
	if err != nil {
		return false, err
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = s.now()
	}
	d.CreatedAt = ts(d.CreatedAt)
	if len(d.Error) > 2000 {
		d.Error = d.Error[:2000]
	}
	err = s.withTx(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO dead_letters (restaurant_id, consumer, event_id, event_type, event,
			error, deliveries, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (consumer, event_id) WHERE replayed_at IS NULL DO NOTHING RETURNING id`,
			d.Event.RestaurantID, d.Consumer, d.Event.ID, d.Event.Type, string(event), d.Error, d.Deliveries,
			d.CreatedAt).Scan(&d.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		created = err == nil
		return err
	})
	if err == nil {
		d.RestaurantID = d.Event.RestaurantID
	}
	return created, err
}

// DeadLetters lists the restaurant's dead letters, newest first: the open
// ones, or all of them with includeReplayed; at most limit (default 100).
func (s *Store) DeadLetters(ctx context.Context, restaurantID int64, includeReplayed bool, limit int) ([]ladle.DeadLetter, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	q := `SELECT ` + deadLetterColumns + ` FROM dead_letters WHERE restaurant_id = $1`
	if !includeReplayed {
		q += ` AND replayed_at IS NULL`
	}
	rows, err := s.read.QueryContext(ctx, q+` ORDER BY id DESC LIMIT $2`, restaurantID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ladle.DeadLetter
	for rows.Next() {
		var d ladle.DeadLetter
		if err := scanDeadLetter(rows, &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeadLetter returns one of the restaurant's dead letters.
func (s *Store) DeadLetter(ctx context.Context, restaurantID, id int64) (*ladle.DeadLetter, error) {
	var d ladle.DeadLetter
	err := scanDeadLetter(s.read.QueryRowContext(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters
		WHERE restaurant_id = $1 AND id = $2`, restaurantID, id), &d)
	if err != nil {
		return nil, notFoundIfNoRows(err, "dead letter")
	}
	return &d, nil
}

// CountDeadLetters returns how many open dead letters the restaurant has.
func (s *Store) CountDeadLetters(ctx context.Context, restaurantID int64) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM dead_letters WHERE restaurant_id = $1 AND replayed_at IS NULL`,
		restaurantID).Scan(&n)
	return n, err
}

// ReplayDeadLetter sends the letter's event back to its consumer: in one
// transaction it marks the letter replayed and appends a replay event
// (type ladle.EventReplayPrefix + consumer, payload the original event) to
// the outbox, so the replay is published like any event, even if the broker
// is down right now. Replaying a letter twice is a conflict (code
// already_replayed); another restaurant's letter is not found.
func (s *Store) ReplayDeadLetter(ctx context.Context, restaurantID, id int64, now time.Time) (*ladle.DeadLetter, error) {
	var d ladle.DeadLetter
	err := s.withTx(ctx, func(tx *Tx) error {
		err := scanDeadLetter(tx.QueryRowContext(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters
			WHERE restaurant_id = $1 AND id = $2`+tx.d.forUpdate, restaurantID, id), &d)
		if err != nil {
			return notFoundIfNoRows(err, "dead letter")
		}
		if d.ReplayedAt != nil {
			return conflict("already_replayed", "this dead letter was replayed at %s", d.ReplayedAt.Format(time.RFC3339))
		}
		ev, err := newEvent(ladle.EventReplayPrefix+d.Consumer, d.Event.RestaurantID, d.Event.AggregateID, d.Event, now)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE dead_letters SET replayed_at = $1, replay_event_id = $2
			WHERE id = $3 AND replayed_at IS NULL`, ts(now), ev.ID, d.ID)
		if err := mustAffect(res, err, "dead letter"); err != nil {
			return err
		}
		t := ts(now)
		d.ReplayedAt, d.ReplayEventID = &t, ev.ID
		return insertEvents(ctx, tx, ev)
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}
