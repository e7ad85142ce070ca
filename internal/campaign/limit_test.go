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
	// A wait is "from now": the time a booking is due is when Reserve
	// returned plus its wait, and the schedule it follows started when the
	// first booking of the run reached the limiter, somewhere between that
	// call's start and its return. Checking due times against that window
	// keeps a slow machine's round trips out of the figures.
	type booking struct{ start, ret time.Time }
	first := func(n int) booking {
		t.Helper()
		b := booking{start: time.Now()}
		if _, err := l1.Reserve(ctx, "r", n); err != nil {
			t.Fatal(err)
		}
		b.ret = time.Now()
		return b
	}
	// The same holds for the booking measured: it was due its wait after
	// the moment Redis ran it, somewhere between this call's start and its
	// return (a slow return on a loaded machine once added 20 ms).
	dueAfter := func(b booking, n int) (lo, hi, due time.Duration) {
		t.Helper()
		start := time.Now()
		w, err := l1.Reserve(ctx, "r", n)
		if err != nil {
			t.Fatal(err)
		}
		ret := time.Now()
		return start.Add(w).Sub(b.ret), ret.Add(w).Sub(b.start), w
	}
	within := func(what string, lo, hi, want, slack time.Duration) {
		t.Helper()
		// The due time, measured from the first call's return (lo) and
		// start (hi), must be the schedule's offset want, give or take slack.
		if hi < want-slack || lo > want+slack {
			t.Fatalf("%s: due %v–%v after the first booking, want %v", what, lo, hi, want)
		}
	}
	// Ten bookings of one at 10/s span 0.9 s of schedule.
	bk := first(1)
	for range 8 {
		dueAfter(bk, 1)
	}
	lo, hi, _ := dueAfter(bk, 1)
	within("10th booking at 10/s", lo, hi, 900*time.Millisecond, 20*time.Millisecond)
	if err := l2.SetRate(ctx, "r", 1000); err != nil {
		t.Fatal(err)
	}
	if got, _ := l1.Rate(ctx, "r"); got != 1000 {
		t.Fatalf("rate seen by the other process: %v", got)
	}
	time.Sleep(time.Second) // let the old schedule pass
	bk = booking{start: time.Now()}
	w, _ := l1.Reserve(ctx, "r", 100)
	bk.ret = time.Now()
	if w > 5*time.Millisecond {
		t.Fatalf("at 1000/s the first booking waits %v", w)
	}
	lo, hi, _ = dueAfter(bk, 1)
	within("at 1000/s, after 100 booked", lo, hi, 100*time.Millisecond, 10*time.Millisecond)
	// Slow halves the pace for everyone.
	if err := l2.Slow(ctx, "r", time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	bk = first(100)
	lo, hi, _ = dueAfter(bk, 1)
	within("slowed: 100 booked at 500/s", lo, hi, 200*time.Millisecond, 20*time.Millisecond)
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
