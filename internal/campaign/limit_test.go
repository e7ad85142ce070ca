package campaign_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/testenv"
)

func redisLimiter(t *testing.T, prefix string, rate float64) *campaign.RedisLimiter {
	t.Helper()
	rc, err := menucache.OpenRedis(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return campaign.NewRedisLimiter(rc, prefix, rate)
}

// Two senders, each with its own Redis connection (as two processes
// would have), share a limit of R/s: counted per second at the SMTP
// server, together they never exceed it.
func TestSharedRateLimitHoldsAcrossSenders(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite")
	const rate = 25
	r.customers(110)
	var b [6]byte
	rand.Read(b[:])
	prefix := "ladletest:" + hex.EncodeToString(b[:]) + ":"
	l1, l2 := redisLimiter(t, prefix, rate), redisLimiter(t, prefix, rate)
	r.sender(func(c *campaign.SenderConfig) { c.Limiter = l1 })
	r.sender(func(c *campaign.SenderConfig) { c.Limiter = l2 })
	ctx := context.Background()
	c := r.create("paced")
	start := time.Now()
	if _, err := r.svc.Start(ctx, r.f.Restaurant.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	r.waitStatus(c.ID, ladle.CampaignDone, 30*time.Second)
	elapsed := time.Since(start)
	perSecond := map[int64]int{}
	for _, m := range r.smtp.Messages() {
		perSecond[m.At.Unix()]++
	}
	// The limiter books sends 1/rate apart; the server sees them after a
	// delivery that varies by milliseconds (more on a loaded machine), so
	// a send booked just before a second's end may land just after it,
	// beside that second's own: one message of such jitter per calendar
	// second is measurement, two would be the limit broken. The elapsed
	// time below checks the long-run rate itself.
	for sec, n := range perSecond {
		if n > rate+1 {
			t.Errorf("second %d: %d messages at the server, limit %d/s", sec, n, rate)
		}
	}
	if elapsed < 4*time.Second {
		t.Errorf("110 messages at %d/s took %v", rate, elapsed)
	}
	r.exactlyOnce(110)
	t.Logf("per second: %v; %v", perSecond, elapsed)
}

// The rate can be changed while sending, for every process at once.
func TestRedisLimiterRateChangesLive(t *testing.T) {
	t.Parallel()
	var b [6]byte
	rand.Read(b[:])
	prefix := "ladletest:" + hex.EncodeToString(b[:]) + ":"
	l1, l2 := redisLimiter(t, prefix, 10), redisLimiter(t, prefix, 10)
	ctx := context.Background()
	// Ten bookings of one at 10/s span ~0.9 s of schedule.
	var last time.Duration
	for range 10 {
		w, err := l1.Reserve(ctx, "r", 1)
		if err != nil {
			t.Fatal(err)
		}
		last = w
	}
	if last < 800*time.Millisecond || last > time.Second {
		t.Fatalf("10th booking at 10/s waits %v", last)
	}
	if err := l2.SetRate(ctx, "r", 1000); err != nil {
		t.Fatal(err)
	}
	if got, _ := l1.Rate(ctx, "r"); got != 1000 {
		t.Fatalf("rate seen by the other process: %v", got)
	}
	time.Sleep(time.Second) // let the old schedule pass
	w, _ := l1.Reserve(ctx, "r", 100)
	w2, _ := l1.Reserve(ctx, "r", 1)
	if w > 5*time.Millisecond || w2 < 90*time.Millisecond || w2 > 110*time.Millisecond {
		t.Fatalf("at 1000/s: first wait %v, after 100 booked %v (want ~100ms)", w, w2)
	}
	// Slow halves the pace for everyone.
	if err := l2.Slow(ctx, "r", time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	l1.Reserve(ctx, "r", 100)
	w3, _ := l1.Reserve(ctx, "r", 1)
	if w3 < 180*time.Millisecond || w3 > 220*time.Millisecond {
		t.Fatalf("slowed: 100 booked at 500/s, next waits %v (want ~200ms)", w3)
	}
}

// A worker that dies after the SMTP server accepted a chunk and before the
// outcomes were recorded: another worker takes its records over when the
// lease ends. Nobody is skipped; the duplicates are exactly the chunk the
// dying worker had in flight, and they carry the same Message-ID.
func TestCrashedWorkerDuplicatesOnlyItsChunk(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite")
	r.customers(200)
	ctx := context.Background()
	var chunks atomic.Int64
	dying := r.sender(func(c *campaign.SenderConfig) {
		c.Concurrency, c.Chunk = 1, 10
		c.Lease = 2 * time.Second
		c.Fault = func() error {
			if chunks.Add(1) == 3 {
				return errors.New("kill -9")
			}
			return nil
		}
	})
	_ = dying
	c := r.create("crash")
	if _, err := r.svc.Start(ctx, r.f.Restaurant.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	// Wait for the crash, then bring up a healthy worker.
	for chunks.Load() < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	r.sender(func(c *campaign.SenderConfig) { c.Lease = 2 * time.Second })
	done := r.waitStatus(c.ID, ladle.CampaignDone, 60*time.Second)
	if done.Sent != 200 {
		t.Fatalf("sent %d", done.Sent)
	}
	got := r.perRecipient()
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	if len(got) != 200 {
		t.Fatalf("%d recipients reached, want 200 (nobody skipped)", len(got))
	}
	if dups > 10 {
		t.Fatalf("%d duplicates, more than the dying worker's one chunk of 10", dups)
	}
	ids := map[string]int{}
	for _, m := range r.smtp.Messages() {
		ids[m.MessageID]++
	}
	if len(ids) != 200 {
		t.Fatalf("%d distinct Message-IDs for 200 recipients", len(ids))
	}
	t.Logf("duplicates after the crash: %d (window: one chunk of 10)", dups)
}
