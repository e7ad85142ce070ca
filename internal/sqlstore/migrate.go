package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migrations are embedded SQL files, one folder per dialect, named
// NNNN_name.sql. They are append-only: a released file is never edited; a
// change is a new file with the next number. Both folders carry the same
// numbers. Migrate applies, in order, every file whose number is not yet in
// schema_migrations, each in its own transaction together with its
// schema_migrations row, so a failed migration leaves no trace and the next
// run retries it.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations sorted by version.
func migrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("sqlstore: migration %s/%s is not named NNNN_name.sql", dir, e.Name())
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(e.Name(), ".sql"), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("sqlstore: two migrations numbered %d", ms[i].version)
		}
	}
	return ms, nil
}

// txBeginner is *sql.DB or *sql.Conn.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Migrate brings the schema up to date. It is idempotent, and safe to run
// from several processes at once: on PostgreSQL it holds a session advisory
// lock keyed by the current schema for the whole run (so separate schemas,
// as in tests, migrate in parallel); on SQLite each migration's transaction
// begins IMMEDIATE, and both re-check schema_migrations inside the
// transaction.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations(s.d.name)
	if err != nil {
		return err
	}
	var db txBeginner = s.write
	if s.d == dialectPostgres {
		conn, err := s.write.Conn(ctx)
		if err != nil {
			return fmt.Errorf("sqlstore: migrate: %w", err)
		}
		defer conn.Close()
		const lockKey = `hashtext('ladle.migrate:' || current_schema())`
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+lockKey+`)`); err != nil {
			return fmt.Errorf("sqlstore: migrate: lock: %w", err)
		}
		defer func() {
			// Unlock even if ctx is done; if that fails, discard the
			// connection rather than return it to the pool still holding
			// the lock.
			if _, err := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+lockKey+`)`); err != nil {
				conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
		db = conn
	}
	if _, err := db.ExecContext(ctx, s.d.migrationsTable); err != nil {
		return fmt.Errorf("sqlstore: migrate: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		applied, err := s.applyMigration(ctx, db, m)
		if err != nil {
			return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
		}
		if applied {
			s.log.Info("applied migration", "dialect", s.d.name, "migration", m.name)
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, db txBeginner, m migration) (applied bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE version = $1`, m.version).Scan(&one)
	if err == nil {
		return false, nil // applied by an earlier run or another process
	}
	if err != sql.ErrNoRows {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		m.version, m.name, ts(s.now())); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// SchemaVersion returns the highest applied migration number, 0 before the
// first Migrate.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v)
	if err != nil {
		// Not created yet: PostgreSQL says the relation "does not exist",
		// SQLite says "no such table".
		if msg := err.Error(); strings.Contains(msg, "schema_migrations") &&
			(strings.Contains(msg, "does not exist") || strings.Contains(msg, "no such table")) {
			return 0, nil
		}
		return 0, err
	}
	return int(v.Int64), nil
}
