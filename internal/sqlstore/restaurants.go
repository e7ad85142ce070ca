package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
)

var (
	slugRE     = regexp.MustCompile(`^[a-z0-9-]{2,64}$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
)

const restaurantColumns = `id, slug, name, currency, tax_rate_bp, time_zone, phone, address, menu_version, double_opt_in, created_at`

func scanRestaurant(row interface{ Scan(...any) error }, r *ladle.Restaurant) error {
	return row.Scan(&r.ID, &r.Slug, &r.Name, &r.Currency, &r.TaxRateBP, &r.TimeZone, &r.Phone, &r.Address,
		&r.MenuVersion, &r.DoubleOptIn, timeCol{&r.CreatedAt})
}

// validateRestaurant checks what the schema's CHECKs would refuse, so bad
// input is a validation_failed error naming the field, not an internal one.
func validateRestaurant(r *ladle.Restaurant) error {
	switch {
	case !slugRE.MatchString(r.Slug):
		return invalid("slug", "must be 2–64 characters of a-z, 0-9 and -")
	case strings.TrimSpace(r.Name) == "":
		return invalid("name", "is required")
	case ladle.CheckText(r.Name, MenuNameText) != "":
		return invalid("name", ladle.CheckText(r.Name, MenuNameText))
	case ladle.CheckText(r.Address, ladle.TextRule{Max: 300}) != "":
		return invalid("address", ladle.CheckText(r.Address, ladle.TextRule{Max: 300}))
	case ladle.CheckText(r.Phone, ladle.TextRule{Max: 40}) != "":
		return invalid("phone", ladle.CheckText(r.Phone, ladle.TextRule{Max: 40}))
	case !currencyRE.MatchString(r.Currency):
		return invalid("currency", "must be an ISO 4217 code such as USD")
	case r.TaxRateBP < 0 || r.TaxRateBP > 10000:
		return invalid("tax_rate_bp", "must be between 0 and 10000")
	}
	if _, err := time.LoadLocation(r.TimeZone); err != nil || r.TimeZone == "" {
		return invalid("time_zone", "must be an IANA time zone such as America/New_York")
	}
	return nil
}

// CreateRestaurant implements ladle.RestaurantStore.
func (s *Store) CreateRestaurant(ctx context.Context, r *ladle.Restaurant) error {
	if err := validateRestaurant(r); err != nil {
		return err
	}
	now := ts(s.now())
	return s.withTx(ctx, func(tx *Tx) error {
		// ON CONFLICT DO NOTHING: a taken slug returns no row instead of
		// aborting the transaction with an error to decode.
		err := tx.QueryRowContext(ctx, `INSERT INTO restaurants (slug, name, currency, tax_rate_bp, time_zone, phone, address, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (slug) DO NOTHING RETURNING id, menu_version`,
			r.Slug, r.Name, r.Currency, r.TaxRateBP, r.TimeZone, r.Phone, r.Address, now).Scan(&r.ID, &r.MenuVersion)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return conflict("slug_taken", "the slug %q is taken", r.Slug)
			}
			return err
		}
		r.CreatedAt = now
		return nil
	})
}

// RestaurantByID implements ladle.RestaurantStore.
func (s *Store) RestaurantByID(ctx context.Context, id int64) (*ladle.Restaurant, error) {
	return restaurantByID(ctx, s.reader(), id)
}

func restaurantByID(ctx context.Context, tx *Tx, id int64) (*ladle.Restaurant, error) {
	var r ladle.Restaurant
	err := scanRestaurant(tx.QueryRowContext(ctx, `SELECT `+restaurantColumns+` FROM restaurants WHERE id = $1`, id), &r)
	if err != nil {
		return nil, notFoundIfNoRows(err, "restaurant")
	}
	return &r, nil
}

// RestaurantBySlug implements ladle.RestaurantStore.
func (s *Store) RestaurantBySlug(ctx context.Context, slug string) (*ladle.Restaurant, error) {
	// No slug outside the pattern exists, and an arbitrary one (a NUL,
	// invalid UTF-8) is an error on PostgreSQL, not a missing row.
	if !slugRE.MatchString(slug) {
		return nil, ladle.NotFound("restaurant")
	}
	var r ladle.Restaurant
	err := s.lag1(ctx, func(ctx context.Context, tx *Tx) error {
		err := scanRestaurant(tx.QueryRowContext(ctx, `SELECT `+restaurantColumns+` FROM restaurants WHERE slug = $1`, slug), &r)
		return notFoundIfNoRows(err, "restaurant")
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Restaurants implements ladle.RestaurantStore.
func (s *Store) Restaurants(ctx context.Context) ([]ladle.Restaurant, error) {
	var rs []ladle.Restaurant
	err := s.lag1(ctx, func(ctx context.Context, tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+restaurantColumns+` FROM restaurants ORDER BY name, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		rs = []ladle.Restaurant{}
		for rows.Next() {
			var r ladle.Restaurant
			if err := scanRestaurant(rows, &r); err != nil {
				return err
			}
			rs = append(rs, r)
		}
		return rows.Err()
	})
	return rs, err
}
