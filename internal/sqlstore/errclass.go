package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ladle-dev/ladle"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// unavailable classifies err at the adapter's edge: an error that means
// "the database cannot serve this now" (down, unreachable, past the
// caller's deadline, out of connections, shutting down, busy) becomes
// ladle.Unavailable, which the HTTP layer answers 503 with Retry-After;
// anything else passes unchanged (a *ladle.Error keeps its kind, and a
// driver error that is none of these stays internal: a bug). withTx, readTx
// and read1 run every error through it, and so does the PostgreSQL
// connector for errors opening a connection, which reach every query.
func unavailable(err error) error {
	if err == nil || !isUnavailable(err) {
		return err
	}
	return ladle.Unavailable(err, 1, "the database is unavailable; retry shortly")
}

func isUnavailable(err error) bool {
	var le *ladle.Error
	if errors.As(err, &le) {
		return false // classified already (and never re-classified)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),                           // insufficient resources (too many connections, disk full)
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // admin/crash shutdown, cannot connect now
			pe.Code == "57014",                     // query canceled (statement timeout, cancelled context)
			pe.Code == "25P03",                     // idle in transaction timeout
			pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock: safe to retry
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.Timeout(err) || errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// classifyingConnector opens PostgreSQL connections and classifies the
// errors of opening one: when the server is down or unreachable, every
// statement fails there first.
type classifyingConnector struct{ driver.Connector }

func (c classifyingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	return conn, nil
}
