package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ladle-dev/ladle"
)

// The claim is up to three statements in one transaction, each atomic on
// its own under READ COMMITTED: a concurrent claimer of a new key waits on
// the first one's uncommitted row and then does nothing; a re-claim is a
// conditional UPDATE that at most one claimer can win.
//
// Fencing: lock_version counts claims. Every write made under a claim
// (recovery point, settlement, finish, unlock, delete) has
// "lock_version = <its claim's> AND locked_at IS NOT NULL" in its WHERE, so
// once another request took the key over (or the holder let go of it) the
// old holder's writes change nothing and it gets ladle.KeyFenced. The check
// is in the same statement as the write (and, for the recovery point, in
// the transaction that creates the order), so no interleaving slips
// between check and write.
const (
	// sqlClaimNewKey inserts the key locked; no row back means it exists.
	sqlClaimNewKey = `INSERT INTO idempotency_keys (restaurant_id, key, request_hash, locked_at, created_at, lock_version, holder, boot, order_id)
		VALUES ($1, $2, $3, $4, $4, 1, $5, $6, $7) ON CONFLICT (restaurant_id, key) DO NOTHING RETURNING ` + idemColumns
	// sqlReclaimKey takes over an unfinished key of the same request whose
	// lock was released (outcome unknown) or is stale (its holder died or
	// stalled), fencing out the previous holder.
	sqlReclaimKey = `UPDATE idempotency_keys SET locked_at = $4, lock_version = lock_version + 1, holder = $6, boot = $7
		WHERE restaurant_id = $1 AND key = $2 AND request_hash = $3 AND response_status = 0
		AND (locked_at IS NULL OR locked_at < $5) RETURNING ` + idemColumns
	sqlReadKey = `SELECT ` + idemColumns + ` FROM idempotency_keys WHERE restaurant_id = $1 AND key = $2`
	// sqlSetRecoveryPoint is CreateOrder's first write: the key now leads
	// to the order, if the creator still holds it ($4 = its fence). First on
	// purpose: on PostgreSQL it row-locks the key, so a takeover waits for
	// this transaction and then resumes its order instead of creating one.
	sqlSetRecoveryPoint = `UPDATE idempotency_keys SET order_id = $3
		WHERE restaurant_id = $1 AND key = $2 AND lock_version = $4 AND locked_at IS NOT NULL`
	// sqlFinishKey stores the response and unlocks, under the fence.
	sqlFinishKey = `UPDATE idempotency_keys SET response_status = $4, response_body = $5, locked_at = NULL
		WHERE restaurant_id = $1 AND key = $2 AND lock_version = $3 AND locked_at IS NOT NULL`
	// sqlHoldsKey checks (and on PostgreSQL row-locks) the fence at the
	// start of a fenced settlement.
	sqlHoldsKey = `UPDATE idempotency_keys SET locked_at = locked_at
		WHERE restaurant_id = $1 AND key = $2 AND lock_version = $3 AND locked_at IS NOT NULL`
)

const idemColumns = `restaurant_id, key, request_hash, locked_at, order_id, response_status, response_body, created_at,
	lock_version, holder, boot`

func scanIdem(row interface{ Scan(...any) error }) (*ladle.IdempotencyRecord, error) {
	var r ladle.IdempotencyRecord
	var orderID sql.NullString
	if err := row.Scan(&r.RestaurantID, &r.Key, &r.RequestHash, nullTimeCol{&r.LockedAt}, &orderID,
		&r.ResponseStatus, &r.ResponseBody, timeCol{&r.CreatedAt}, &r.Fence, &r.Holder, &r.Boot); err != nil {
		return nil, err
	}
	r.OrderID = orderID.String
	return &r, nil
}

// MaxIdempotencyKeyLen bounds an Idempotency-Key.
const MaxIdempotencyKeyLen = 255

// ClaimIdempotencyKey implements ladle.IdempotencyStore.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, c ladle.KeyClaim) (*ladle.IdempotencyRecord, bool, error) {
	if c.Key == "" || len(c.Key) > MaxIdempotencyKeyLen {
		return nil, false, invalid("idempotency_key", "must be 1–255 characters")
	}
	var rec *ladle.IdempotencyRecord
	var claimed bool
	err := s.withTx(ctx, func(tx *Tx) error {
		var err error
		rec, claimed, err = claimKey(ctx, tx, c, "")
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return rec, claimed, nil
}

// ClaimAndCreateOrder implements ladle.IdempotencyStore: a placement's
// first commit. A new key is inserted already leading to the order; a key
// taken over without a recovery point gets the order under a savepoint, so
// that a refused order can forget the key and still commit that.
func (s *Store) ClaimAndCreateOrder(ctx context.Context, c ladle.KeyClaim, in ladle.NewOrder) (*ladle.IdempotencyRecord, bool, *ladle.Order, error) {
	if c.Key == "" || len(c.Key) > MaxIdempotencyKeyLen {
		return nil, false, nil, invalid("idempotency_key", "must be 1–255 characters")
	}
	now, err := s.checkNewOrder(in)
	if err != nil {
		return nil, false, nil, err
	}
	in.RestaurantID, in.IdempotencyKey = c.RestaurantID, c.Key
	var rec *ladle.IdempotencyRecord
	var claimed bool
	var o *ladle.Order
	var refused error // a 4xx of a taken-over key: committed as its deletion
	err = s.withTx(ctx, func(tx *Tx) error {
		var err error
		var pre *orderPrelude
		if tx.batches() {
			rec, claimed, pre, err = claimKeyAndLoad(ctx, tx, c, in)
		} else {
			rec, claimed, err = claimKey(ctx, tx, c, in.ID)
		}
		if err != nil || !claimed {
			return err
		}
		in.Fence = rec.Fence
		if rec.OrderID == in.ID { // new: inserted with its recovery point
			o, err = createOrder(ctx, tx, in, now, false, pre)
			return err
		}
		if rec.OrderID != "" {
			return nil // resuming: the order exists
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT create_order`); err != nil {
			return err
		}
		o, err = createOrder(ctx, tx, in, now, true, nil)
		if err == nil {
			rec.OrderID = o.ID
			return nil
		}
		if k := ladle.ErrorKind(err); k == ladle.KindInternal || k == ladle.KindUnavailable {
			return err
		}
		refused = err
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT create_order`); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE restaurant_id = $1 AND key = $2`, c.RestaurantID, c.Key)
		return err
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return nil, false, nil, err
	}
	return rec, claimed, o, nil
}

// claimKey runs the claim in tx. A new key is inserted with newOrderID as
// its recovery point when that is set (the caller creates that order in tx).
func claimKey(ctx context.Context, tx *Tx, c ladle.KeyClaim, newOrderID string) (*ladle.IdempotencyRecord, bool, error) {
	now := ts(c.Now)
	var orderID any // the new key's recovery point, when the order is created with it
	if newOrderID != "" {
		orderID = newOrderID
	}
	rec, err := scanIdem(tx.QueryRowContext(ctx, sqlClaimNewKey, c.RestaurantID, c.Key, c.RequestHash, now, c.Holder, c.Boot, orderID))
	if err == nil {
		return rec, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, newKeyError(tx, err)
	}
	return claimExistingKey(ctx, tx, c)
}

func newKeyError(tx *Tx, err error) error {
	if tx.d.isForeignKeyViolation(err) {
		return ladle.NotFound("restaurant")
	}
	return err
}

// claimKeyAndLoad is claimKey for a new order on PostgreSQL: the new key's
// insert and the order's steps 1–2 (restaurant and coupon, menu items) go
// in one batch, since the reads do not depend on the claim. Their results
// are used only if the key was new; otherwise the claim goes on as
// claimKey's would.
func claimKeyAndLoad(ctx context.Context, tx *Tx, c ladle.KeyClaim, in ladle.NewOrder) (*ladle.IdempotencyRecord, bool, *orderPrelude, error) {
	now := ts(c.Now)
	b := &pgx.Batch{}
	b.Queue(sqlClaimNewKey, c.RestaurantID, c.Key, c.RequestHash, now, c.Holder, c.Boot, in.ID)
	b.Queue(sqlLoadRestaurantCoupon, in.RestaurantID, in.Request.CouponCode)
	b.Queue(sqlLoadOrderItemsPostgres, in.RestaurantID, orderItemIDs(in.Request))
	var rec *ladle.IdempotencyRecord
	var pre *orderPrelude
	err := tx.sendBatch(ctx, b, func(br pgx.BatchResults) error {
		var err error
		rec, err = scanIdem(br.QueryRow())
		if errors.Is(err, sql.ErrNoRows) {
			return nil // not new: the rest of the batch is not needed
		}
		if err != nil {
			return newKeyError(tx, err)
		}
		pre = &orderPrelude{}
		pre.r, pre.coupon, pre.hours, pre.err = scanRestaurantCoupon(br.QueryRow(), in.Request.CouponCode)
		if pre.err != nil {
			return nil // createOrder returns it
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("sqlstore: load items: %w", err)
		}
		pre.menu, err = scanOrderMenu(pgxRows{rows}, pre.r)
		return err
	})
	if err != nil {
		return nil, false, nil, err
	}
	if rec != nil {
		return rec, true, pre, nil
	}
	rec, claimed, err := claimExistingKey(ctx, tx, c)
	return rec, claimed, nil, err
}

// claimExistingKey is the claim of a key that exists: a takeover, or the
// key as it is.
func claimExistingKey(ctx context.Context, tx *Tx, c ladle.KeyClaim) (*ladle.IdempotencyRecord, bool, error) {
	now := ts(c.Now)
	rec, err := scanIdem(tx.QueryRowContext(ctx, sqlReclaimKey, c.RestaurantID, c.Key, c.RequestHash, now,
		now.Add(-c.StaleAfter), c.Holder, c.Boot))
	if err == nil {
		return rec, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, err
	}
	rec, err = scanIdem(tx.QueryRowContext(ctx, sqlReadKey, c.RestaurantID, c.Key))
	if errors.Is(err, sql.ErrNoRows) {
		// Deleted between the statements by its holder: the caller may
		// simply retry.
		return nil, false, ladle.Errorf(ladle.KindConflict, ladle.CodeIdempotencyKeyInUse, "the idempotency key changed during the claim; retry")
	}
	return rec, false, err
}

// IdempotencyKey implements ladle.IdempotencyStore.
func (s *Store) IdempotencyKey(ctx context.Context, restaurantID int64, key string) (*ladle.IdempotencyRecord, error) {
	var rec *ladle.IdempotencyRecord
	err := s.read1(ctx, func(tx *Tx) error {
		var err error
		rec, err = scanIdem(tx.QueryRowContext(ctx, sqlReadKey, restaurantID, key))
		return notFoundIfNoRows(err, "idempotency key")
	})
	return rec, err
}

// fenced turns a fenced write that changed no row into the right error:
// not_found when the key is gone, KeyFenced when it is held under another
// claim or not held at all.
func fenced(ctx context.Context, tx *Tx, l ladle.KeyLease, res sql.Result, err error) error {
	n, err := rowsAffected(res, err)
	if err != nil || n > 0 {
		return err
	}
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM idempotency_keys WHERE restaurant_id = $1 AND key = $2`,
		l.RestaurantID, l.Key).Scan(&one)
	if err != nil {
		return notFoundIfNoRows(err, "idempotency key")
	}
	return ladle.KeyFenced()
}

// FinishIdempotencyKey implements ladle.IdempotencyStore.
func (s *Store) FinishIdempotencyKey(ctx context.Context, l ladle.KeyLease, status int, body []byte) error {
	if status <= 0 {
		return invalid("status", "must be an HTTP status")
	}
	return s.withTx(ctx, func(tx *Tx) error { return finishKey(ctx, tx, l, status, body) })
}

func finishKey(ctx context.Context, tx *Tx, l ladle.KeyLease, status int, body []byte) error {
	if body == nil {
		body = []byte{} // NULL means "no response yet"
	}
	res, err := tx.ExecContext(ctx, sqlFinishKey, l.RestaurantID, l.Key, l.Fence, status, body)
	return fenced(ctx, tx, l, res, err)
}

// UnlockIdempotencyKey implements ladle.IdempotencyStore.
func (s *Store) UnlockIdempotencyKey(ctx context.Context, l ladle.KeyLease) error {
	return s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET locked_at = NULL
			WHERE restaurant_id = $1 AND key = $2 AND lock_version = $3 AND locked_at IS NOT NULL`,
			l.RestaurantID, l.Key, l.Fence)
		return fenced(ctx, tx, l, res, err)
	})
}

// DeleteIdempotencyKey implements ladle.IdempotencyStore. Only a key with
// neither a response nor a recovery point is deleted: forgetting one that
// led to an order would let a retry create a second order.
func (s *Store) DeleteIdempotencyKey(ctx context.Context, l ladle.KeyLease) error {
	return s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys
			WHERE restaurant_id = $1 AND key = $2 AND response_status = 0 AND order_id IS NULL
			AND lock_version = $3 AND locked_at IS NOT NULL`, l.RestaurantID, l.Key, l.Fence)
		if n, err := rowsAffected(res, err); err != nil || n > 0 {
			return err
		}
		rec, err := scanIdem(tx.QueryRowContext(ctx, sqlReadKey, l.RestaurantID, l.Key))
		if err != nil {
			return notFoundIfNoRows(err, "unfinished idempotency key")
		}
		if rec.ResponseStatus == 0 && rec.OrderID == "" {
			return ladle.KeyFenced() // unfinished, but not held under l
		}
		return ladle.NotFound("unfinished idempotency key")
	})
}

// ReleaseHolderKeys implements ladle.IdempotencyStore. The fence moves on
// too, so if the earlier run is in fact still alive (two processes given
// the same holder name), its writes fail instead of racing the next claim.
func (s *Store) ReleaseHolderKeys(ctx context.Context, holder, boot string) (int64, error) {
	if holder == "" {
		return 0, invalid("holder", "is required")
	}
	var n int64
	err := s.withTx(ctx, func(tx *Tx) error {
		var err error
		n, err = rowsAffected(tx.ExecContext(ctx, `UPDATE idempotency_keys SET locked_at = NULL, lock_version = lock_version + 1
			WHERE holder = $1 AND boot <> $2 AND locked_at IS NOT NULL`, holder, boot))
		return err
	})
	return n, err
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
