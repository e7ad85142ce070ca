// Package sqlstore implements ladle.Store on SQLite and PostgreSQL with one
// body of SQL over database/sql: PostgreSQL through pgx's stdlib driver,
// SQLite through modernc.org/sqlite (pure Go, no cgo). What differs between
// the two lives in a small dialect value (dialect.go) and in one migrations
// folder per database (migrations/).
//
// Every method that changes data runs one transaction (withTx) and calls
// lowercase helpers that take the *Tx, so a change, its outbox event and any
// bookkeeping commit or roll back together.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers driver "pgx"
	"github.com/ladle-dev/ladle"
	_ "modernc.org/sqlite" // registers driver "sqlite"
)

// Store is a ladle.Store backed by SQLite or PostgreSQL.
type Store struct {
	closeOnce sync.Once
	closeErr  error

	// write runs every read-write transaction. On SQLite it is a pool of
	// exactly one connection whose transactions BEGIN IMMEDIATE, so writers
	// queue in Go (cheap) instead of spinning on SQLITE_BUSY. On PostgreSQL
	// it is the same pool as read.
	write *sql.DB
	// read serves queries outside write transactions. On SQLite it is a
	// separate pool of query_only connections: in WAL mode readers never
	// wait for the writer.
	read *sql.DB
	d    *dialect
	now  ladle.Clock
	log  *slog.Logger
	// hooks run after a commit that appended events (notify.go).
	hooks commitHooks
	// group runs SQLite's write transactions with group commit
	// (groupcommit.go); nil on PostgreSQL.
	group *groupCommitter
	// ckpt checkpoints SQLite's WAL off the write path (checkpoint.go);
	// nil on PostgreSQL.
	ckpt *checkpointer
	// dur makes SQLite's lazy commits durable (durable.go); nil on
	// PostgreSQL.
	dur *durability
	// notifyKick wakes the PostgreSQL notifier (notify.go); nil on SQLite.
	notifyKick   chan struct{}
	stopNotifier func()
	// writeStmts and readStmts cache prepared statements on SQLite's
	// pools (stmtcache.go); nil on PostgreSQL.
	writeStmts, readStmts *stmtCache
	// replica serves reads that tolerate lag (replica.go); nil without
	// WithReplica.
	replica *replica
}

var _ ladle.Store = (*Store)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	clock       ladle.Clock
	log         *slog.Logger
	syncNormal  bool
	maxConns    int
	busyTimeout time.Duration
	tracer      pgx.QueryTracer // trace.go
	// replicaURL and replicaMaxLag configure the read replica (replica.go).
	replicaURL    string
	replicaMaxLag time.Duration
}

// WithClock sets the clock used for timestamps the caller does not pass
// (created_at of restaurants, users, menu rows, events). Default ladle.Now.
func WithClock(c ladle.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets the logger (migrations, slow or failed maintenance).
// Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithSQLiteSynchronousNormal switches SQLite from synchronous=FULL to
// NORMAL. FULL (the default) fsyncs the WAL on every commit, so an order
// that was acknowledged survives a power cut or kernel crash. NORMAL fsyncs
// only at checkpoints: roughly 4–5× the write throughput, and still safe
// against the process crashing, but the last transactions before a power
// loss can vanish — an acknowledged order could be lost. Choose it only when
// the host's storage is itself durable (battery-backed) or losing recent
// orders is acceptable. Ignored on PostgreSQL.
func WithSQLiteSynchronousNormal() Option { return func(o *options) { o.syncNormal = true } }

// WithMaxConns bounds the PostgreSQL pool (default 20) or the SQLite read
// pool (default max(4, GOMAXPROCS)). The SQLite write pool is always one.
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = n } }

// WithBusyTimeout sets how long a SQLite connection waits for another
// process's lock before failing with SQLITE_BUSY (default 10s). Within one
// process writers never contend: they queue for the single write connection.
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// Open connects to the database named by url and checks the connection. It
// does not migrate: call Migrate.
//
//   - postgres://… or postgresql://… opens PostgreSQL through pgx. Runtime
//     parameters go in the URL, e.g. ?search_path=tenant_a (pgx passes
//     parameters it does not know to the server).
//   - sqlite:/path/to/file.db, sqlite:relative.db or a plain file path
//     opens (and creates) a SQLite database file; its directory is created
//     if missing. An in-memory database is not supported: the read and write
//     pools must share one file.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{clock: ladle.Now, log: slog.Default(), busyTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Store{now: o.clock, log: o.log}
	var err error
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		err = s.openPostgres(url, o)
	default:
		err = s.openSQLite(url, o)
	}
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlstore: connect %s: %w", s.d.name, err)
	}
	if o.replicaURL != "" {
		if s.d != dialectPostgres {
			s.Close()
			return nil, errors.New("sqlstore: a read replica needs PostgreSQL")
		}
		// A replica that is down at start is not an error: reads use the
		// primary until it answers.
		if err := s.openReplica(o.replicaURL, o.replicaMaxLag, o); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) openPostgres(url string, o options) error {
	db, err := pgPool(url, o)
	if err != nil {
		return fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	s.d, s.read, s.write = dialectPostgres, db, db
	s.stopNotifier = s.startNotifier()
	return nil
}

// pgPool opens a PostgreSQL pool of WithMaxConns connections (default 20).
func pgPool(url string, o options) (*sql.DB, error) {
	db, err := openPgx(url, o.tracer)
	if err != nil {
		return nil, err
	}
	n := o.maxConns
	if n <= 0 {
		n = 20
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

func (s *Store) openSQLite(url string, o options) error {
	path := strings.TrimPrefix(url, "sqlite:")
	if p, ok := strings.CutPrefix(path, "//"); ok {
		path = p // sqlite:///abs/path.db
	}
	path, userQuery, _ := strings.Cut(path, "?")
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file::memory:") {
		return errors.New("sqlstore: sqlite needs a file path (in-memory databases are not supported)")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("sqlstore: create %s: %w", dir, err)
		}
	}
	sync := "FULL"
	if o.syncNormal {
		sync = "NORMAL"
	}
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)"+
		"&_pragma=synchronous(%s)&_time_integer_format=unix_micro", o.busyTimeout.Milliseconds(), sync)
	if userQuery != "" {
		common += "&" + userQuery
	}
	// The writer never checkpoints: the checkpointer does (checkpoint.go).
	write, err := sql.Open("sqlite", path+"?"+common+"&_txlock=immediate&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)
	read, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		write.Close()
		return fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	n := o.maxConns
	if n <= 0 {
		n = max(4, runtime.GOMAXPROCS(0))
	}
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	s.d, s.read, s.write = dialectSQLite, read, write
	s.writeStmts, s.readStmts = newStmtCache(write), newStmtCache(read)
	if err := s.startCheckpointer(path + "?" + common); err != nil {
		write.Close()
		read.Close()
		return err
	}
	s.dur = newDurability(path)
	s.startGroupCommit(o.syncNormal)
	return nil
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// DB returns the pool that runs write transactions (on SQLite the single
// write connection; on PostgreSQL the only pool). Other packages use it for
// their own tables (benchmarks, tests); they must keep transactions short.
func (s *Store) DB() *sql.DB { return s.write }

// ReadDB returns the pool for queries outside write transactions (on
// PostgreSQL the same pool as DB).
func (s *Store) ReadDB() *sql.DB { return s.read }

// Ping checks both pools.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return unavailable(err)
	}
	if s.read != s.write {
		return unavailable(s.read.PingContext(ctx))
	}
	return nil
}

// Close closes the pools. On SQLite the write pool closes last, so the last
// connection checkpoints the WAL into the database file. Closing again
// returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	if s.group != nil {
		s.group.close()
	}
	if s.ckpt != nil {
		s.ckpt.close()
	}
	if s.stopNotifier != nil {
		s.stopNotifier()
	}
	if s.replica != nil {
		s.replica.stop()
		_ = s.replica.db.Close()
	}
	if s.writeStmts != nil {
		s.writeStmts.close()
		s.readStmts.close()
	}
	var err error
	if s.read != s.write {
		err = s.read.Close()
	}
	return errors.Join(err, s.write.Close())
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Tx is what helpers run on: a transaction (or, for single-statement reads,
// a pool) together with the dialect and the store's clock.
type Tx struct {
	querier
	d   *dialect
	now ladle.Clock
	// appended is set by insertEvents: after commit, withTx wakes the
	// relay (notify.go).
	appended bool
	// conn is the connection of a PostgreSQL write transaction, for
	// batches (pgbatch.go); nil elsewhere (SQLite, reads).
	conn *sql.Conn
}

// withTx runs fn in a read-write transaction and commits it if fn returns
// nil. On SQLite it runs through the group committer (groupcommit.go): a
// savepoint inside a transaction shared with concurrent writers, holding
// the database's write lock from its start (BEGIN IMMEDIATE); on PostgreSQL it runs at READ
// COMMITTED, so every statement must be correct under that level on its own
// (conditional UPDATEs, ON CONFLICT) rather than rely on a snapshot.
func (s *Store) withTx(ctx context.Context, fn func(tx *Tx) error) (err error) {
	if s.group != nil {
		return s.group.run(ctx, fn)
	}
	// The transaction runs on a connection held for it, so that its
	// statements can also be sent as pgx batches on that connection
	// (pgbatch.go). Closing it (last) returns it to the pool.
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return unavailable(fmt.Errorf("sqlstore: begin: %w", err))
	}
	defer conn.Close()
	sqltx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(fmt.Errorf("sqlstore: begin: %w", err))
	}
	defer s.afterTx(s.write)
	// Deferred, so a panic in fn (recovered up the stack by the HTTP
	// server) cannot leave the transaction open: on SQLite that would hold
	// the only write connection, and every later write would wait forever.
	// After a commit, Rollback is a no-op.
	defer sqltx.Rollback()
	tx := &Tx{querier: s.querierFor(s.write, sqltx), d: s.d, now: s.now}
	if s.d == dialectPostgres {
		tx.conn = conn
	}
	if err := fn(tx); err != nil {
		return unavailable(err)
	}
	if err := sqltx.Commit(); err != nil {
		return unavailable(fmt.Errorf("sqlstore: commit: %w", err))
	}
	if tx.appended {
		s.eventsCommitted()
	}
	s.notePosition(ctx, conn)
	return nil
}

// readTx runs fn in a read-only snapshot on the read pool, for reads made of
// several queries that must agree with each other (a menu, an order and its
// lines).
func (s *Store) readTx(ctx context.Context, fn func(tx *Tx) error) error {
	return s.readTxOn(ctx, s.read, fn)
}

// readTxOn is readTx on pool db (the read pool or the replica).
func (s *Store) readTxOn(ctx context.Context, db *sql.DB, fn func(tx *Tx) error) error {
	sqltx, err := db.BeginTx(ctx, s.d.readTx)
	if err != nil {
		return unavailable(fmt.Errorf("sqlstore: begin read: %w", err))
	}
	defer s.afterTx(db) // runs after the rollback below has freed the connection
	defer sqltx.Rollback()
	return unavailable(fn(&Tx{querier: s.querierFor(db, sqltx), d: s.d, now: s.now}))
}

// read1 runs fn on the read pool outside a transaction, for reads of one
// statement, and classifies its error like readTx. Like readTx it then
// prepares the statements fn ran unprepared (afterTx), so a statement only
// ever run here is parsed once, not on every call.
func (s *Store) read1(ctx context.Context, fn func(tx *Tx) error) error {
	defer s.afterTx(s.read)
	return unavailable(fn(s.reader()))
}

// reader is a Tx over the read pool, for reads of one statement.
func (s *Store) reader() *Tx { return &Tx{querier: s.querierFor(s.read, nil), d: s.d, now: s.now} }

// timeCol scans a timestamp column: time.Time from PostgreSQL, int64
// microseconds from SQLite. The result is UTC.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*c.t = v.UTC()
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a timestamp", src)
	}
	return nil
}

// nullTimeCol scans a nullable timestamp column into a *time.Time.
type nullTimeCol struct{ t **time.Time }

func (c nullTimeCol) Scan(src any) error {
	if src == nil {
		*c.t = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(src); err != nil {
		return err
	}
	*c.t = &t
	return nil
}

// ts normalizes a time for storage: UTC, microsecond precision, so what is
// returned to the caller equals what a later read returns.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// tsPtr is ts for nullable columns: nil stays NULL.
func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// invalid is a validation_failed error for one field.
func invalid(field, msg string) *ladle.Error {
	return &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation,
		Message: field + " " + msg, Fields: map[string]string{field: msg}}
}

// conflict is a KindConflict error with a package-specific code.
func conflict(code, format string, args ...any) *ladle.Error {
	return ladle.Errorf(ladle.KindConflict, code, format, args...)
}

// notFoundIfNoRows turns sql.ErrNoRows into ladle.NotFound(what).
func notFoundIfNoRows(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ladle.NotFound(what)
	}
	// Lookups outside read1/readTx (RestaurantBySlug, …) classify an
	// outage the same way: a 503, not a 500.
	return unavailable(err)
}

// mustAffect returns NotFound(what) if the statement changed no row.
func mustAffect(res sql.Result, err error, what string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ladle.NotFound(what)
	}
	return nil
}
