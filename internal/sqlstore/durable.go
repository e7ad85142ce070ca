package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
)

// Lazy commits on SQLite (ladle.WithLazyCommit). A campaign makes a few
// hundred small write transactions a second (claims and results of its
// sends). With synchronous=FULL each group of them ends in an fsync of the
// WAL, and an order's or a receipt's fsync waits in the disk's queue
// behind them: on a disk whose fsyncs take milliseconds, that was most of
// a receipt's extra latency while a campaign sent, once its writes no
// longer waited for a campaign's (groupcommit.go).
//
// So the group committer runs a group made only of lazy transactions with
// synchronous=NORMAL: its COMMIT writes the WAL and returns without an
// fsync. The commit is atomic and survives the process being killed (the
// WAL is in the kernel's page cache); only a power loss or a kernel crash
// can undo it, and then the lazy commits since the last fsync are lost
// together, newest first (WAL frames after the last synced one fail their
// checksums). The caller makes them durable with Durable before anything
// outside the store relies on them: it fsyncs the WAL file once for every
// caller waiting, unless a FULL commit since has (an fsync of the WAL
// covers every frame before it).
//
// Every other group runs with synchronous=FULL, as before, and the write
// connection is back in FULL whenever no lazy group runs, so writes
// outside the group committer are unaffected.
type durability struct {
	wal string // the WAL file's path

	mu sync.Mutex
	// lazy counts the lazy commits made; durable how many of them are
	// known to be on disk. syncing is set while a caller fsyncs the WAL
	// (the others wait for it, then for the next if it did not cover
	// them); changed is closed when durable advances or a sync ends.
	lazy, durable uint64
	syncing       bool
	changed       chan struct{}

	syncs atomic.Int64 // fsyncs Durable made
}

func newDurability(dbPath string) *durability {
	return &durability{wal: dbPath + "-wal", changed: make(chan struct{})}
}

// lazyCommitted records a lazy commit (the committer's goroutine).
func (d *durability) lazyCommitted() {
	d.mu.Lock()
	d.lazy++
	d.mu.Unlock()
}

// fullCommitted records a FULL commit: its fsync made every lazy commit
// before it durable (the committer's goroutine: none is in progress).
func (d *durability) fullCommitted() {
	d.mu.Lock()
	if d.durable < d.lazy {
		d.durable = d.lazy
		d.wake()
	}
	d.mu.Unlock()
}

// wake tells the waiters to look again; d.mu is held.
func (d *durability) wake() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// wait returns once every lazy commit made before the call is durable.
func (d *durability) wait(ctx context.Context) error {
	d.mu.Lock()
	target := d.lazy
	for d.durable < target {
		if d.syncing {
			ch := d.changed
			d.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return unavailable(ctx.Err())
			}
			d.mu.Lock()
			continue
		}
		// Lead a sync: it covers every commit made before it starts,
		// so the callers queued meanwhile share the next one.
		d.syncing = true
		upto := d.lazy
		d.mu.Unlock()
		err := syncFile(d.wal)
		d.syncs.Add(1)
		d.mu.Lock()
		d.syncing = false
		if err == nil && d.durable < upto {
			d.durable = upto
		}
		d.wake()
		if err != nil {
			d.mu.Unlock()
			return unavailable(fmt.Errorf("sqlstore: sync the WAL: %w", err))
		}
	}
	d.mu.Unlock()
	return nil
}

// syncFile fsyncs the file at path (opened anew each time, so a WAL file
// SQLite replaced is the one synced). No file means no WAL: every commit
// is in the database file, which checkpoints sync.
func syncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// Durable returns once every transaction committed so far is durable
// (ladle.CampaignStore). On PostgreSQL every commit is.
func (s *Store) Durable(ctx context.Context) error {
	if s.dur == nil {
		return nil
	}
	return s.dur.wait(ctx)
}

// DurableStats returns how many lazy commits the SQLite store made and how
// many fsyncs Durable made (0, 0 on PostgreSQL), for tests and benchmarks.
func (s *Store) DurableStats() (lazyCommits, syncs int64) {
	if s.dur == nil {
		return 0, 0
	}
	s.dur.mu.Lock()
	defer s.dur.mu.Unlock()
	return int64(s.dur.lazy), s.dur.syncs.Load()
}
