package sqlstore

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/priority"
)

// lazyRig runs named write transactions on a SQLite store and records the
// synchronous setting each ran with (1 NORMAL: its commit skips the fsync;
// 2 FULL) and the order they ran in.
type lazyRig struct {
	t     *testing.T
	s     *Store
	mu    sync.Mutex
	order []string
	modes map[string]int
}

func newLazyRig(t *testing.T, opts ...Option) *lazyRig {
	return &lazyRig{t: t, s: openTest(t, "sqlite:"+filepath.Join(t.TempDir(), "ladle.db"), opts...), modes: map[string]int{}}
}

func (r *lazyRig) write(ctx context.Context, name string, during func()) error {
	return r.s.withTx(ctx, func(tx *Tx) error {
		// SQLite reads the setting when it prepares the pragma, and the
		// store caches prepared statements: a statement text per name.
		var mode int
		if err := tx.QueryRowContext(ctx, `PRAGMA synchronous /* `+name+` */`).Scan(&mode); err != nil {
			return err
		}
		r.mu.Lock()
		r.order = append(r.order, name)
		r.modes[name] = mode
		r.mu.Unlock()
		if during != nil {
			during()
		}
		return insertRestaurant(ctx, tx, name)
	})
}

func (r *lazyRig) mustWrite(ctx context.Context, name string) int {
	r.t.Helper()
	if err := r.write(ctx, name, nil); err != nil {
		r.t.Fatal(err)
	}
	return r.modes[name]
}

func (r *lazyRig) syncs() int64 {
	_, n := r.s.DurableStats()
	return n
}

func (r *lazyRig) durable() {
	r.t.Helper()
	if err := r.s.Durable(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// Lazy transactions commit without an fsync, others with one as before;
// Durable fsyncs the WAL once for what is not yet durable, and not at all
// when a FULL commit since has covered it.
func TestLazyCommit(t *testing.T) {
	r := newLazyRig(t)
	ctx := context.Background()
	lazy := priority.WithBulk(ladle.WithLazyCommit(ctx))
	if m := r.mustWrite(lazy, "l1"); m != 1 {
		t.Fatalf("a lazy transaction ran with synchronous=%d, want 1 (NORMAL)", m)
	}
	if m := r.mustWrite(ctx, "o1"); m != 2 {
		t.Fatalf("an ordinary transaction after a lazy one ran with synchronous=%d, want 2 (FULL)", m)
	}
	// o1's fsync covered l1.
	r.durable()
	if n := r.syncs(); n != 0 {
		t.Fatalf("Durable fsynced %d times after a FULL commit, want 0", n)
	}
	r.mustWrite(lazy, "l2")
	// Concurrent callers share one fsync.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(r.durable)
	}
	wg.Wait()
	if n := r.syncs(); n != 1 {
		t.Fatalf("8 concurrent Durable calls after one lazy commit made %d fsyncs, want 1", n)
	}
	r.durable()
	if n := r.syncs(); n != 1 {
		t.Fatalf("Durable with nothing new made another fsync (%d)", n)
	}
	if lazyCommits, _ := r.s.DurableStats(); lazyCommits != 2 {
		t.Fatalf("%d lazy commits, want 2", lazyCommits)
	}
	// Outside the group committer the write connection is in FULL.
	var mode int
	if err := r.s.write.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&mode); err != nil || mode != 2 {
		t.Fatalf("write connection at synchronous=%d (%v) between groups, want 2", mode, err)
	}
	// A canceled wait is unavailable, not a hang.
	r.mustWrite(lazy, "l3")
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	r.s.dur.mu.Lock()
	r.s.dur.syncing = true // another caller's fsync in progress
	r.s.dur.mu.Unlock()
	if err := r.s.Durable(canceled); ladle.ErrorKind(err) != ladle.KindUnavailable {
		t.Fatalf("Durable with a canceled context waiting for a sync: %v, want unavailable", err)
	}
	r.s.dur.mu.Lock()
	r.s.dur.syncing = false
	r.s.dur.mu.Unlock()
	r.durable()
	// A lazy transaction that appends events is durable when it returns:
	// the relay publishes them at once.
	_, before := r.s.DurableStats()
	if err := r.s.withTx(lazy, func(tx *Tx) error {
		var id int64
		if err := tx.QueryRowContext(lazy, `INSERT INTO restaurants (slug, name, currency, tax_rate_bp, time_zone, phone, address, created_at)
			VALUES ('ev', 'R', 'USD', 0, 'UTC', '', '', $1) RETURNING id`, time.Now()).Scan(&id); err != nil {
			return err
		}
		_, err := appendEvent(lazy, tx, ladle.EventCampaignWork, id, "c1", ladle.CampaignStart{Kind: "fanout", Restaurant: id, Campaign: "c1"}, time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, after := r.s.DurableStats(); after != before+1 {
		t.Fatalf("a lazy transaction that appended events returned after %d fsyncs, want 1", after-before)
	}
}

// A group of lazy transactions is cut short when other work queues, which
// then runs in a group that commits with an fsync; lazy members joining
// other work's group commit with it, durably.
func TestLazyGroupCutForOtherWork(t *testing.T) {
	r := newLazyRig(t)
	ctx := context.Background()
	lazy := priority.WithBulk(ladle.WithLazyCommit(ctx))
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	release, started := make(chan struct{}), make(chan struct{})
	wg.Go(func() { errs <- r.write(ctx, "gate", func() { close(started); <-release }) })
	<-started
	c0, _ := r.s.GroupCommitStats()
	cuts0 := r.s.GroupCommitCuts()
	// Three lazy writers queue behind the gate and make the next group;
	// the first of them queues an ordinary writer while it runs.
	for i, name := range []string{"l0", "l1", "l2"} {
		var during func()
		if i == 0 {
			during = func() {
				wg.Go(func() { errs <- r.write(ctx, "op", nil) })
				waitQueued(t, r.s.group.jobs, 1)
			}
		}
		wg.Go(func() { errs <- r.write(lazy, name, during) })
		waitQueued(t, r.s.group.bulk, i+1)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"gate", "l0", "op", "l1", "l2"}; !slices.Equal(r.order, want) {
		t.Fatalf("ran in order %v, want %v", r.order, want)
	}
	want := map[string]int{"gate": 2, "l0": 1, "op": 2, "l1": 2, "l2": 2}
	for name, m := range want {
		if r.modes[name] != m {
			t.Errorf("%s ran with synchronous=%d, want %d", name, r.modes[name], m)
		}
	}
	// {gate}, {l0} cut short, {op l1 l2}.
	if c1, _ := r.s.GroupCommitStats(); c1-c0 != 3 || r.s.GroupCommitCuts()-cuts0 != 1 {
		t.Fatalf("%d commits, %d cut short; want 3, 1", c1-c0, r.s.GroupCommitCuts()-cuts0)
	}
	if lazyCommits, _ := r.s.DurableStats(); lazyCommits != 1 {
		t.Fatalf("%d lazy commits, want 1 ({l0})", lazyCommits)
	}
	r.durable()
	if n := r.syncs(); n != 0 {
		t.Fatalf("Durable fsynced %d times after a FULL commit covered the lazy one, want 0", n)
	}
}

// With synchronous=NORMAL chosen for the whole store no commit fsyncs, and
// Durable does, for everything.
func TestDurableWithSynchronousNormal(t *testing.T) {
	r := newLazyRig(t, WithSQLiteSynchronousNormal())
	ctx := context.Background()
	if m := r.mustWrite(ctx, "o1"); m != 1 {
		t.Fatalf("synchronous=%d, want 1 (NORMAL, as chosen)", m)
	}
	if m := r.mustWrite(priority.WithBulk(ladle.WithLazyCommit(ctx)), "l1"); m != 1 {
		t.Fatalf("synchronous=%d, want 1", m)
	}
	r.durable()
	if n := r.syncs(); n != 1 {
		t.Fatalf("Durable made %d fsyncs, want 1", n)
	}
}
