package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"
)

// WAL checkpoints on SQLite, off the write path. By default SQLite
// checkpoints inside the COMMIT that takes the WAL past 1,000 pages, on the
// committing connection: here the one writer, so every write queued behind
// it (an order, a receipt) waits for the copy into the database file and
// its fsyncs, tens of milliseconds under a campaign's write rate. Instead
// the writer never checkpoints (wal_autocheckpoint=0) and a goroutine does,
// on a connection of its own, in PASSIVE mode (it never waits for, nor
// blocks, the writer or a reader: SQLite lets a checkpoint run beside
// both), soon after commits: at most every checkpointEvery while writes
// keep coming, and once idleCheckpoint after the last. The WAL is still
// bounded as before (a PASSIVE checkpoint is what the automatic one was),
// and the last connection to close still checkpoints it away.
type checkpointer struct {
	db     *sql.DB
	poke   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	runs   atomic.Int64 // checkpoints made
	frames atomic.Int64 // WAL frames they copied into the database file
	fails  atomic.Int64
}

const (
	checkpointEvery = 100 * time.Millisecond
	idleCheckpoint  = 5 * time.Second // a backstop for writes outside the group committer
)

func (s *Store) startCheckpointer(dsn string) error {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("sqlstore: open sqlite checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.ckpt = c
	go c.loop(s)
	return nil
}

// written says the WAL grew (a commit); it never blocks.
func (c *checkpointer) written() {
	if c == nil {
		return
	}
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop(s *Store) {
	defer close(c.done)
	idle := time.NewTimer(idleCheckpoint)
	defer idle.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.poke:
		case <-idle.C:
		}
		c.checkpoint(s)
		idle.Reset(idleCheckpoint)
		// Let commits accumulate a while: a checkpoint per commit would
		// fsync the database file as often as the WAL.
		select {
		case <-c.stop:
			return
		case <-time.After(checkpointEvery):
		}
	}
}

func (c *checkpointer) checkpoint(s *Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy, logFrames, copied int64
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied); err != nil {
		if c.fails.Add(1) == 1 || c.fails.Load()%100 == 0 {
			s.log.Warn("sqlite WAL checkpoint failed", "err", err, "failures", c.fails.Load())
		}
		return
	}
	c.runs.Add(1)
	c.frames.Add(max(0, copied))
}

func (c *checkpointer) close() {
	close(c.stop)
	<-c.done
	_ = c.db.Close()
}

// CheckpointStats returns how many WAL checkpoints the store's checkpointer
// made and how many frames they copied (0, 0 on PostgreSQL).
func (s *Store) CheckpointStats() (checkpoints, frames int64) {
	if s.ckpt == nil {
		return 0, 0
	}
	return s.ckpt.runs.Load(), s.ckpt.frames.Load()
}
