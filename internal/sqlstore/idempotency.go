package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/ladle-dev/ladle"
)

// The claim is three statements in one transaction, each atomic on its own
// under READ COMMITTED: a concurrent claimer of a new key waits on the first
// one's uncommitted row and then does nothing; a re-claim is a conditional
// UPDATE that at most one claimer can win.
const (
	// sqlClaimNewKey inserts the key locked; no row back means it exists.
	sqlClaimNewKey = `INSERT INTO idempotency_keys (restaurant_id, key, request_hash, locked_at, created_at)
		VALUES ($1, $2, $3, $4, $4) ON CONFLICT (restaurant_id, key) DO NOTHING RETURNING ` + idemColumns
	// sqlReclaimKey takes over an unfinished key of the same request whose
	// lock was released (outcome unknown) or is stale (its holder died).
	sqlReclaimKey = `UPDATE idempotency_keys SET locked_at = $4
		WHERE restaurant_id = $1 AND key = $2 AND request_hash = $3 AND response_status = 0
		AND (locked_at IS NULL OR locked_at < $5) RETURNING ` + idemColumns
	sqlReadKey = `SELECT ` + idemColumns + ` FROM idempotency_keys WHERE restaurant_id = $1 AND key = $2`
	// sqlSetRecoveryPoint is CreateOrder's last step before the order
	// number: the key now leads to the order.
	sqlSetRecoveryPoint = `UPDATE idempotency_keys SET order_id = $3 WHERE restaurant_id = $1 AND key = $2`
)

const idemColumns = `restaurant_id, key, request_hash, locked_at, order_id, response_status, response_body, created_at`

func scanIdem(row *sql.Row) (*ladle.IdempotencyRecord, error) {
	var r ladle.IdempotencyRecord
	var orderID sql.NullString
	if err := row.Scan(&r.RestaurantID, &r.Key, &r.RequestHash, nullTimeCol{&r.LockedAt}, &orderID,
		&r.ResponseStatus, &r.ResponseBody, timeCol{&r.CreatedAt}); err != nil {
		return nil, err
	}
	r.OrderID = orderID.String
	return &r, nil
}

// MaxIdempotencyKeyLen bounds an Idempotency-Key.
const MaxIdempotencyKeyLen = 255

// ClaimIdempotencyKey implements ladle.IdempotencyStore.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, restaurantID int64, key, requestHash string, now time.Time, staleAfter time.Duration) (*ladle.IdempotencyRecord, bool, error) {
	if key == "" || len(key) > MaxIdempotencyKeyLen {
		return nil, false, invalid("idempotency_key", "must be 1–255 characters")
	}
	now = ts(now)
	var rec *ladle.IdempotencyRecord
	var claimed bool
	err := s.withTx(ctx, func(tx *Tx) error {
		var err error
		rec, err = scanIdem(tx.QueryRowContext(ctx, sqlClaimNewKey, restaurantID, key, requestHash, now))
		if err == nil {
			claimed = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			if tx.d.isForeignKeyViolation(err) {
				return ladle.NotFound("restaurant")
			}
			return err
		}
		rec, err = scanIdem(tx.QueryRowContext(ctx, sqlReclaimKey, restaurantID, key, requestHash, now, now.Add(-staleAfter)))
		if err == nil {
			claimed = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		rec, err = scanIdem(tx.QueryRowContext(ctx, sqlReadKey, restaurantID, key))
		if errors.Is(err, sql.ErrNoRows) {
			// Deleted between the statements by its holder: the caller
			// may simply retry.
			return ladle.Errorf(ladle.KindConflict, ladle.CodeIdempotencyKeyInUse, "the idempotency key changed during the claim; retry")
		}
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return rec, claimed, nil
}

// FinishIdempotencyKey implements ladle.IdempotencyStore.
func (s *Store) FinishIdempotencyKey(ctx context.Context, restaurantID int64, key string, status int, body []byte) error {
	if status <= 0 {
		return invalid("status", "must be an HTTP status")
	}
	if body == nil {
		body = []byte{} // NULL means "no response yet"
	}
	return s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET response_status = $3, response_body = $4, locked_at = NULL
			WHERE restaurant_id = $1 AND key = $2`, restaurantID, key, status, body)
		return mustAffect(res, err, "idempotency key")
	})
}

// UnlockIdempotencyKey implements ladle.IdempotencyStore.
func (s *Store) UnlockIdempotencyKey(ctx context.Context, restaurantID int64, key string) error {
	return s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET locked_at = NULL WHERE restaurant_id = $1 AND key = $2`,
			restaurantID, key)
		return mustAffect(res, err, "idempotency key")
	})
}

// DeleteIdempotencyKey implements ladle.IdempotencyStore. Only a key with
// neither a response nor a recovery point is deleted: forgetting one that
// led to an order would let a retry create a second order. Such a key, or a
// missing one, is not_found.
func (s *Store) DeleteIdempotencyKey(ctx context.Context, restaurantID int64, key string) error {
	return s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys
			WHERE restaurant_id = $1 AND key = $2 AND response_status = 0 AND order_id IS NULL`, restaurantID, key)
		return mustAffect(res, err, "unfinished idempotency key")
	})
}

// ReapIdempotencyKeys implements ladle.IdempotencyStore and returns the
// number of keys deleted. A key still locked since before `before` counts as
// not locked: its holder died a TTL ago and nobody will unlock it.
func (s *Store) ReapIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	before = ts(before)
	var n int64
	err := s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1 AND (locked_at IS NULL OR locked_at < $1)`, before)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM order_fingerprints WHERE created_at < $1`, before.Add(-ladle.DuplicateWindow))
		return err
	})
	return n, err
}
