package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// commitHooks are the functions to run after a transaction that appended
// events to the outbox commits (the relay's wake-up call).
type commitHooks struct {
	mu  sync.RWMutex
	fns []func()
}

// OnEventsCommitted registers fn to run after every commit of a transaction
// that appended events to the outbox, in this process. The relay registers
// its Wake here, so an event is published right after its commit instead of
// at the next poll. fn runs on the committing goroutine: it must be quick and
// must not block (a non-blocking channel send).
func (s *Store) OnEventsCommitted(fn func()) {
	s.hooks.mu.Lock()
	s.hooks.fns = append(s.hooks.fns, fn)
	s.hooks.mu.Unlock()
}

// eventsCommitted runs the hooks; withTx calls it after a commit of a
// transaction in which insertEvents ran. On PostgreSQL it also asks the
// notifier to tell other processes' relays (ListenEvents).
func (s *Store) eventsCommitted() {
	if s.notifyKick != nil {
		select {
		case s.notifyKick <- struct{}{}:
		default: // a NOTIFY is due already; it covers this commit too
		}
	}
	s.hooks.mu.RLock()
	defer s.hooks.mu.RUnlock()
	for _, fn := range s.hooks.fns {
		fn()
	}
}

// notifyCoalesce is how long the notifier waits after a NOTIFY before the
// next: the commits of that window share one.
const notifyCoalesce = 5 * time.Millisecond

// notifyLoop sends NOTIFY ladle_outbox (payload: the schema) after commits
// that appended events, outside those transactions: NOTIFY takes a
// database-wide lock at commit, and inside every order's transaction (the
// trigger of migration 0002, dropped in 0006) it serialized all of them.
// Here there is at most one per notifyCoalesce, and an order's commit never
// waits for it. A failed NOTIFY is not retried: listeners also poll.
func (s *Store) notifyLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case <-s.notifyKick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if _, err := s.write.ExecContext(ctx, `SELECT pg_notify('ladle_outbox', current_schema())`); err != nil {
			s.log.Debug("outbox notify", "err", err)
		}
		cancel()
		select {
		case <-stop:
			return
		case <-time.After(notifyCoalesce):
		}
	}
}

// startNotifier starts notifyLoop; the returned func stops it.
func (s *Store) startNotifier() func() {
	s.notifyKick = make(chan struct{}, 1)
	stop, done := make(chan struct{}), make(chan struct{})
	go s.notifyLoop(stop, done)
	return func() { close(stop); <-done }
}

// ErrNoListen is returned by ListenEvents on SQLite, which has no
// cross-process notifications (and one writer process).
var ErrNoListen = errors.New("sqlstore: LISTEN/NOTIFY needs PostgreSQL")

// ListenEvents calls fn whenever any process commits events to this
// schema's outbox (PostgreSQL LISTEN on the channel the stores' notifiers
// notify, notifyLoop), so a relay wakes on another process's commit.
// It holds one pooled connection, reconnects with backoff when it is lost
// (and calls fn then, since notifications may have been missed), and
// returns when ctx is done. On SQLite it returns ErrNoListen at once.
func (s *Store) ListenEvents(ctx context.Context, fn func()) error {
	if s.d != dialectPostgres {
		return ErrNoListen
	}
	backoff := 100 * time.Millisecond
	for {
		err := s.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("outbox listener lost its connection; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
		fn()
	}
}

func (s *Store) listenOnce(ctx context.Context, fn func()) error {
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("sqlstore: listen: unexpected driver connection %T", dc)
		}
		pc := c.Conn()
		var schema string
		if err := pc.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return err
		}
		if _, err := pc.Exec(ctx, `LISTEN ladle_outbox`); err != nil {
			return err
		}
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				if ctx.Err() != nil {
					// The connection may be mid-wait: don't hand it back
					// to the pool still listening.
					return driver.ErrBadConn
				}
				return err
			}
			if n.Payload == schema {
				fn()
			}
		}
	})
}
