package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
)

var _ ladle.CampaignStore = (*Store)(nil)

// ImportCustomers implements ladle.CampaignStore.
func (s *Store) ImportCustomers(ctx context.Context, restaurantID int64, rows []ladle.CustomerImport, now time.Time) ([]ladle.ImportOutcome, error) {
	now = ts(now)
	out := make([]ladle.ImportOutcome, len(rows))
	err := s.withTx(ctx, func(tx *Tx) error {
		if err := restaurantExists(ctx, tx, restaurantID); err != nil {
			return err
		}
		for i, r := range rows {
			var (
				id          int64
				name, phone string
				optIn       bool
				pending     bool
			)
			err := tx.QueryRowContext(ctx, `SELECT id, name, phone, marketing_opt_in, consent_pending_at IS NOT NULL FROM customers
				WHERE restaurant_id = $1 AND email = $2`, restaurantID, r.Email).Scan(&id, &name, &phone, &optIn, &pending)
			if errors.Is(err, sql.ErrNoRows) {
				var at any
				source := ""
				if r.MarketingOptIn {
					at, source = now, ladle.ConsentImport
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO customers (restaurant_id, email, name, phone,
					marketing_opt_in, marketing_opt_in_at, consent_source, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
					restaurantID, r.Email, r.Name, r.Phone, r.MarketingOptIn, at, source, now); err != nil {
					return err
				}
				out[i] = ladle.ImportCreated
				continue
			}
			if err != nil {
				return err
			}
			newName, newPhone := name, phone
			if r.Name != "" {
				newName = r.Name
			}
			if r.Phone != "" {
				newPhone = r.Phone
			}
			if newName == name && newPhone == phone && r.MarketingOptIn == optIn && !pending {
				out[i] = ladle.ImportUnchanged
				continue
			}
			// Consent newly given is stamped now, from the import; consent
			// kept keeps its time and source; consent withdrawn clears both.
			// Either way the row settles a pending checkout consent: an
			// import is the restaurant's word (see double opt-in in
			// campaign.go), and it never lifts a suppression.
			if _, err := tx.ExecContext(ctx, `UPDATE customers SET name = $3, phone = $4, marketing_opt_in = $5,
				consent_pending_at = NULL,
				marketing_opt_in_at = CASE WHEN NOT $5 THEN NULL WHEN marketing_opt_in THEN marketing_opt_in_at ELSE $6 END,
				consent_source = CASE WHEN NOT $5 THEN '' WHEN marketing_opt_in THEN consent_source ELSE $7 END,
				updated_at = $6
				WHERE restaurant_id = $1 AND id = $2`,
				restaurantID, id, newName, newPhone, r.MarketingOptIn, now, ladle.ConsentImport); err != nil {
				return err
			}
			out[i] = ladle.ImportUpdated
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// customerColumns are a Customer's columns of customers c, with its
// suppression (s joined on the address); scanCustomer reads them.
const customerColumns = `c.id, c.email, c.name, c.phone, c.marketing_opt_in, c.marketing_opt_in_at, c.consent_source,
	c.consent_pending_at, c.consent_confirmed_at, COALESCE(s.reason, '')`

const customerFrom = ` FROM customers c LEFT JOIN suppressions s ON s.restaurant_id = c.restaurant_id AND s.email = c.email`

func scanCustomer(row interface{ Scan(...any) error }, c *ladle.Customer) error {
	return row.Scan(&c.ID, &c.Email, &c.Name, &c.Phone, &c.MarketingOptIn, nullTimeCol{&c.ConsentAt}, &c.ConsentSource,
		nullTimeCol{&c.ConsentPendingAt}, nullTimeCol{&c.ConsentConfirmedAt}, (*string)(&c.Suppressed))
}

// CustomerByEmail implements ladle.CampaignStore.
func (s *Store) CustomerByEmail(ctx context.Context, restaurantID int64, email string) (*ladle.Customer, error) {
	c := &ladle.Customer{RestaurantID: restaurantID}
	err := s.read1(ctx, func(tx *Tx) error {
		return notFoundIfNoRows(scanCustomer(tx.QueryRowContext(ctx, `SELECT `+customerColumns+customerFrom+`
			WHERE c.restaurant_id = $1 AND c.email = $2`, restaurantID, strings.ToLower(email)), c), "customer")
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListCustomers implements ladle.CampaignStore: a keyset page by id
// through customers' (restaurant_id, id) index; a search is a substring
// match of the lowercased email (stored lowercased) or name, with LIKE's
// wildcards in it taken literally.
func (s *Store) ListCustomers(ctx context.Context, restaurantID int64, q ladle.CustomerQuery) ([]ladle.Customer, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = ladle.DefaultCustomerLimit
	}
	limit = min(limit, ladle.MaxCustomerLimit)
	query := `SELECT ` + customerColumns + customerFrom + ` WHERE c.restaurant_id = $1 AND c.id > $2`
	args := []any{restaurantID, q.After, limit}
	if search := strings.TrimSpace(q.Search); search != "" {
		query += ` AND (c.email LIKE $4 ESCAPE '\' OR lower(c.name) LIKE $4 ESCAPE '\')`
		args = append(args, "%"+likeEscape(strings.ToLower(search))+"%")
	}
	query += ` ORDER BY c.id LIMIT $3`
	var out []ladle.Customer
	err := s.read1(ctx, func(tx *Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c := ladle.Customer{RestaurantID: restaurantID}
			if err := scanCustomer(rows, &c); err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}

// optedInCount counts restaurant $1's opted-in customers who are not
// suppressed: every audience without order filters. Each count reads a
// partial index (migration 0070), and the opted-in who are suppressed are
// counted from the restaurant's suppressions, which are few, rather than
// from its customers joined to them, which read every customer (0.68 s
// for a million on SQLite, on every load of the campaigns page).
const optedInCount = `((SELECT count(*) FROM customers WHERE restaurant_id = $1 AND marketing_opt_in)
	- (SELECT count(*) FROM suppressions s JOIN customers c ON c.restaurant_id = s.restaurant_id AND c.email = s.email
		WHERE s.restaurant_id = $1 AND c.marketing_opt_in))`

// ConsentCounts implements ladle.CampaignStore.
func (s *Store) ConsentCounts(ctx context.Context, restaurantID int64) (optedIn, pending int64, err error) {
	err = s.read1(ctx, func(tx *Tx) error {
		return tx.QueryRowContext(ctx, `SELECT `+optedInCount+`,
			(SELECT count(*) FROM customers WHERE restaurant_id = $1 AND consent_pending_at IS NOT NULL AND NOT marketing_opt_in)`,
			restaurantID).Scan(&optedIn, &pending)
	})
	return optedIn, pending, err
}

// SetDoubleOptIn implements ladle.CampaignStore.
func (s *Store) SetDoubleOptIn(ctx context.Context, restaurantID int64, on bool) error {
	return s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE restaurants SET double_opt_in = $2 WHERE id = $1`, restaurantID, on)
		if n, err := rowsAffected(res, err); err != nil {
			return err
		} else if n == 0 {
			return ladle.NotFound("restaurant")
		}
		return nil
	})
}

// ClaimConfirmEmail implements ladle.CampaignStore. One conditional
// update decides and records, so two events racing for one customer
// cannot both win.
func (s *Store) ClaimConfirmEmail(ctx context.Context, restaurantID, customerID int64, eventID string, now time.Time) (*ladle.Customer, error) {
	now = ts(now)
	var c *ladle.Customer
	err := s.withTx(ctx, func(tx *Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `UPDATE customers SET confirm_sent_at = $4, confirm_event_id = $3
			WHERE restaurant_id = $1 AND id = $2 AND consent_pending_at IS NOT NULL
			AND (confirm_event_id = $3 OR confirm_sent_at IS NULL OR confirm_sent_at <= $5)
			AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.restaurant_id = customers.restaurant_id
				AND s.email = customers.email AND s.reason <> 'unsubscribed')
			AND (NOT marketing_opt_in OR EXISTS (SELECT 1 FROM suppressions s WHERE s.restaurant_id = customers.restaurant_id
				AND s.email = customers.email))
			RETURNING id`, restaurantID, customerID, eventID, now, now.Add(-ladle.ConfirmEmailInterval)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		c = &ladle.Customer{RestaurantID: restaurantID}
		return scanCustomer(tx.QueryRowContext(ctx, `SELECT `+customerColumns+customerFrom+`
			WHERE c.restaurant_id = $1 AND c.id = $2`, restaurantID, id), c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ConfirmConsent implements ladle.CampaignStore.
func (s *Store) ConfirmConsent(ctx context.Context, restaurantID int64, email string, now time.Time) (ladle.ConfirmOutcome, error) {
	now, email = ts(now), strings.ToLower(email)
	var out ladle.ConfirmOutcome
	err := s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE customers SET marketing_opt_in = $3, marketing_opt_in_at = $4,
			consent_source = $5, consent_confirmed_at = $4, consent_pending_at = NULL, updated_at = $4
			WHERE restaurant_id = $1 AND email = $2 AND consent_pending_at IS NOT NULL`,
			restaurantID, email, true, now, ladle.ConsentCheckout)
		n, err := rowsAffected(res, err)
		if err != nil {
			return err
		}
		if n == 1 {
			// They asked again and confirmed it: an unsubscribe of theirs
			// is over. A bounce or a complaint is not theirs to lift.
			if _, err := tx.ExecContext(ctx, `DELETE FROM suppressions WHERE restaurant_id = $1 AND email = $2
				AND reason = 'unsubscribed'`, restaurantID, email); err != nil {
				return err
			}
			out = ladle.ConfirmDone
			return nil
		}
		var c ladle.Customer
		err = scanCustomer(tx.QueryRowContext(ctx, `SELECT `+customerColumns+customerFrom+`
			WHERE c.restaurant_id = $1 AND c.email = $2`, restaurantID, email), &c)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			out = ladle.ConfirmNothing
		case err != nil:
			return err
		case c.Consent() == ladle.ConsentOptedIn:
			out = ladle.ConfirmedAlready
		default:
			out = ladle.ConfirmNothing
		}
		return nil
	})
	return out, err
}

// audienceWhere returns the WHERE conditions (on customers c) of an
// audience, with its parameters numbered from next. Every audience is
// opted-in and unsuppressed customers; filters add order conditions (a new
// one belongs in ladle.Audience.Filtered too).
func audienceWhere(a ladle.Audience, now time.Time, next int) (string, []any) {
	var b strings.Builder
	var args []any
	param := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", next+len(args)-1)
	}
	t := true
	b.WriteString(` AND c.marketing_opt_in = ` + param(t) +
		` AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.restaurant_id = c.restaurant_id AND s.email = c.email)`)
	// Orders that count: placed ones (not an unpaid or declined card).
	const counted = `o.restaurant_id = c.restaurant_id AND o.customer_id = c.id AND o.status NOT IN ('pending_payment', 'payment_failed')`
	if a.OrderedWithinDays > 0 {
		since := ts(now.Add(-time.Duration(a.OrderedWithinDays) * 24 * time.Hour))
		b.WriteString(` AND EXISTS (SELECT 1 FROM orders o WHERE ` + counted + ` AND o.created_at >= ` + param(since) + `)`)
	}
	if a.MinOrders > 0 {
		b.WriteString(` AND (SELECT count(*) FROM orders o WHERE ` + counted + `) >= ` + param(int64(a.MinOrders)))
	}
	if a.NotOrderedSince != nil {
		b.WriteString(` AND NOT EXISTS (SELECT 1 FROM orders o WHERE ` + counted + ` AND o.created_at >= ` + param(ts(*a.NotOrderedSince)) + `)`)
	}
	return b.String(), args
}

// AudienceSize implements ladle.CampaignStore.
func (s *Store) AudienceSize(ctx context.Context, restaurantID int64, a ladle.Audience, now time.Time) (int64, error) {
	q, args := `SELECT `+optedInCount, []any{restaurantID}
	if a.Filtered() {
		where, fargs := audienceWhere(a, now, 2)
		q, args = `SELECT count(*) FROM customers c WHERE c.restaurant_id = $1`+where, append(args, fargs...)
	}
	var n int64
	err := s.read1(ctx, func(tx *Tx) error { return tx.QueryRowContext(ctx, q, args...).Scan(&n) })
	return n, err
}

// Suppress implements ladle.CampaignStore.
func (s *Store) Suppress(ctx context.Context, restaurantID int64, email string, why ladle.SuppressionReason, now time.Time) error {
	return s.withTx(ctx, func(tx *Tx) error { return suppress(ctx, tx, restaurantID, email, why, now) })
}

func suppress(ctx context.Context, tx *Tx, restaurantID int64, email string, why ladle.SuppressionReason, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO suppressions (restaurant_id, email, reason, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (restaurant_id, email) DO NOTHING`,
		restaurantID, strings.ToLower(email), string(why), ts(now))
	return err
}

// Suppressed implements ladle.CampaignStore.
func (s *Store) Suppressed(ctx context.Context, restaurantID int64, email string) (ladle.SuppressionReason, error) {
	var why string
	err := s.read1(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT reason FROM suppressions WHERE restaurant_id = $1 AND email = $2`,
			restaurantID, strings.ToLower(email)).Scan(&why)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	return ladle.SuppressionReason(why), err
}
