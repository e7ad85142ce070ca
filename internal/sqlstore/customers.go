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
			)
			err := tx.QueryRowContext(ctx, `SELECT id, name, phone, marketing_opt_in FROM customers
				WHERE restaurant_id = $1 AND email = $2`, restaurantID, r.Email).Scan(&id, &name, &phone, &optIn)
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
			if newName == name && newPhone == phone && r.MarketingOptIn == optIn {
				out[i] = ladle.ImportUnchanged
				continue
			}
			// Consent newly given is stamped now, from the import; consent
			// kept keeps its time and source; consent withdrawn clears both.
			if _, err := tx.ExecContext(ctx, `UPDATE customers SET name = $3, phone = $4, marketing_opt_in = $5,
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

// CustomerByEmail implements ladle.CampaignStore.
func (s *Store) CustomerByEmail(ctx context.Context, restaurantID int64, email string) (*ladle.Customer, error) {
	c := &ladle.Customer{RestaurantID: restaurantID}
	err := s.read1(ctx, func(tx *Tx) error {
		return notFoundIfNoRows(tx.QueryRowContext(ctx, `SELECT id, email, name, phone, marketing_opt_in,
			marketing_opt_in_at, consent_source FROM customers WHERE restaurant_id = $1 AND email = $2`,
			restaurantID, strings.ToLower(email)).Scan(&c.ID, &c.Email, &c.Name, &c.Phone, &c.MarketingOptIn,
			nullTimeCol{&c.ConsentAt}, &c.ConsentSource), "customer")
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// audienceWhere returns the WHERE conditions (on customers c) of an
// audience, with its parameters numbered from next. Every audience is
// opted-in and unsuppressed customers; filters add order conditions.
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
	where, args := audienceWhere(a, now, 2)
	var n int64
	err := s.read1(ctx, func(tx *Tx) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM customers c WHERE c.restaurant_id = $1`+where,
			append([]any{restaurantID}, args...)...).Scan(&n)
	})
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
