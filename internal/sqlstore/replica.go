package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/readpos"
)

// WithReplica sends reads that tolerate replication lag to a PostgreSQL
// streaming replica (hot standby) at url: the menu and its version, the
// restaurant list and slug lookups, and order lists (the staff board and
// history). Everything else, and every write, stays on the primary.
//
// A read goes to the primary instead when:
//   - the request carries a write position (readpos.With: the client wrote
//     something) that the replica has not replayed yet: its own write is
//     never hidden from whoever made it;
//   - the replica is more than maxLag behind: it has not replayed what the
//     primary had written maxLag ago (measured every 500 ms);
//   - the replica is down or fails the read: the read is run again on the
//     primary at once (never a 500), and the replica is left alone until
//     the next check finds it answering;
//   - a lookup by key finds nothing on the replica (a row just created).
//
// maxLag ≤ 0 means 10 s. Ignored on SQLite.
func WithReplica(url string, maxLag time.Duration) Option {
	return func(o *options) { o.replicaURL, o.replicaMaxLag = url, maxLag }
}

// replicaTimeout bounds one read on the replica, so a replica that hangs
// costs a request this much before the primary answers it.
const replicaTimeout = 2 * time.Second

// replica is the read replica and what the store knows of its state.
type replica struct {
	db     *sql.DB
	maxLag time.Duration
	// replayed is the highest replay position seen on the replica.
	replayed atomic.Uint64
	down     atomic.Bool // failed since the last check
	lagging  atomic.Bool // more than maxLag behind at the last check
	// Reads answered by the replica and sent to the primary instead.
	served, fallbacks atomic.Int64

	mu      sync.Mutex
	samples []lsnSample // the primary's position over the last maxLag+
	stop    func()
}

type lsnSample struct {
	at  time.Time
	pos readpos.Pos
}

// ReplicaStats is what the store did with lag-tolerant reads.
type ReplicaStats struct {
	Configured        bool
	Down, Lagging     bool
	Replayed          readpos.Pos
	Served, Fallbacks int64
}

// ReplicaStats reports the replica's state and how reads were routed.
func (s *Store) ReplicaStats() ReplicaStats {
	r := s.replica
	if r == nil {
		return ReplicaStats{}
	}
	return ReplicaStats{Configured: true, Down: r.down.Load(), Lagging: r.lagging.Load(),
		Replayed: readpos.Pos(r.replayed.Load()), Served: r.served.Load(), Fallbacks: r.fallbacks.Load()}
}

func (s *Store) openReplica(url string, maxLag time.Duration, o options) error {
	if maxLag <= 0 {
		maxLag = 10 * time.Second
	}
	db, err := pgPool(url, o)
	if err != nil {
		return fmt.Errorf("sqlstore: open replica: %w", err)
	}
	r := &replica{db: db, maxLag: maxLag}
	// Until the first check has seen it, the replica is not trusted.
	r.down.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.stop = func() { cancel(); <-done }
	s.replica = r
	s.checkReplica(ctx)
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.checkReplica(ctx)
			}
		}
	}()
	return nil
}

// checkReplica samples the primary's WAL position and the replica's replay
// position, and decides whether the replica is up and within maxLag.
func (s *Store) checkReplica(ctx context.Context) {
	r := s.replica
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var p string
	if err := s.write.QueryRowContext(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&p); err == nil {
		if pos, err := readpos.Parse(p); err == nil {
			now := time.Now()
			r.mu.Lock()
			r.samples = append(r.samples, lsnSample{now, pos})
			// Keep one sample older than maxLag: the one that decides.
			for len(r.samples) > 1 && now.Sub(r.samples[1].at) > r.maxLag {
				r.samples = r.samples[1:]
			}
			r.mu.Unlock()
		}
	}
	replayed, err := r.replayPos(ctx)
	if err != nil {
		if !r.down.Swap(true) {
			s.log.Warn("read replica unavailable: reads go to the primary", "err", err)
		}
		return
	}
	if r.down.Swap(false) {
		s.log.Info("read replica available")
	}
	r.mu.Lock()
	lagging := false
	for _, smp := range r.samples {
		if smp.pos > replayed {
			// The oldest primary position not replayed yet: how far behind.
			lagging = time.Since(smp.at) > r.maxLag
			break
		}
	}
	r.mu.Unlock()
	if r.lagging.Swap(lagging) != lagging {
		s.log.Info("read replica lag", "behind_more_than", r.maxLag.String(), "lagging", lagging)
	}
}

// replayPos reads the replica's replay position and remembers it. A server
// that is not in recovery (promoted, or not a replica at all) is an error:
// its positions say nothing about the primary's.
func (r *replica) replayPos(ctx context.Context) (readpos.Pos, error) {
	var rec bool
	var lsn sql.NullString
	if err := r.db.QueryRowContext(ctx, `SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text`).Scan(&rec, &lsn); err != nil {
		return 0, err
	}
	if !rec || !lsn.Valid {
		return 0, errors.New("sqlstore: the replica is not in recovery")
	}
	p, err := readpos.Parse(lsn.String)
	if err != nil {
		return 0, err
	}
	for {
		old := r.replayed.Load()
		if uint64(p) <= old || r.replayed.CompareAndSwap(old, uint64(p)) {
			break
		}
	}
	return p, nil
}

// usable reports whether a read under ctx may go to the replica.
func (r *replica) usable(ctx context.Context) bool {
	if r.down.Load() || r.lagging.Load() {
		return false
	}
	want := readpos.From(ctx)
	if want == 0 || readpos.Pos(r.replayed.Load()) >= want {
		return true
	}
	// The client wrote after the replica was last seen: ask it now.
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	got, err := r.replayPos(cctx)
	return err == nil && got >= want
}

// lagRead runs fn, a read that tolerates replication lag, on the replica
// when it is fit for ctx (see WithReplica), else on the read pool; a replica
// that fails is replaced by the primary for this read. fn gets the pool to
// use and must not keep it.
func (s *Store) lagRead(ctx context.Context, fn func(ctx context.Context, db *sql.DB) error) error {
	r := s.replica
	if r == nil || !r.usable(ctx) {
		if r != nil {
			r.fallbacks.Add(1)
		}
		return fn(ctx, s.read)
	}
	rctx, cancel := context.WithTimeout(ctx, replicaTimeout)
	err := fn(rctx, r.db)
	cancel()
	switch {
	case err == nil:
		r.served.Add(1)
		return nil
	case ctx.Err() != nil:
		return unavailable(err) // the caller's own deadline: no second try
	case ladle.ErrorKind(err) == ladle.KindNotFound:
		// Possibly created after the replica's snapshot.
	case ladle.ErrorKind(err) == ladle.KindInvalid:
		return err
	default:
		if !r.down.Swap(true) {
			s.log.Warn("read replica failed a read: reads go to the primary", "err", err)
		}
	}
	r.fallbacks.Add(1)
	return fn(ctx, s.read)
}

// lagTx is readTx for reads that tolerate replication lag (lagRead); fn
// must use the ctx it gets (on the replica it carries replicaTimeout).
func (s *Store) lagTx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	return s.lagRead(ctx, func(ctx context.Context, db *sql.DB) error {
		return s.readTxOn(ctx, db, func(tx *Tx) error { return fn(ctx, tx) })
	})
}

// lag1 is read1 for reads that tolerate replication lag (lagRead).
func (s *Store) lag1(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	return s.lagRead(ctx, func(ctx context.Context, db *sql.DB) error {
		return unavailable(fn(ctx, &Tx{querier: s.querierFor(db, nil), d: s.d, now: s.now}))
	})
}

// notePosition records the primary's WAL position after a write made for
// a request that asked for it (readpos.Record), when reads can go to a
// replica. conn is the connection the write committed on.
func (s *Store) notePosition(ctx context.Context, conn *sql.Conn) {
	rec := readpos.RecorderFrom(ctx)
	if rec == nil || s.replica == nil {
		return
	}
	var p string
	// The insert position is at or past the end of the commit record,
	// whatever synchronous_commit says.
	if err := conn.QueryRowContext(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&p); err != nil {
		// Without it the client's next reads may miss its own write on a
		// replica that lags (by less than maxLag).
		s.log.Warn("could not read the primary's WAL position after a write", "err", err)
		return
	}
	if pos, err := readpos.Parse(p); err == nil {
		rec.Note(pos)
	}
}
