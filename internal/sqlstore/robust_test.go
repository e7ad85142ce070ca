package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/priority"
	"github.com/ladle-dev/ladle/internal/testenv"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func openTest(t *testing.T, url string, opts ...Option) *Store {
	t.Helper()
	opts = append([]Option{WithLogger(quietLog), WithMaxConns(4)}, opts...)
	s, err := Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// insertRestaurant inserts a bare restaurant: the write the group
// committer's tests make.
func insertRestaurant(ctx context.Context, tx *Tx, slug string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO restaurants (slug, name, currency, tax_rate_bp, time_zone, phone, address, created_at)
		VALUES ($1, 'R', 'USD', 0, 'UTC', '', '', $2)`, slug, time.Now())
	return err
}

// waitQueued waits until n writers are queued in q (a group committer's
// queue), for at most 10 s.
func waitQueued(t *testing.T, q chan *gcJob, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(q) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writers queued, want %d", len(q), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func bothStores(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, openTest(t, "sqlite:"+filepath.Join(t.TempDir(), "ladle.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, openTest(t, testenv.PostgresSchema(t)))
	})
}

// TestWithTxPanicRollsBack: a panic inside a transaction (recovered up the
// stack, as the HTTP server does) rolls it back and frees its connection:
// on SQLite, the only write connection.
func TestWithTxPanicRollsBack(t *testing.T) {
	bothStores(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		r := &ladle.Restaurant{Slug: "panic", Name: "Panic", Currency: "USD", TimeZone: "UTC"}
		if err := s.CreateRestaurant(ctx, r); err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			_ = s.withTx(ctx, func(tx *Tx) error {
				if _, err := tx.ExecContext(ctx, `UPDATE restaurants SET name = 'half-written' WHERE id = $1`, r.ID); err != nil {
					return err
				}
				panic("bug in a transaction")
			})
		}()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := s.withTx(wctx, func(tx *Tx) error {
			_, err := tx.ExecContext(wctx, `UPDATE restaurants SET phone = '1' WHERE id = $1`, r.ID)
			return err
		})
		if err != nil {
			t.Fatalf("write after a panicked transaction: %v", err)
		}
		got, err := s.RestaurantByID(ctx, r.ID)
		if err != nil || got.Name != "Panic" {
			t.Fatalf("after the panic: %+v, %v (want the half-written change rolled back)", got, err)
		}
	})
}

// proxy is a TCP proxy to PostgreSQL that the test can cut (refuse and
// drop every connection) and restore.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			cut := p.cut
			p.mu.Unlock()
			if cut {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestDatabaseCutIsUnavailable: with PostgreSQL cut off, reads and writes
// fail fast with ladle.Unavailable (503 + Retry-After), not an internal
// error, and work again when it is back, without reopening the store.
func TestDatabaseCutIsUnavailable(t *testing.T) {
	base, err := url.Parse(testenv.PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, base.Host)
	base.Host = p.ln.Addr().String()
	s := openTest(t, base.String())
	ctx := context.Background()
	r := &ladle.Restaurant{Slug: "cut", Name: "Cut", Currency: "USD", TimeZone: "UTC"}
	if err := s.CreateRestaurant(ctx, r); err != nil {
		t.Fatal(err)
	}

	p.setCut(true)
	ops := map[string]func(ctx context.Context) error{
		"write": func(ctx context.Context) error {
			_, _, err := s.ClaimIdempotencyKey(ctx, ladle.KeyClaim{RestaurantID: r.ID, Key: "k", RequestHash: "h", Now: time.Now(), StaleAfter: time.Minute})
			return err
		},
		"read tx": func(ctx context.Context) error { _, err := s.Order(ctx, "nope"); return err },
		"read":    func(ctx context.Context) error { _, err := s.IdempotencyKey(ctx, r.ID, "k"); return err },
	}
	for name, op := range ops {
		for range 2 { // the first may meet a pooled connection that just died
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			start := time.Now()
			err := op(ctx)
			cancel()
			if ladle.ErrorKind(err) != ladle.KindUnavailable || ladle.RetryAfter(err) < 1 {
				t.Fatalf("%s with the database cut: %v (kind %v), want unavailable with retry_after", name, err, ladle.ErrorKind(err))
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Fatalf("%s took %v to fail", name, d)
			}
		}
	}

	p.setCut(false)
	if err := ops["write"](ctx); err != nil {
		t.Fatalf("after the database came back: %v", err)
	}
}

// TestSQLiteBusyIsUnavailable: another process holding SQLite's write lock
// past the busy timeout is a 503, not a 500.
func TestSQLiteBusyIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ladle.db")
	s := openTest(t, "sqlite:"+path, WithBusyTimeout(50*time.Millisecond))
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), `ROLLBACK`)
	err = s.CreateRestaurant(context.Background(), &ladle.Restaurant{Slug: "busy", Name: "Busy", Currency: "USD", TimeZone: "UTC"})
	if ladle.ErrorKind(err) != ladle.KindUnavailable {
		t.Fatalf("write while another process holds the lock: %v, want unavailable", err)
	}
}

func TestUnavailableClassifies(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{&pgconn.PgError{Code: "57P01"}, true}, // admin shutdown
		{&pgconn.PgError{Code: "53300"}, true}, // too many connections
		{&pgconn.PgError{Code: "08006"}, true}, // connection failure
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "42601"}, false}, // a syntax error is a bug
		{errors.New("boom"), false},
		{ladle.NotFound("x"), false},
	} {
		got := ladle.ErrorKind(unavailable(tc.err)) == ladle.KindUnavailable
		if got != tc.want {
			t.Errorf("unavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if ladle.ErrorCode(unavailable(ladle.NotFound("x"))) != ladle.CodeNotFound {
		t.Error("a classified error was re-classified")
	}
}

// TestBlackholedDatabaseFailsFast: a server that accepts TCP connections
// and never answers (a blackholed database) fails a connection after
// DefaultConnectTimeout even when the caller set no deadline, as
// unavailable.
func TestBlackholedDatabaseFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	start := time.Now()
	_, err = Open(context.Background(), "postgres://postgres@"+ln.Addr().String()+"/test?sslmode=disable", WithLogger(quietLog))
	if ladle.ErrorKind(err) != ladle.KindUnavailable {
		t.Fatalf("open against a blackhole: %v, want unavailable", err)
	}
	if d := time.Since(start); d > DefaultConnectTimeout+2*time.Second {
		t.Fatalf("took %v, want about DefaultConnectTimeout (%v)", d, DefaultConnectTimeout)
	}
}

// TestGroupCommit: SQLite writers queued behind a running transaction
// commit together in one group, and within it a failing or panicking
// member is rolled back alone.
func TestGroupCommit(t *testing.T) {
	s := openTest(t, "sqlite:"+filepath.Join(t.TempDir(), "ladle.db"))
	ctx := context.Background()
	release, started := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- s.withTx(ctx, func(tx *Tx) error {
			close(started)
			<-release
			return insertRestaurant(ctx, tx, "first")
		})
	}()
	<-started
	c0, m0 := s.GroupCommitStats()

	const n = 12
	errs := make([]error, n)
	panics := make([]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			errs[i] = s.withTx(ctx, func(tx *Tx) error {
				if err := insertRestaurant(ctx, tx, "r-"+strconv.Itoa(i)); err != nil {
					return err
				}
				switch i {
				case 3:
					return errors.New("member 3 fails after writing")
				case 7:
					panic("member 7 panics after writing")
				}
				return nil
			})
		})
	}
	// Let them all queue behind the first.
	for deadline := time.Now().Add(30 * time.Second); len(s.group.jobs) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writers queued", len(s.group.jobs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	for i := range n {
		switch i {
		case 3:
			if errs[i] == nil {
				t.Error("member 3's error was lost")
			}
		case 7:
			if panics[i] == nil {
				t.Error("member 7's panic did not reach its caller")
			}
		default:
			if errs[i] != nil || panics[i] != nil {
				t.Errorf("member %d: %v %v", i, errs[i], panics[i])
			}
		}
	}
	var count int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM restaurants`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != 1+n-2 {
		t.Fatalf("%d restaurants, want %d (the failing and the panicking member rolled back alone)", count, 1+n-2)
	}
	c1, m1 := s.GroupCommitStats()
	if c1-c0 != 2 || m1-m0 != 1+n-2 {
		t.Fatalf("%d commits for %d transactions, want 2 for %d", c1-c0, m1-m0, 1+n-2)
	}
}

// TestGroupCommitServesOtherWorkBeforeBulk: on the one SQLite writer, the
// transactions of bulk work (a campaign's) wait behind an order's or a
// receipt's: queued ones go after the others, and a group running bulk
// members commits early when other work is queued meanwhile, leaving its
// unstarted bulk members, in their order, for the next group — after the
// newly queued work. Every member still runs exactly once.
func TestGroupCommitServesOtherWorkBeforeBulk(t *testing.T) {
	s := openTest(t, "sqlite:"+filepath.Join(t.TempDir(), "ladle.db"))
	ctx := context.Background()
	bulk := priority.WithBulk(ctx)
	var mu sync.Mutex
	var order []string
	ran := func(name string) {
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
	}
	write := func(ctx context.Context, name string, during func()) error {
		return s.withTx(ctx, func(tx *Tx) error {
			ran(name)
			if during != nil {
				during()
			}
			return insertRestaurant(ctx, tx, name)
		})
	}
	release, started := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	wg.Go(func() { errs <- write(ctx, "first", func() { close(started); <-release }) })
	<-started
	c0, m0 := s.GroupCommitStats()
	cuts0 := s.GroupCommitCuts()
	// Six bulk writers queue behind the first, the first of them queueing
	// one more ordinary writer while it runs; then two ordinary writers.
	n2Committed := false
	for i := range 6 {
		var during func()
		switch i {
		case 0:
			during = func() {
				wg.Go(func() { errs <- write(ctx, "n2", nil) })
				waitQueued(t, s.group.jobs, 1)
			}
		case 1:
			// n2 ran in b0's group, which committed before b1's began:
			// n2 waited for one commit, not for the next group's too.
			during = func() {
				var n int
				if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM restaurants WHERE slug = 'n2'`).Scan(&n); err != nil {
					errs <- err
				}
				n2Committed = n == 1
			}
		}
		wg.Go(func() { errs <- write(bulk, "b"+strconv.Itoa(i), during) })
		waitQueued(t, s.group.bulk, i+1) // in order
	}
	for i := range 2 {
		wg.Go(func() { errs <- write(ctx, "n"+strconv.Itoa(i), nil) })
		waitQueued(t, s.group.jobs, i+1)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"first", "n0", "n1", "b0", "n2", "b1", "b2", "b3", "b4", "b5"}
	if !slices.Equal(order, want) {
		t.Fatalf("ran in order %v, want %v", order, want)
	}
	var count int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM restaurants`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != len(want) {
		t.Fatalf("%d restaurants, want %d", count, len(want))
	}
	if !n2Committed {
		t.Error("n2 was not committed when b1 ran: it waited for the group after b0's")
	}
	// {first}, {n0 n1 b0 n2} cut short (n2 joins after b0), {b1…b5}.
	c1, m1 := s.GroupCommitStats()
	if c1-c0 != 3 || m1-m0 != int64(len(want)) || s.GroupCommitCuts()-cuts0 != 1 {
		t.Fatalf("%d commits of %d transactions, %d cut short; want 3 of %d, 1 cut short", c1-c0, m1-m0, s.GroupCommitCuts()-cuts0, len(want))
	}
}

// TestCheckpointsOffTheWritePath: the one SQLite writer never checkpoints
// the WAL (a checkpoint inside a COMMIT stalls every write queued behind
// it); the checkpointer copies what the commits wrote into the database
// file soon after, on its own connection.
func TestCheckpointsOffTheWritePath(t *testing.T) {
	s := openTest(t, "sqlite:"+filepath.Join(t.TempDir(), "ladle.db"))
	ctx := context.Background()
	var auto int
	if err := s.write.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("the writer's wal_autocheckpoint is %d (%v), want 0", auto, err)
	}
	_, f0 := s.CheckpointStats()
	const n = 200
	for i := range n {
		if err := s.withTx(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO restaurants (slug, name, currency, tax_rate_bp, time_zone, phone, address, created_at)
				VALUES ($1, 'R', 'USD', 0, 'UTC', '', $2, $3)`, "w-"+strconv.Itoa(i), strings.Repeat("x", 2000), time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Each commit wrote at least one page: the checkpointer copies at
	// least n frames.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, f := s.CheckpointStats(); f-f0 >= n {
			break
		}
		if time.Now().After(deadline) {
			c, f := s.CheckpointStats()
			t.Fatalf("after %d commits the checkpointer made %d checkpoints of %d frames, want at least %d frames", n, c, f-f0, n)
		}
	}
}

// A member whose context ends while its statement runs must not take the
// group down: SQLite interrupts such a statement by rolling back the whole
// transaction, which lost every member's work and answered the others
// "no such savepoint" (a 500 under overload, when deadlines expire).
func TestGroupCommitMemberDeadlineMidStatement(t *testing.T) {
	s := openTest(t, "sqlite:"+filepath.Join(t.TempDir(), "ladle.db"))
	ctx := context.Background()
	release, started := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- s.withTx(ctx, func(tx *Tx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started

	var wg sync.WaitGroup
	errs := make([]error, 3)
	// Member 1 writes, then runs a long write statement while its deadline
	// passes; members 0 and 2 are ordinary.
	for i := range 3 {
		wg.Go(func() {
			if i == 1 {
				time.Sleep(20 * time.Millisecond) // queue in order 0, 1, 2
			} else if i == 2 {
				time.Sleep(40 * time.Millisecond)
			}
			// The members' own deadlines are far off: member 1's statement
			// runs to its end despite its 30 ms (the group does not let
			// SQLite interrupt it), which took over 20 s under the race
			// detector on a loaded machine, and the members queued behind
			// it must not time out meanwhile.
			mctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			errs[i] = s.withTx(mctx, func(tx *Tx) error {
				if err := insertRestaurant(mctx, tx, "m-"+strconv.Itoa(i)); err != nil {
					return err
				}
				if i != 1 {
					return nil
				}
				// Long enough that the deadline below passes mid-statement.
				sctx, scancel := context.WithTimeout(mctx, 30*time.Millisecond)
				defer scancel()
				_, err := tx.ExecContext(sctx, `UPDATE restaurants SET phone = (
					WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 400000)
					SELECT CAST(count(*) AS TEXT) FROM c) WHERE slug = 'm-1'`)
				return err
			})
		})
	}
	for deadline := time.Now().Add(30 * time.Second); len(s.group.jobs) < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writers queued", len(s.group.jobs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("ordinary members failed: %v, %v", errs[0], errs[2])
	}
	var n int
	if err := s.ReadDB().QueryRowContext(ctx, `SELECT count(*) FROM restaurants WHERE slug IN ('m-0', 'm-2')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d of the ordinary members' rows committed, want 2", n)
	}
	if errs[1] == nil {
		// It ran to its end despite its deadline: then it committed whole.
		if err := s.ReadDB().QueryRowContext(ctx, `SELECT count(*) FROM restaurants WHERE slug = 'm-1' AND phone <> ''`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("member 1 reported success but its row is missing or partial (n=%d, err=%v)", n, err)
		}
	}
}
