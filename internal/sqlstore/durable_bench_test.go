package sqlstore

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/priority"
)

// BenchmarkCommitBesideBulk measures what a campaign's writes cost an
// order's or a receipt's on SQLite: the latency of one ordinary write
// transaction (p50/p99, one every 10 ms) while bulk transactions of 100 row
// updates run at 250 a second — a campaign sending 12,500 emails a second
// claims and records about that many. "fsync": the bulk transactions
// commit as every other does; "lazy": they are committed lazily
// (ladle.WithLazyCommit) and made durable by Durable every 20 ms (the
// campaign sender's acker syncs about as often). The difference is the disk's queue: with
// fsync, an ordinary commit's fsync waits behind the bulk commits'.
//
//	go test -run '^$' -bench CommitBesideBulk -benchtime 1000x -count 5 ./internal/sqlstore/
func BenchmarkCommitBesideBulk(b *testing.B) {
	for _, mode := range []string{"fsync", "lazy"} {
		b.Run("bulk="+mode, func(b *testing.B) { benchCommitBesideBulk(b, mode == "lazy") })
	}
}

func benchCommitBesideBulk(b *testing.B, lazy bool) {
	s, err := Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"), WithLogger(quietLog))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const rows = 10000
	if err := s.withTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE bulk_rows (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE urgent_rows (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < `+strconv.Itoa(rows)+`)
			INSERT INTO bulk_rows SELECT i, 0 FROM r`)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	bulkCtx := priority.WithBulk(ctx)
	if lazy {
		bulkCtx = ladle.WithLazyCommit(bulkCtx)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bulkMu sync.Mutex
	bulkTx := 0
	const writers, perSecond = 4, 250
	for w := range writers {
		wg.Go(func() {
			tick := time.NewTicker(writers * time.Second / perSecond)
			defer tick.Stop()
			for i := w; ; i += writers {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				lo := (i * 100) % rows
				if err := s.withTx(bulkCtx, func(tx *Tx) error {
					_, err := tx.ExecContext(bulkCtx, `UPDATE bulk_rows SET n = n + 1 WHERE id > $1 AND id <= $2`, lo, lo+100)
					return err
				}); err != nil {
					b.Error(err)
					return
				}
				bulkMu.Lock()
				bulkTx++
				bulkMu.Unlock()
			}
		})
	}
	if lazy {
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if err := s.Durable(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the bulk load under way
	lat := make([]time.Duration, 0, b.N)
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		time.Sleep(10 * time.Millisecond)
		t0 := time.Now()
		if err := s.withTx(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO urgent_rows (id, at) VALUES ($1, $2)`, i, t0.UnixMicro())
			return err
		}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	bulkMu.Lock()
	b.ReportMetric(float64(bulkTx)/elapsed.Seconds(), "bulk-tx/s")
	bulkMu.Unlock()
	_, syncs := s.DurableStats()
	b.ReportMetric(float64(syncs)/elapsed.Seconds(), "durable-syncs/s")
}
