package web

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
)

// TestLoginUnderAttack: 64 parallel wrong-password POSTs with the
// production argon2id parameters (64 MiB a hash), through the real login
// handler behind a trusted proxy, twice: a spray (64 emails from 64
// addresses: no limit applies, only the hash slots bound the memory) and a
// targeted burst at the owner's email from many addresses. Memory stays
// within what the slots allow; the attacker ends locked out; the owner
// still signs in from a browser that signed in before, even from the
// attacker's address.
func TestLoginUnderAttack(t *testing.T) {
	var mgr *auth.Manager
	// LADLE_LOGIN_TEST_SLOTS overrides the hash slots, to measure the
	// baseline the slots are there to prevent (e.g. 16).
	var slotOpt []auth.Option
	if n, err := strconv.Atoi(os.Getenv("LADLE_LOGIN_TEST_SLOTS")); err == nil && n > 0 {
		slotOpt = append(slotOpt, auth.WithHashConcurrency(n))
	}
	e := newEnv(t, "sqlite", func(d *Deps) {
		proxies, err := auth.ParseTrustedProxies("127.0.0.1/32, ::1")
		if err != nil {
			t.Fatal(err)
		}
		mgr = auth.New(d.Store, append(slotOpt, auth.WithParams(auth.DefaultParams), auth.WithLogger(quiet),
			auth.WithTrustedProxies(proxies), auth.WithSecret([]byte("login-attack-test-secret-0123456789")))...)
		d.Auth = mgr
	})
	ctx := context.Background()
	hash, err := mgr.HashPassword(staffPassword)
	if err != nil {
		t.Fatal(err)
	}
	owner := &ladle.User{Email: "owner-attack@example.com", Name: "Owner", PasswordHash: hash}
	if err := e.store.CreateUser(ctx, owner); err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddMembership(ctx, ladle.Membership{UserID: owner.ID, RestaurantID: e.fx.Restaurant.ID, Role: ladle.RoleOwner}); err != nil {
		t.Fatal(err)
	}
	login := func(c *client, ip, email, password string) *response {
		return c.post("/admin/login", url.Values{"email": {email}, "password": {password}}, "X-Forwarded-For", ip)
	}

	// The owner signs in once from their laptop at home: it becomes a
	// known device. Then signs out.
	laptop := e.client()
	login(laptop, "203.0.113.10", owner.Email, staffPassword).want(t, http.StatusSeeOther)
	laptop.post("/admin/logout", nil).want(t, http.StatusSeeOther)

	slots := mgr.HashStats().Slots
	runtime.GC()
	base := sampleMemory()
	var peak memorySample
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				peak = peak.max(sampleMemory())
			}
		}
	})

	burst := func(name string, req func(i int) (ip, email string)) map[int]int {
		var mu sync.Mutex
		statuses := map[int]int{}
		var start sync.WaitGroup
		start.Add(1)
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				c := e.client()
				ip, email := req(i)
				start.Wait()
				res := login(c, ip, email, "wrong password "+strconv.Itoa(i))
				if res.status == http.StatusTooManyRequests && res.header.Get("Retry-After") == "" {
					t.Errorf("%s: 429 without Retry-After", name)
				}
				mu.Lock()
				statuses[res.status]++
				mu.Unlock()
			})
		}
		start.Done()
		wg.Wait()
		for status := range statuses {
			if status != http.StatusUnauthorized && status != http.StatusTooManyRequests {
				t.Errorf("%s: status %d in %v", name, status, statuses)
			}
		}
		return statuses
	}
	spray := burst("spray", func(i int) (string, string) {
		return "198.51.100." + strconv.Itoa(i+1), "nobody-" + strconv.Itoa(i) + "@example.com"
	})
	targeted := burst("targeted", func(i int) (string, string) {
		return "192.0.2." + strconv.Itoa(i%8+1), owner.Email
	})
	close(stop)
	sampler.Wait()
	st := mgr.HashStats()
	growthRSS := peak.rss - base.rss
	growthHeap := peak.heap - base.heap
	perHash := uint64(auth.DefaultParams.Memory) << 10
	t.Logf("spray: %v; targeted: %v; hash slots %d, peak hashes at once %d, refused busy %d", spray, targeted, slots, st.Peak, st.Busy)
	t.Logf("RSS %d MiB → peak %d MiB (+%d MiB); Go heap %d MiB → peak %d MiB (+%d MiB); one hash %d MiB; without slots 64 hashes would need %d MiB",
		base.rss>>20, peak.rss>>20, growthRSS>>20, base.heap>>20, peak.heap>>20, growthHeap>>20, perHash>>20, 64*perHash>>20)
	if st.Peak > slots {
		t.Fatalf("%d hashes ran at once, slots %d", st.Peak, slots)
	}
	// Live argon2 memory is at most slots × 64 MiB; the garbage collector may
	// let the heap reach twice the live memory before it collects, and the
	// OS keeps freed pages a while: 2 × slots × 64 MiB + 64 MiB of slack.
	// Without the slots, 64 parallel hashes would need 4 GiB.
	if limit := 2*uint64(slots)*perHash + perHash; growthRSS > limit {
		t.Fatalf("RSS grew %d MiB during the burst, more than the slots allow (%d MiB)", growthRSS>>20, limit>>20)
	}
	if targeted[http.StatusUnauthorized] > auth.MaxFailuresPerEmail {
		t.Fatalf("%d passwords checked for one email, limit %d", targeted[http.StatusUnauthorized], auth.MaxFailuresPerEmail)
	}

	// The attacker goes on, one request at a time (no slot is busy): locked
	// out, by address and by email.
	for i := range auth.MaxFailuresPerEmail {
		login(e.client(), "192.0.2."+strconv.Itoa(i%8+1), owner.Email, "still guessing")
	}
	res := login(e.client(), "192.0.2.1", owner.Email, "still guessing")
	res.want(t, http.StatusTooManyRequests, "Too many failed sign-in attempts")
	// So is a browser the owner never used, even with the right password…
	login(e.client(), "203.0.113.10", owner.Email, staffPassword).want(t, http.StatusTooManyRequests)
	// …but not the owner's laptop, at home or on the attacker's network.
	login(laptop, "203.0.113.10", owner.Email, staffPassword).want(t, http.StatusSeeOther)
	laptop.get("/admin/r/"+itoa(e.fx.Restaurant.ID)+"/orders").want(t, http.StatusOK)
	laptop.post("/admin/logout", nil).want(t, http.StatusSeeOther)
	login(laptop, "192.0.2.1", owner.Email, staffPassword).want(t, http.StatusSeeOther)
}

type memorySample struct{ rss, heap uint64 }

func (a memorySample) max(b memorySample) memorySample {
	return memorySample{rss: max(a.rss, b.rss), heap: max(a.heap, b.heap)}
}

// sampleMemory reads the process's resident set (VmRSS) and the Go heap's
// live-and-unswept object bytes.
func sampleMemory() memorySample {
	var m memorySample
	if f, err := os.Open("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				m.rss = kb << 10
			}
		}
		f.Close()
	}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		m.heap = s[0].Value.Uint64()
	}
	return m
}

// TestLoginHostileEmail: an email the input policy refuses is never looked
// up (a NUL was a 500 on PostgreSQL): 401, like any wrong credentials.
func TestLoginHostileEmail(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		for _, email := range []string{"a\x00@example.com", "a\xff@example.com", "\u202e@example.com", strings.Repeat("a", 5000) + "@example.com"} {
			e.client().post("/admin/login", url.Values{"email": {email}, "password": {staffPassword}}).want(t, http.StatusUnauthorized)
		}
	})
}
