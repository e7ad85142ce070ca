package sqlstore

import (
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds everything that differs between SQLite and PostgreSQL. The
// SQL itself is shared: both accept $1-style placeholders (reused ones too),
// RETURNING and ON CONFLICT. What differs is the DDL (one migrations folder
// per dialect), row locking, a few functions, and how errors are reported.
//
// Timestamps: PostgreSQL keeps them as timestamptz; SQLite keeps them as
// INTEGER microseconds since the Unix epoch, UTC. The SQLite DSN sets
// _time_integer_format=unix_micro so a time.Time parameter binds as that
// integer, which means every statement passes time.Time in both dialects,
// comparisons inside SQL (windows, reaping) are plain integer comparisons,
// and values round-trip exactly at microsecond precision (ladle.Now's
// precision). Columns are read back through timeCol, which accepts both forms.
type dialect struct {
	name string
	// forUpdate locks the selected rows until commit in PostgreSQL. SQLite
	// needs no row locks: every write transaction begins IMMEDIATE on the
	// single write connection, so writers are already serialized.
	forUpdate string
	// skipLocked is forUpdate for work queues (the outbox relay): rows
	// another transaction holds are skipped instead of waited for.
	skipLocked string
	// idsParam is an SQL expression yielding the integers of a JSON array
	// given as parameter $2 (encodeIDs), one row each: it keeps "these
	// items" a single fixed statement whatever the number of ids.
	idsParam string
	// loadOrderItems is sqlLoadOrderItems with idsParam filled in.
	loadOrderItems string
	// assignNumber gives a placed order its number (orders.go), and
	// settleCaptured does it for a card order as it is placed (payments.go).
	assignNumber, settleCaptured string
	// readTx is how read-only snapshots begin: REPEATABLE READ in
	// PostgreSQL so a menu's several queries see one state; SQLite's
	// deferred read transaction is already a snapshot in WAL mode.
	readTx *sql.TxOptions
	// migrationsTable is the DDL of the table that records applied
	// migrations.
	migrationsTable string
}

// The integers of the JSON array in parameter $2, one row each.
const (
	sqliteIDs   = `SELECT value FROM json_each($2)`
	postgresIDs = `SELECT jsonb_array_elements_text($2::jsonb)::bigint`
)

var (
	dialectSQLite = &dialect{
		name:           "sqlite",
		forUpdate:      "",
		skipLocked:     "",
		idsParam:       sqliteIDs,
		loadOrderItems: sqlLoadOrderItemsSQLite,
		assignNumber:   sqlAssignNumberSQLite,
		settleCaptured: sqlSettleCapturedSQLite,
		readTx:         &sql.TxOptions{ReadOnly: true},
		migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`,
	}
	dialectPostgres = &dialect{
		name:           "postgres",
		forUpdate:      " FOR UPDATE",
		skipLocked:     " FOR UPDATE SKIP LOCKED",
		idsParam:       postgresIDs,
		loadOrderItems: sqlLoadOrderItemsPostgres,
		assignNumber:   sqlAssignNumberPostgres,
		settleCaptured: sqlSettleCapturedPG,
		readTx:         &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead},
		migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL
		)`,
	}
)

// isUniqueViolation reports whether err is a unique or primary key
// violation. Most statements avoid it with ON CONFLICT; this is the safety
// net that turns a race the statement did not foresee into a conflict
// instead of an internal error.
func (d *dialect) isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isForeignKeyViolation reports whether err is a foreign key violation.
func (d *dialect) isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}
