package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
)

// Group commit on SQLite. SQLite has one writer, and with synchronous=FULL
// every commit waits for an fsync of the WAL: on its own that bounds
// writes to a few hundred commits a second, whatever the CPU. The group
// committer runs the write transactions of concurrent callers one after
// another inside one SQLite transaction, each under its own SAVEPOINT, and
// commits them with one fsync. To each caller it is its own transaction:
//
//   - it sees the effects of the ones before it in the group, as it would
//     have if they had committed just before (they run in order, one at a
//     time: serial execution);
//   - if it fails (or panics) its savepoint is rolled back and released,
//     and the others are unaffected;
//   - it returns only after the group's COMMIT is durable; if the COMMIT
//     fails, every member gets the error and none of their changes exist.
//
// A caller whose context ends while it is still queued is dropped; once it
// has started it waits for the group, as its function's effects are
// already part of it. Nothing waits for a group to fill: the committer
// takes whatever is queued when the previous group is done (at most
// maxGroup), so a lone writer commits at once.
type groupCommitter struct {
	s *Store
	// commits and members count the groups committed and the transactions
	// in them (GroupCommitStats).
	commits, members atomic.Int64
	jobs             chan *gcJob
	stop             chan struct{}
	done             chan struct{}
}

// maxGroup bounds the transactions committed together; gcQueue bounds the
// callers waiting for the committer.
const (
	maxGroup = 64
	gcQueue  = 1024
)

// Job states.
const (
	jobQueued int32 = iota
	jobRunning
	jobDropped
)

type gcJob struct {
	ctx      context.Context
	fn       func(tx *Tx) error
	state    atomic.Int32
	err      error
	panicked any
	appended bool
	done     chan struct{}
}

func (s *Store) startGroupCommit() {
	g := &groupCommitter{s: s, jobs: make(chan *gcJob, gcQueue), stop: make(chan struct{}), done: make(chan struct{})}
	s.group = g
	go g.loop()
}

func (g *groupCommitter) close() {
	close(g.stop)
	<-g.done
}

// errStoreClosed is returned to writers queued when the store closes.
var errStoreClosed = errors.New("sqlstore: store closed")

// run submits fn and waits for its group.
func (g *groupCommitter) run(ctx context.Context, fn func(tx *Tx) error) error {
	j := &gcJob{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case g.jobs <- j:
	case <-ctx.Done():
		return unavailable(ctx.Err())
	case <-g.stop:
		return errStoreClosed
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobQueued, jobDropped) {
			return unavailable(ctx.Err())
		}
		<-j.done // started: its effects are in the group
	case <-g.done:
		// Closed after this job was queued: nobody will run it.
		if j.state.CompareAndSwap(jobQueued, jobDropped) {
			return errStoreClosed
		}
		<-j.done
	}
	if j.panicked != nil {
		panic(j.panicked)
	}
	if j.err == nil && j.appended {
		g.s.eventsCommitted()
	}
	return unavailable(j.err)
}

func (g *groupCommitter) loop() {
	defer close(g.done)
	group := make([]*gcJob, 0, maxGroup)
	for {
		group = group[:0]
		select {
		case j := <-g.jobs:
			group = append(group, j)
		case <-g.stop:
			g.drain()
			return
		}
	fill:
		for len(group) < maxGroup {
			select {
			case j := <-g.jobs:
				group = append(group, j)
			default:
				break fill
			}
		}
		g.commit(group)
	}
}

// drain fails the jobs still queued at close.
func (g *groupCommitter) drain() {
	for {
		select {
		case j := <-g.jobs:
			if j.state.CompareAndSwap(jobQueued, jobRunning) {
				j.err = errStoreClosed
			}
			close(j.done)
		default:
			return
		}
	}
}

// commit runs one group in one transaction.
func (g *groupCommitter) commit(group []*gcJob) {
	s := g.s
	finish := func(err error) {
		for _, j := range group {
			if j.state.Load() == jobRunning && j.err == nil && j.panicked == nil {
				j.err = err
			}
			close(j.done)
		}
	}
	// The group's own context: a member's ending must not roll the others
	// back (database/sql rolls a transaction back when its context ends).
	sqltx, err := s.write.BeginTx(context.Background(), nil)
	if err != nil {
		for _, j := range group {
			j.state.CompareAndSwap(jobQueued, jobRunning)
		}
		finish(fmt.Errorf("sqlstore: begin: %w", err))
		return
	}
	defer s.afterTx(s.write)
	defer sqltx.Rollback()
	q := s.querierFor(s.write, sqltx)
	ran := 0
	for _, j := range group {
		if !j.state.CompareAndSwap(jobQueued, jobRunning) {
			continue // dropped while queued
		}
		if err := j.ctx.Err(); err != nil {
			j.err = err
			continue
		}
		if err := g.runOne(sqltx, q, j); err != nil {
			// The savepoint itself failed: the transaction is unusable.
			j.err = err
			finish(err)
			return
		}
		if j.err == nil && j.panicked == nil {
			ran++
		}
	}
	if ran > 0 {
		if err := sqltx.Commit(); err != nil {
			finish(fmt.Errorf("sqlstore: commit: %w", err))
			return
		}
		g.commits.Add(1)
		g.members.Add(int64(ran))
	}
	finish(nil)
}

// runOne runs one member under its savepoint. Its own error or panic is
// recorded on j (and its savepoint rolled back); the returned error is the
// savepoint's.
func (g *groupCommitter) runOne(sqltx *sql.Tx, q querier, j *gcJob) error {
	ctx := context.Background()
	if _, err := sqltx.ExecContext(ctx, `SAVEPOINT gc`); err != nil {
		return err
	}
	// A started member runs to its end whatever its context does: SQLite
	// answers a context that ends mid-statement with sqlite3_interrupt,
	// which rolls back the whole transaction — the other members' work and
	// this savepoint with it. The member's deadline bounded its wait in the
	// queue; its statements on the one local writer are short.
	tx := &Tx{querier: uninterrupted{q}, d: g.s.d, now: g.s.now}
	func() {
		defer func() {
			if p := recover(); p != nil {
				j.panicked = p
			}
		}()
		j.err = j.fn(tx)
	}()
	if j.err != nil || j.panicked != nil {
		if _, err := sqltx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT gc`); err != nil {
			return err
		}
	} else {
		j.appended = tx.appended
	}
	_, err := sqltx.ExecContext(ctx, `RELEASE SAVEPOINT gc`)
	return err
}

// GroupCommitStats returns how many SQLite commits the store made through
// the group committer and how many write transactions they held (0, 0 on
// PostgreSQL), for benchmarks.
func (s *Store) GroupCommitStats() (commits, transactions int64) {
	if s.group == nil {
		return 0, 0
	}
	return s.group.commits.Load(), s.group.members.Load()
}

// uninterrupted runs a member's statements under a context that does not
// end with the member's (see runOne).
type uninterrupted struct{ q querier }

func (u uninterrupted) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return u.q.ExecContext(context.WithoutCancel(ctx), query, args...)
}

func (u uninterrupted) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return u.q.QueryContext(context.WithoutCancel(ctx), query, args...)
}

func (u uninterrupted) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return u.q.QueryRowContext(context.WithoutCancel(ctx), query, args...)
}
