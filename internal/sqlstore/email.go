package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ladle-dev/ladle"
)

// Emails: the worker's reservation, lease and outcome of each email, and the
// staff's view of them (the dev mailbox and the email log).
//
// The protocol (internal/worker/email.go explains the crash windows):
//  1. ReserveEmail stores the rendered message as queued, keyed by
//     (consumer, event id): a second delivery of the event finds it.
//  2. ClaimEmail leases it to one sender for one attempt.
//  3. The transport sends it.
//  4. EmailSent marks it sent and writes the consumer's inbox row in one
//     transaction; or EmailFailed records why it did not go out.

const emailColumns = `id, restaurant_id, consumer, event_id, kind, order_id, from_addr, to_addr, subject,
	text_body, html_body, message_id, status, error, attempts, transport, created_at, updated_at, sent_at`

func scanEmail(row interface{ Scan(...any) error }, e *ladle.Email) error {
	return row.Scan(emailDest(e)...)
}

// emailDest is where a row of emailColumns scans into e.
func emailDest(e *ladle.Email) []any {
	return []any{&e.ID, &e.RestaurantID, &e.Consumer, &e.EventID, &e.Kind, &e.OrderID, &e.From, &e.To,
		&e.Subject, &e.Text, &e.HTML, &e.MessageID, &e.Status, &e.Error, &e.Attempts, &e.Transport,
		timeCol{&e.CreatedAt}, timeCol{&e.UpdatedAt}, nullTimeCol{&e.SentAt}}
}

// insertEmail stores e with the given status, attempt count, lease end and
// sent time, unless e.Consumer already has an email for e.EventID (one row
// per consumer and event). It reports whether it inserted, setting e.ID.
// ReserveEmail, ClaimEmail and DeliverEmail differ only in those values.
func insertEmail(ctx context.Context, q querier, e *ladle.Email, status string, attempts int,
	leaseUntil, sentAt *time.Time, created, updated time.Time) (bool, error) {
	err := q.QueryRowContext(ctx, `INSERT INTO emails (restaurant_id, consumer, event_id, kind, order_id,
		from_addr, to_addr, subject, text_body, html_body, message_id, status, attempts, lease_until, transport,
		created_at, updated_at, sent_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (consumer, event_id) DO NOTHING RETURNING id`,
		e.RestaurantID, e.Consumer, e.EventID, e.Kind, e.OrderID, e.From, e.To, e.Subject, e.Text, e.HTML,
		e.MessageID, status, attempts, tsPtr(leaseUntil), e.Transport, created, updated, tsPtr(sentAt)).Scan(&e.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// loadEmail loads e.Consumer's stored email for e.EventID into e.
func loadEmail(ctx context.Context, q querier, e *ladle.Email) error {
	return scanEmail(q.QueryRowContext(ctx, `SELECT `+emailColumns+` FROM emails
		WHERE consumer = $1 AND event_id = $2`, e.Consumer, e.EventID), e)
}

// ReserveEmail inserts e as queued (setting ID, Status and the times) unless
// e.Consumer already reserved an email for e.EventID; then it loads that
// stored email into e instead, whatever its status, and created is false.
// The stored message is what every attempt sends, so a resend is
// byte-for-byte the first send (same Message-ID and Date).
func (s *Store) ReserveEmail(ctx context.Context, e *ladle.Email) (created bool, err error) {
	if e.Consumer == "" || e.EventID == "" {
		return false, invalid("email", "needs a consumer and an event id")
	}
	now := ts(e.CreatedAt)
	if e.CreatedAt.IsZero() {
		now = ts(s.now())
	}
	err = s.withTx(ctx, func(tx *Tx) error {
		var err error
		created, err = insertEmail(ctx, tx, e, ladle.EmailQueued, 0, nil, nil, now, now)
		switch {
		case err != nil:
			return fmt.Errorf("sqlstore: reserve email: %w", err)
		case created:
			e.Status, e.Error, e.Attempts, e.CreatedAt, e.UpdatedAt, e.SentAt = ladle.EmailQueued, "", 0, now, now, nil
			return nil
		}
		return loadEmail(ctx, tx, e)
	})
	return created, err
}

// DeliverEmail stores e as sent, with the consumer's inbox row, in one
// transaction, unless the consumer already has an email for the event
// (then it loads that one into e and created is false). It is the whole
// protocol for a transport whose delivery is this very record (the dev
// mailbox): reserve, send and mark sent at once, so a crash leaves either
// nothing or the delivered email.
func (s *Store) DeliverEmail(ctx context.Context, e *ladle.Email) (created bool, err error) {
	err = s.withTx(ctx, func(tx *Tx) error {
		created, err = deliverEmail(ctx, tx, e, ts(s.now()))
		return err
	})
	return created, err
}

// DeliverEmails is DeliverEmail for several emails in one transaction: one
// commit (one fsync) for all of them. The worker groups concurrent
// deliveries this way (group commit). If any fails, none is stored.
func (s *Store) DeliverEmails(ctx context.Context, es []*ladle.Email) error {
	return s.withTx(ctx, func(tx *Tx) error {
		sent := ts(s.now())
		for _, e := range es {
			if _, err := deliverEmail(ctx, tx, e, sent); err != nil {
				return err
			}
		}
		return nil
	})
}

func deliverEmail(ctx context.Context, tx *Tx, e *ladle.Email, sent time.Time) (created bool, err error) {
	if e.Consumer == "" || e.EventID == "" {
		return false, invalid("email", "needs a consumer and an event id")
	}
	now := ts(e.CreatedAt)
	if e.CreatedAt.IsZero() {
		now = sent
	}
	inserted, err := insertEmail(ctx, tx, e, ladle.EmailSent, 1, nil, &sent, now, sent)
	switch {
	case err != nil:
		return false, fmt.Errorf("sqlstore: deliver email: %w", err)
	case inserted:
		e.Status, e.Error, e.Attempts, e.CreatedAt, e.UpdatedAt, e.SentAt = ladle.EmailSent, "", 1, now, sent, &sent
		_, err = markProcessed(ctx, tx, e.Consumer, e.EventID, sent)
		return true, err
	default:
		if err := loadEmail(ctx, tx, e); err != nil {
			return false, err
		}
		if e.Status == ladle.EmailSent {
			return false, nil
		}
		// Recorded earlier as queued or failed (an attempt that could not
		// deliver, now replayed): deliver that stored email.
		if _, err := tx.ExecContext(ctx, `UPDATE emails SET status = 'sent', sent_at = $1, updated_at = $1, error = '',
			attempts = attempts + 1, lease_until = NULL WHERE id = $2`, sent, e.ID); err != nil {
			return false, err
		}
		e.Status, e.Error, e.Attempts, e.UpdatedAt, e.SentAt = ladle.EmailSent, "", e.Attempts+1, sent, &sent
		_, err = markProcessed(ctx, tx, e.Consumer, e.EventID, sent)
		return false, err
	}
}

// ClaimEmail reserves e and leases it to the caller for one attempt, until
// now+lease, counting the attempt: steps 2 and 3 of the worker's protocol
// in one write. If e.Consumer has no email for e.EventID yet, e is inserted
// as queued and claimed (setting ID, Status, Attempts and the times: one
// statement, one commit, on the receipt's path). Otherwise the stored email
// is loaded into e instead (what every attempt sends, byte for byte: same
// Message-ID and Date) and claimed if it can be: not when it was sent
// already (e.Status is then EmailSent) or another sender holds an unexpired
// lease (busyUntil is when it ends). A claim of a failed email (a replay)
// puts it back to queued.
func (s *Store) ClaimEmail(ctx context.Context, e *ladle.Email, now time.Time, lease time.Duration) (claimed bool, busyUntil time.Time, err error) {
	if e.Consumer == "" || e.EventID == "" {
		return false, time.Time{}, invalid("email", "needs a consumer and an event id")
	}
	now = ts(now)
	created := ts(e.CreatedAt)
	if e.CreatedAt.IsZero() {
		created = now
	}
	until := ts(now.Add(lease))
	claim := func(q querier) error {
		claimed, busyUntil = false, time.Time{}
		inserted, err := insertEmail(ctx, q, e, ladle.EmailQueued, 1, &until, nil, created, now)
		switch {
		case err != nil:
			return fmt.Errorf("sqlstore: reserve email: %w", err)
		case inserted:
			claimed = true
			e.Status, e.Error, e.Attempts, e.CreatedAt, e.UpdatedAt, e.SentAt = ladle.EmailQueued, "", 1, created, now, nil
			return nil
		}
		// Reserved before (a redelivery, or a replay): take the stored one.
		var leased *time.Time
		err = q.QueryRowContext(ctx, `UPDATE emails SET lease_until = $2, attempts = attempts + 1, status = 'queued',
			updated_at = $1 WHERE consumer = $3 AND event_id = $4 AND status <> 'sent' AND (lease_until IS NULL OR lease_until <= $1)
			RETURNING `+emailColumns, now, until, e.Consumer, e.EventID).Scan(emailDest(e)...)
		if err == nil {
			claimed = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		err = q.QueryRowContext(ctx, `SELECT `+emailColumns+`, lease_until FROM emails WHERE consumer = $1 AND event_id = $2`,
			e.Consumer, e.EventID).Scan(append(emailDest(e), nullTimeCol{&leased})...)
		if err != nil {
			return notFoundIfNoRows(err, "email")
		}
		if leased != nil && e.Status != ladle.EmailSent {
			busyUntil = *leased
		}
		return nil
	}
	if s.d == dialectPostgres {
		// Each statement stands alone (its conditions say who may claim),
		// so no transaction: the insert is one round trip and one commit.
		err = claim(s.write)
		return claimed, busyUntil, unavailable(err)
	}
	err = s.withTx(ctx, func(tx *Tx) error { return claim(tx) })
	return claimed, busyUntil, err
}

// EmailSent marks the email sent through transport and records the
// consumer's inbox row for the event, in one transaction. It is idempotent:
// a second call changes nothing.
func (s *Store) EmailSent(ctx context.Context, id int64, transport string, now time.Time) error {
	return s.withTx(ctx, func(tx *Tx) error {
		var consumer, eventID string
		err := tx.QueryRowContext(ctx, `UPDATE emails SET status = 'sent', sent_at = $1, updated_at = $1, lease_until = NULL,
			error = '', transport = $2 WHERE id = $3 AND status <> 'sent' RETURNING consumer, event_id`,
			ts(now), transport, id).Scan(&consumer, &eventID)
		if errors.Is(err, sql.ErrNoRows) {
			// Sent already (the inbox row went with it), or no such email.
			return notFoundIfNoRows(tx.QueryRowContext(ctx, `SELECT id FROM emails WHERE id = $1`, id).Scan(&id), "email")
		}
		if err != nil {
			return err
		}
		_, err = markProcessed(ctx, tx, consumer, eventID, now)
		return err
	})
}

// EmailFailed records a failed attempt and releases the lease. With final
// false the email stays queued (a retry is coming); with final true it is
// failed, and reason is what staff see. A sent email is left as it is.
func (s *Store) EmailFailed(ctx context.Context, id int64, reason string, final bool, now time.Time) error {
	status := ladle.EmailQueued
	if final {
		status = ladle.EmailFailed
	}
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	return s.withTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE emails SET status = $1, error = $2, lease_until = NULL, updated_at = $3
			WHERE id = $4 AND status <> 'sent'`, status, reason, ts(now), id)
		return err
	})
}

// GiveUpEmail marks the email the consumer reserved for the event, if any,
// failed with reason: the worker gave up on the event (a dead letter).
func (s *Store) GiveUpEmail(ctx context.Context, consumer, eventID, reason string, now time.Time) error {
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	return s.withTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE emails SET status = 'failed', error = $1, lease_until = NULL, updated_at = $2
			WHERE consumer = $3 AND event_id = $4 AND status <> 'sent'`, reason, ts(now), consumer, eventID)
		return err
	})
}

// Emails lists the restaurant's emails, newest first: those with an id below
// beforeID (0 for the newest), at most limit (default 50, at most 500).
func (s *Store) Emails(ctx context.Context, restaurantID, beforeID int64, limit int) ([]ladle.Email, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	return scanEmails(s.read.QueryContext(ctx, `SELECT `+emailColumns+` FROM emails
		WHERE restaurant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, restaurantID, beforeID, limit))
}

// Email returns one of the restaurant's emails.
func (s *Store) Email(ctx context.Context, restaurantID, id int64) (*ladle.Email, error) {
	var e ladle.Email
	err := scanEmail(s.read.QueryRowContext(ctx, `SELECT `+emailColumns+` FROM emails
		WHERE restaurant_id = $1 AND id = $2`, restaurantID, id), &e)
	if err != nil {
		return nil, notFoundIfNoRows(err, "email")
	}
	return &e, nil
}

// OrderEmails lists the emails sent or being sent about one order, oldest
// first. Saying that the order id is not empty lets the planner use the
// partial index emails_order.
func (s *Store) OrderEmails(ctx context.Context, restaurantID int64, orderID string) ([]ladle.Email, error) {
	return scanEmails(s.read.QueryContext(ctx, `SELECT `+emailColumns+` FROM emails
		WHERE restaurant_id = $1 AND order_id = $2 AND order_id <> '' ORDER BY id`, restaurantID, orderID))
}

// scanEmails reads the rows of a query for emailColumns.
func scanEmails(rows *sql.Rows, err error) ([]ladle.Email, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ladle.Email
	for rows.Next() {
		var e ladle.Email
		if err := scanEmail(rows, &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// EmailCounts returns how many of the restaurant's emails are in each status.
func (s *Store) EmailCounts(ctx context.Context, restaurantID int64) (map[string]int, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT status, count(*) FROM emails WHERE restaurant_id = $1 GROUP BY status`, restaurantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}
