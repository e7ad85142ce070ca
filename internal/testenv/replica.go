package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PGPair is a private PostgreSQL primary with one streaming replica (hot
// standby), each a real postgres server in a temporary directory on a free
// loopback port. Both stop and their directories go when the test ends.
type PGPair struct {
	// PrimaryURL and ReplicaURL name the "postgres" database on each.
	PrimaryURL, ReplicaURL string

	t          testing.TB
	bin, dir   string
	replicaDir string
}

// PostgresReplica starts a PGPair with the Debian server binaries
// (/usr/lib/postgresql/*/bin: initdb, pg_ctl, pg_basebackup), run as the
// "postgres" OS user, since PostgreSQL refuses to run as root. It skips
// (fails under LADLE_REQUIRE_SERVICES=1) when the binaries or the user are
// missing, and fails when they are there but the pair does not come up.
func PostgresReplica(t testing.TB) *PGPair {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_basebackup")
	if len(bins) == 0 {
		Skip(t, "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
		return nil
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		Skip(t, "no postgres OS user to run a private PostgreSQL as: %v", err)
		return nil
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	// Not t.TempDir: its parents are the test user's alone (0700), and the
	// servers run as postgres.
	dir, err := os.MkdirTemp("", "ladle-pgpair-")
	if err != nil {
		t.Fatal(err)
	}
	p := &PGPair{t: t, bin: filepath.Dir(bins[len(bins)-1]), dir: dir, replicaDir: filepath.Join(dir, "replica")}
	t.Cleanup(func() {
		// Either may be stopped already (StopReplica, an early failure).
		for _, d := range []string{"replica", "primary"} {
			if _, err := os.Stat(filepath.Join(dir, d, "postmaster.pid")); err == nil {
				p.pgctl(filepath.Join(dir, d), "stop", "-m", "immediate")
			}
		}
		_ = os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	ports := freePorts(t, 2)
	primary := filepath.Join(dir, "primary")
	p.run("initdb", "-D", primary, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"+
		"wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\nsynchronous_commit = on\n"+
		"max_connections = 60\nshared_buffers = 16MB\nwal_receiver_status_interval = 1s\n", ports[0], dir)
	p.appendConf(primary, conf)
	p.pgctl(primary, "start", "-w", "-t", "60", "-l", filepath.Join(dir, "primary.log"))
	p.run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(ports[0]), "-U", "postgres",
		"-D", p.replicaDir, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync")
	p.appendConf(p.replicaDir, fmt.Sprintf("\nport = %d\n", ports[1]))
	p.StartReplica()
	p.PrimaryURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", ports[0])
	p.ReplicaURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", ports[1])

	// The replica is streaming when it is in recovery and the primary
	// lists it as a WAL receiver.
	db, err := sql.Open("pgx", p.PrimaryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'`).Scan(&n)
		if err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not start streaming (%v):\n%s", err, p.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// StopReplica stops the replica server (fast shutdown).
func (p *PGPair) StopReplica() { p.pgctl(p.replicaDir, "stop", "-w", "-m", "fast") }

// StartReplica starts (or restarts) the replica server.
func (p *PGPair) StartReplica() {
	p.pgctl(p.replicaDir, "start", "-w", "-t", "60", "-l", filepath.Join(p.dir, "replica.log"))
}

// WaitReplayed waits until the replica has replayed everything the
// primary has written so far.
func (p *PGPair) WaitReplayed(ctx context.Context) error {
	pdb, err := sql.Open("pgx", p.PrimaryURL)
	if err != nil {
		return err
	}
	defer pdb.Close()
	rdb, err := sql.Open("pgx", p.ReplicaURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	var target string
	if err := pdb.QueryRowContext(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&target); err != nil {
		return err
	}
	for {
		var ok bool
		err := rdb.QueryRowContext(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, target).Scan(&ok)
		if err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica did not replay up to %s: %w (last error %v)", target, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *PGPair) logs() string {
	var b strings.Builder
	for _, f := range []string{"primary.log", "replica.log"} {
		data, _ := os.ReadFile(filepath.Join(p.dir, f))
		fmt.Fprintf(&b, "--- %s\n%s", f, data)
	}
	return b.String()
}

func (p *PGPair) appendConf(dataDir, conf string) {
	p.t.Helper()
	f, err := os.OpenFile(filepath.Join(dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(conf); err != nil {
		p.t.Fatal(err)
	}
}

func (p *PGPair) pgctl(dataDir string, args ...string) {
	p.run("pg_ctl", append([]string{"-D", dataDir}, args...)...)
}

// run runs one server binary as the postgres user (directly when the test
// already runs as a non-root user), failing the test on error.
func (p *PGPair) run(name string, args ...string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append([]string{filepath.Join(p.bin, name)}, args...)
	if os.Geteuid() == 0 {
		argv = append([]string{"runuser", "-u", "postgres", "--"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = p.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, p.logs())
	}
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}
