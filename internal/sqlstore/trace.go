package sqlstore

import (
	"database/sql"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// WithPostgresTracer sees every statement the PostgreSQL connections run
// (pgx's QueryTracer). The order benchmark uses it to capture the exact SQL
// of one order placement and replay it with pgbench. Ignored on SQLite.
func WithPostgresTracer(t pgx.QueryTracer) Option { return func(o *options) { o.tracer = t } }

// DefaultConnectTimeout bounds opening one PostgreSQL connection when the
// URL sets no connect_timeout: a blackholed server then fails in seconds
// (as 503 unavailable) instead of after the kernel's TCP timeout. Callers'
// deadlines bound the wait for a pooled connection.
const DefaultConnectTimeout = 3 * time.Second

// openPgx opens a database/sql pool over pgx, with the tracer if one is set.
func openPgx(url string, tracer pgx.QueryTracer) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(url, "connect_timeout") {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	cfg.Tracer = tracer
	return sql.OpenDB(classifyingConnector{stdlib.GetConnector(*cfg)}), nil
}
