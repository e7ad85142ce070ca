package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps prepared statements for one SQLite pool. SQLite has no
// server to cache plans: every statement text is parsed and planned again
// unless it is prepared, and on the order path parsing cost about as much CPU
// as the commit itself (pprof of BenchmarkCreateOrder). database/sql's
// *sql.Stmt prepares lazily once per connection and is safe to share, so
// one per statement text serves every connection of the pool. (pgx caches
// prepared statements on its own connections, so PostgreSQL needs none.)
//
// A statement is never prepared while its caller holds a connection of the
// pool: the write pool has exactly one connection, so preparing from inside
// a transaction would wait for itself. A miss inside a transaction runs the
// statement unprepared and notes it; the transaction's owner prepares the
// noted ones once it has let go of the connection (prepareWanted).
type stmtCache struct {
	db     *sql.DB
	mu     sync.RWMutex
	m      map[string]*sql.Stmt
	wanted map[string]bool
}

// maxCachedStmts bounds the cache: statement texts are constants, except
// multi-row inserts, which vary with their row count (at most MaxLines).
const maxCachedStmts = 512

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// lookup returns the cached statement, or nil after noting that query is
// wanted.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[query]
	c.mu.RUnlock()
	if st == nil {
		c.mu.Lock()
		if len(c.m)+len(c.wanted) < maxCachedStmts {
			c.wanted[query] = true
		}
		c.mu.Unlock()
	}
	return st
}

// prepareWanted prepares the statements noted as wanted. Call it holding no
// connection of the pool. No lock is held while preparing: the prepare may
// wait for the pool's connection, and the transaction holding it must be
// able to look statements up meanwhile.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	c.mu.Lock()
	todo := make([]string, 0, len(c.wanted))
	for q := range c.wanted {
		todo = append(todo, q)
		delete(c.wanted, q)
	}
	c.mu.Unlock()
	for _, q := range todo {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue // it keeps running unprepared, and fails (or not) there
		}
		c.mu.Lock()
		if c.m[q] == nil {
			c.m[q], st = st, nil
		}
		c.mu.Unlock()
		if st != nil {
			st.Close() // another goroutine prepared it first
		}
	}
}

// hasWanted reports whether prepareWanted has work.
func (c *stmtCache) hasWanted() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.wanted) > 0
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = map[string]*sql.Stmt{}
}

// cachedQuerier runs statements through the cache, inside tx when it is set
// (the Stmt is rebound to the transaction's connection) or on the pool.
type cachedQuerier struct {
	c  *stmtCache
	tx *sql.Tx
}

// stmt returns the prepared statement for query bound to the transaction,
// or nil to run query unprepared.
func (q cachedQuerier) stmt(ctx context.Context, query string) *sql.Stmt {
	st := q.c.lookup(query)
	if st == nil || q.tx == nil {
		return st
	}
	return q.tx.StmtContext(ctx, st)
}

func (q cachedQuerier) plain() querier {
	if q.tx != nil {
		return q.tx
	}
	return q.c.db
}

func (q cachedQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := q.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.plain().ExecContext(ctx, query, args...)
}

func (q cachedQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.plain().QueryContext(ctx, query, args...)
}

func (q cachedQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.plain().QueryRowContext(ctx, query, args...)
}

// querierFor wraps a transaction of pool db (or the pool itself, tx nil) in
// the statement cache when the store keeps one for that pool.
func (s *Store) querierFor(db *sql.DB, tx *sql.Tx) querier {
	var c *stmtCache
	switch {
	case s.writeStmts != nil && db == s.write:
		c = s.writeStmts
	case s.readStmts != nil && db == s.read:
		c = s.readStmts
	}
	if c == nil {
		if tx != nil {
			return tx
		}
		return db
	}
	return cachedQuerier{c: c, tx: tx}
}

// afterTx prepares what the transaction that just ended on db wanted.
func (s *Store) afterTx(db *sql.DB) {
	c := s.writeStmts
	if db == s.read {
		c = s.readStmts
	}
	if c != nil && c.hasWanted() {
		c.prepareWanted(context.Background())
	}
}
