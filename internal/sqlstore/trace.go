package sqlstore

import (
	"database/sql"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// WithPostgresTracer sees every statement the PostgreSQL connections run
// (pgx's QueryTracer). The order benchmark uses it to capture the exact SQL
// of one order placement and replay it with pgbench. Ignored on SQLite.
func WithPostgresTracer(t pgx.QueryTracer) Option { return func(o *options) { o.tracer = t } }

// openPgx opens a database/sql pool over pgx, with the tracer if one is set.
func openPgx(url string, tracer pgx.QueryTracer) (*sql.DB, error) {
	if tracer == nil {
		return sql.Open("pgx", url)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.Tracer = tracer
	return sql.Open("pgx", stdlib.RegisterConnConfig(cfg))
}
