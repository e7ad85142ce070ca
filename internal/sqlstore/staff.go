package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
)

// CreateUser implements ladle.StaffStore.
func (s *Store) CreateUser(ctx context.Context, u *ladle.User) error {
	// The same address check as a guest's at checkout (ladle.CheckEmail).
	u.Email = ladle.NormalizeEmail(u.Email)
	if u.Email == "" {
		return invalid("email", "is required")
	}
	if msg := ladle.CheckEmail(u.Email); msg != "" {
		return invalid("email", msg)
	}
	if msg := ladle.CheckText(u.Name, ladle.NameText); msg != "" {
		return invalid("name", msg)
	}
	now := ts(s.now())
	return s.withTx(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO users (email, name, password_hash, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING RETURNING id`,
			u.Email, u.Name, u.PasswordHash, now).Scan(&u.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return conflict("email_taken", "a user with this email already exists")
		}
		if err != nil {
			return err
		}
		u.CreatedAt = now
		return nil
	})
}

const userColumns = `id, email, name, password_hash, created_at`

func scanUser(row *sql.Row) (*ladle.User, error) {
	var u ladle.User
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, timeCol{&u.CreatedAt}); err != nil {
		return nil, notFoundIfNoRows(err, "user")
	}
	return &u, nil
}

// UserByEmail implements ladle.StaffStore. The email is matched
// case-insensitively (it is stored lower-cased).
func (s *Store) UserByEmail(ctx context.Context, email string) (*ladle.User, error) {
	return scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`,
		strings.ToLower(strings.TrimSpace(email))))
}

// UserByID implements ladle.StaffStore.
func (s *Store) UserByID(ctx context.Context, id int64) (*ladle.User, error) {
	return scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// AddMembership implements ladle.StaffStore.
func (s *Store) AddMembership(ctx context.Context, m ladle.Membership) error {
	if !m.Role.Valid() {
		return invalid("role", "must be owner, manager or staff")
	}
	return s.withTx(ctx, func(tx *Tx) error {
		// The foreign keys are checked explicitly so a missing user or
		// restaurant is not_found rather than a constraint error.
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM users u, restaurants r WHERE u.id = $1 AND r.id = $2`,
			m.UserID, m.RestaurantID).Scan(&one)
		if err != nil {
			return notFoundIfNoRows(err, "user or restaurant")
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO memberships (user_id, restaurant_id, role) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, restaurant_id) DO UPDATE SET role = excluded.role`,
			m.UserID, m.RestaurantID, string(m.Role))
		return err
	})
}

// Memberships implements ladle.StaffStore.
func (s *Store) Memberships(ctx context.Context, userID int64) ([]ladle.Membership, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT m.user_id, m.restaurant_id, m.role, r.name, r.slug
		FROM memberships m JOIN restaurants r ON r.id = m.restaurant_id
		WHERE m.user_id = $1 ORDER BY r.name, r.id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ms := []ladle.Membership{}
	for rows.Next() {
		var m ladle.Membership
		if err := rows.Scan(&m.UserID, &m.RestaurantID, &m.Role, &m.RestaurantName, &m.RestaurantSlug); err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

// Membership implements ladle.StaffStore.
func (s *Store) Membership(ctx context.Context, userID, restaurantID int64) (*ladle.Membership, error) {
	var m ladle.Membership
	err := s.read.QueryRowContext(ctx, `SELECT m.user_id, m.restaurant_id, m.role, r.name, r.slug
		FROM memberships m JOIN restaurants r ON r.id = m.restaurant_id
		WHERE m.user_id = $1 AND m.restaurant_id = $2`, userID, restaurantID).
		Scan(&m.UserID, &m.RestaurantID, &m.Role, &m.RestaurantName, &m.RestaurantSlug)
	if err != nil {
		return nil, notFoundIfNoRows(err, "membership")
	}
	return &m, nil
}

// CreateSession implements ladle.StaffStore.
func (s *Store) CreateSession(ctx context.Context, sess *ladle.Session) error {
	if len(sess.TokenHash) == 0 {
		return invalid("token_hash", "is required")
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = s.now()
	}
	sess.CreatedAt, sess.ExpiresAt = ts(sess.CreatedAt), ts(sess.ExpiresAt)
	return s.withTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
			sess.TokenHash, sess.UserID, sess.CreatedAt, sess.ExpiresAt)
		if tx.d.isForeignKeyViolation(err) {
			return ladle.NotFound("user")
		}
		return err
	})
}

// SessionByTokenHash implements ladle.StaffStore.
func (s *Store) SessionByTokenHash(ctx context.Context, hash []byte, now time.Time) (*ladle.Session, error) {
	var sess ladle.Session
	err := s.read.QueryRowContext(ctx, `SELECT token_hash, user_id, created_at, expires_at FROM sessions
		WHERE token_hash = $1 AND expires_at > $2`, hash, ts(now)).
		Scan(&sess.TokenHash, &sess.UserID, timeCol{&sess.CreatedAt}, timeCol{&sess.ExpiresAt})
	if err != nil {
		return nil, notFoundIfNoRows(err, "session")
	}
	return &sess, nil
}

// DeleteSession implements ladle.StaffStore. Deleting a session that does
// not exist is not an error (logging out twice is fine).
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	return s.withTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, hash)
		return err
	})
}

// DeleteExpiredSessions implements ladle.StaffStore.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < $1`, ts(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
