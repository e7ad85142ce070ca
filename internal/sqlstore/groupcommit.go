package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/priority"
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
//   - it returns only after the group's COMMIT is durable (a lazy one's
//     only after it committed: durable.go); if the COMMIT fails, every
//     member gets the error and none of their changes exist.
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
	// cuts counts groups committed early for other work (GroupCommitStats).
	cuts atomic.Int64
	// jobs and bulk are the two queues: bulk holds the transactions of
	// bulk work (priority.WithBulk: campaign sends), jobs everything else.
	jobs, bulk chan *gcJob
	stop       chan struct{}
	done       chan struct{}
	// syncNormal: the store runs with synchronous=NORMAL throughout
	// (WithSQLiteSynchronousNormal), so there is nothing to relax.
	// unsynced: the write connection may be in NORMAL (a lazy group runs,
	// or putting FULL back after one failed): a group that needs FULL sets
	// it first.
	syncNormal, unsynced bool
}

// Bulk work (priority.WithBulk) waits behind the rest: a group takes the
// queued transactions of other work first and bulk ones after them, and
// when other work is queued while the group runs its bulk members, the
// newcomers run right after the member in progress, in the same group,
// which then commits (at least one bulk member runs per group, so bulk
// work is slowed, never starved); the bulk members it did not start go
// first in the next bulk part. So an order's or a receipt's write waits
// for at most one bulk transaction, not for a queue of a campaign's, and
// for one commit, its own.
//
// maxGroup bounds the transactions committed together; gcQueue bounds the
// callers waiting for the committer (in each queue).
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
	lazy     bool // ladle.WithLazyCommit (durable.go)
	done     chan struct{}
}

func (s *Store) startGroupCommit(syncNormal bool) {
	g := &groupCommitter{s: s, jobs: make(chan *gcJob, gcQueue), bulk: make(chan *gcJob, gcQueue),
		stop: make(chan struct{}), done: make(chan struct{}), syncNormal: syncNormal}
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
	j := &gcJob{ctx: ctx, fn: fn, lazy: ladle.IsLazyCommit(ctx), done: make(chan struct{})}
	queue := g.jobs
	if priority.IsBulk(ctx) {
		queue = g.bulk
	}
	select {
	case queue <- j:
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
	var carried []*gcJob // bulk members the last group left unstarted
	for {
		group = group[:0]
		if len(carried) == 0 {
			select {
			case j := <-g.jobs:
				group = append(group, j)
			case j := <-g.bulk:
				carried = append(carried, j)
			case <-g.stop:
				g.drain(nil)
				return
			}
		} else {
			select {
			case <-g.stop:
				g.drain(carried)
				return
			default:
			}
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
		firstBulk := len(group)
		n := min(len(carried), maxGroup-len(group))
		group = append(group, carried[:n]...)
		carried = carried[n:]
	fillBulk:
		for len(carried) == 0 && len(group) < maxGroup {
			select {
			case j := <-g.bulk:
				group = append(group, j)
			default:
				break fillBulk
			}
		}
		left := g.commit(group, firstBulk)
		if len(left) > 0 {
			// A copy: left is part of group, whose array the next
			// group reuses.
			carried = append(slices.Clone(left), carried...)
		}
	}
}

// drain fails the jobs still queued at close (and carried, not started).
func (g *groupCommitter) drain(carried []*gcJob) {
	fail := func(j *gcJob) {
		if j.state.CompareAndSwap(jobQueued, jobRunning) {
			j.err = errStoreClosed
		}
		close(j.done)
	}
	for _, j := range carried {
		fail(j)
	}
	for {
		select {
		case j := <-g.jobs:
			fail(j)
		case j := <-g.bulk:
			fail(j)
		default:
			return
		}
	}
}

// commit runs one group in one transaction: group[firstBulk:] are bulk
// members. It returns the bulk members it left unstarted, because other
// work was queued meanwhile; they are still queued (their callers wait).
// A group of lazy members only commits without an fsync (durable.go).
func (g *groupCommitter) commit(group []*gcJob, firstBulk int) (left []*gcJob) {
	s := g.s
	lazy := !g.syncNormal
	for _, j := range group {
		lazy = lazy && j.lazy
	}
	var sqltx *sql.Tx
	finish := func(members []*gcJob, err error) {
		// The transaction is over (rolled back unless it committed) and
		// synchronous back to FULL before any caller returns: a caller
		// may write outside the group committer at once.
		if sqltx != nil {
			_ = sqltx.Rollback()
		}
		if lazy {
			if err := g.setSync(false); err != nil {
				s.log.Error("sqlstore: restoring synchronous=FULL after a lazy group failed; the next group retries", "err", err)
			}
		}
		for _, j := range members {
			if j.state.Load() == jobRunning && j.err == nil && j.panicked == nil {
				j.err = err
			}
			close(j.done)
		}
	}
	failAll := func(err error) {
		for _, j := range group {
			j.state.CompareAndSwap(jobQueued, jobRunning)
		}
		finish(group, err)
	}
	if lazy && g.setSync(true) != nil {
		lazy = false // commit with an fsync, as usual
	}
	if !lazy {
		if err := g.setSync(false); err != nil {
			failAll(fmt.Errorf("sqlstore: synchronous=FULL: %w", err))
			return nil
		}
	}
	// The group's own context: a member's ending must not roll the others
	// back (database/sql rolls a transaction back when its context ends).
	var err error
	if sqltx, err = s.write.BeginTx(context.Background(), nil); err != nil {
		sqltx = nil
		failAll(fmt.Errorf("sqlstore: begin: %w", err))
		return nil
	}
	defer s.afterTx(s.write)
	defer sqltx.Rollback()
	q := s.querierFor(s.write, sqltx)
	ran := 0
	for i := 0; i < len(group); i++ {
		if i > firstBulk && len(g.jobs) > 0 && lazy {
			// Other work is waiting, and this group commits without the
			// fsync theirs needs: commit it (quick, with no fsync) and let
			// them run first in the next group.
			left = slices.Clone(group[i:])
			group = group[:i]
			g.cuts.Add(1)
			break
		}
		if i > firstBulk && len(g.jobs) > 0 {
			// Other work is waiting: it runs next, in this group, and the
			// group commits after it; the rest of the bulk part goes in a
			// later group. (Committing first and running the newcomers in
			// the next group made each wait for two commits, two fsyncs,
			// instead of one.) left is a copy: the newcomers are appended
			// over it. The group holds no bulk member after them.
			left = slices.Clone(group[i:])
			group = group[:i]
			for len(group) < maxGroup && len(g.jobs) > 0 {
				group = append(group, <-g.jobs)
			}
			firstBulk = len(group)
			g.cuts.Add(1)
		}
		j := group[i]
		if !j.state.CompareAndSwap(jobQueued, jobRunning) {
			continue // dropped while queued
		}
		if err := j.ctx.Err(); err != nil {
			j.err = err
			continue
		}
		if err := g.runOne(sqltx, q, j); err != nil {
			// The savepoint itself failed: the transaction is unusable.
			// The members not started stay queued for the next group.
			j.err = err
			if i+1 < len(group) {
				left = append(slices.Clone(group[i+1:]), left...)
				group = group[:i+1]
			}
			finish(group, err)
			return left
		}
		if j.err == nil && j.panicked == nil {
			ran++
		}
	}
	if ran > 0 {
		if err := sqltx.Commit(); err != nil {
			finish(group, fmt.Errorf("sqlstore: commit: %w", err))
			return left
		}
		g.commits.Add(1)
		g.members.Add(int64(ran))
		s.ckpt.written()
		if lazy || g.syncNormal {
			s.dur.lazyCommitted() // not on disk yet: Durable syncs it
		} else {
			s.dur.fullCommitted()
		}
		if lazy && slices.ContainsFunc(group, func(j *gcJob) bool { return j.appended }) {
			// The relay publishes a member's events once it returns: an
			// event must not outlive its transaction in a power loss.
			if err := s.dur.wait(context.Background()); err != nil {
				s.log.Error("sqlstore: syncing a lazy group's events failed", "err", err)
			}
		}
	}
	finish(group, nil)
	return left
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

// GroupCommitCuts returns how many groups committed early because other
// work was queued behind their bulk members (0 on PostgreSQL).
func (s *Store) GroupCommitCuts() int64 {
	if s.group == nil {
		return 0
	}
	return s.group.cuts.Load()
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

// setSync sets the write connection's synchronous to NORMAL for a lazy
// group (relaxed) and back to FULL after it; outside a transaction, as
// SQLite allows. A new connection starts in FULL (the DSN's), so a lost
// connection can only make a lazy group durable, never the reverse.
func (g *groupCommitter) setSync(relaxed bool) error {
	if g.syncNormal || (!relaxed && !g.unsynced) {
		return nil
	}
	mode := "FULL"
	if relaxed {
		mode = "NORMAL"
	}
	// Marked first: if setting NORMAL fails halfway, FULL is set again
	// before the next group that needs it.
	g.unsynced = true
	if _, err := g.s.write.ExecContext(context.Background(), "PRAGMA synchronous = "+mode); err != nil {
		return err
	}
	g.unsynced = relaxed
	return nil
}
