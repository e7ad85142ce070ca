package limit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/limit"
)

func TestAdmitsQueuesThenSheds(t *testing.T) {
	t.Parallel()
	l := limit.NewSet().New(limit.Config{Name: "t", MaxInFlight: 2, MaxQueue: 1, MaxWait: time.Minute, RetryAfter: 3})
	r1, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The third waits in the queue.
	got := make(chan error, 1)
	var r3 func()
	go func() {
		var err error
		r3, err = l.Acquire(context.Background())
		got <- err
	}()
	waitFor(t, func() bool { return l.Queued() == 1 })
	// The fourth finds the queue full: shed at once (it would otherwise
	// wait out MaxWait, a minute), 503 with Retry-After.
	_, err = l.Acquire(context.Background())
	if ladle.ErrorKind(err) != ladle.KindUnavailable || ladle.RetryAfter(err) != 3 {
		t.Fatalf("queue full: got %v (retry after %d), want unavailable, 3", err, ladle.RetryAfter(err))
	}
	// A release hands the slot to the waiter.
	r1()
	if err := <-got; err != nil {
		t.Fatalf("queued request: %v", err)
	}
	if l.InFlight() != 2 || l.Queued() != 0 {
		t.Fatalf("in flight %d queued %d, want 2 and 0", l.InFlight(), l.Queued())
	}
	r2()
	r3()
	if l.InFlight() != 0 {
		t.Fatalf("in flight %d after all released", l.InFlight())
	}
	if l.Shed() != 1 {
		t.Fatalf("shed %d, want 1", l.Shed())
	}
}

func TestQueueWaitIsBounded(t *testing.T) {
	t.Parallel()
	l := limit.NewSet().New(limit.Config{Name: "t", MaxInFlight: 1, MaxQueue: 5, MaxWait: 50 * time.Millisecond})
	release, _ := l.Acquire(context.Background())
	defer release()
	start := time.Now()
	_, err := l.Acquire(context.Background())
	d := time.Since(start)
	if ladle.ErrorKind(err) != ladle.KindUnavailable {
		t.Fatalf("got %v, want unavailable", err)
	}
	if d < 50*time.Millisecond {
		t.Fatalf("shed after %v, before MaxWait", d)
	}
	if l.Queued() != 0 {
		t.Fatalf("the shed request is still queued")
	}
}

func TestCancelledWaiterLeavesTheQueue(t *testing.T) {
	t.Parallel()
	l := limit.NewSet().New(limit.Config{Name: "t", MaxInFlight: 1, MaxQueue: 5, MaxWait: time.Minute})
	release, _ := l.Acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { _, err := l.Acquire(ctx); got <- err }()
	waitFor(t, func() bool { return l.Queued() == 1 })
	cancel()
	if err := <-got; ladle.ErrorKind(err) != ladle.KindUnavailable {
		t.Fatalf("got %v, want unavailable", err)
	}
	if l.Queued() != 0 {
		t.Fatalf("cancelled waiter still queued")
	}
	release()
	if l.InFlight() != 0 {
		t.Fatalf("slot leaked: in flight %d", l.InFlight())
	}
}

func TestFIFO(t *testing.T) {
	t.Parallel()
	l := limit.NewSet().New(limit.Config{Name: "t", MaxInFlight: 1, MaxQueue: 10, MaxWait: time.Minute})
	release, _ := l.Acquire(context.Background())
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			r, err := l.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			r()
		})
		waitFor(t, func() bool { return l.Queued() == i+1 })
	}
	release()
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("served in order %v, want FIFO", order)
		}
	}
}

// TestNeverOverLimit hammers a limiter from many goroutines (run with -race):
// no more than MaxInFlight ever run, every admitted request is released, and
// admitted + shed accounts for every attempt.
func TestNeverOverLimit(t *testing.T) {
	t.Parallel()
	l := limit.NewSet().New(limit.Config{Name: "t", MaxInFlight: 4, MaxQueue: 4, MaxWait: 2 * time.Millisecond})
	var running, peak, admitted, shed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 200 {
				release, err := l.Acquire(context.Background())
				if err != nil {
					shed.Add(1)
					continue
				}
				admitted.Add(1)
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(50 * time.Microsecond)
				running.Add(-1)
				release()
			}
		})
	}
	wg.Wait()
	if peak.Load() > 4 {
		t.Fatalf("peak in flight %d, limit 4", peak.Load())
	}
	if l.InFlight() != 0 || l.Queued() != 0 {
		t.Fatalf("in flight %d queued %d after the run", l.InFlight(), l.Queued())
	}
	if admitted.Load()+shed.Load() != 64*200 || shed.Load() != l.Shed() {
		t.Fatalf("admitted %d + shed %d (limiter says %d) != %d", admitted.Load(), shed.Load(), l.Shed(), 64*200)
	}
	if shed.Load() == 0 {
		t.Fatalf("nothing shed: the test did not overload the limiter")
	}
}

func TestPerClient(t *testing.T) {
	t.Parallel()
	p := limit.NewSet().NewPerClient("sse_client", 2, 5)
	a1, err := p.Acquire("a")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := p.Acquire("a")
	if _, err := p.Acquire("a"); ladle.ErrorKind(err) != ladle.KindRateLimited || ladle.RetryAfter(err) != 5 {
		t.Fatalf("third for a: %v, want rate_limited with retry after 5", err)
	}
	b1, err := p.Acquire("b")
	if err != nil {
		t.Fatalf("another client is refused: %v", err)
	}
	a1()
	a3, err := p.Acquire("a")
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	a2()
	a3()
	b1()
	if p.Held("a") != 0 || p.Held("b") != 0 {
		t.Fatal("slots leaked")
	}
}

func TestWrapAnswersProblemWithRetryAfter(t *testing.T) {
	t.Parallel()
	set := limit.NewSet()
	l := set.New(limit.Config{Name: "orders", MaxInFlight: 1, RetryAfter: 2})
	hold, done := make(chan struct{}), make(chan struct{})
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			close(hold)
			<-done
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	go func() {
		resp, err := http.Get(srv.URL + "/hold")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-hold
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Code   string `json:"code"`
		Status int    `json:"status"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" || doc.Code != "unavailable" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("got %d Retry-After %q code %q (%s), want 503, 2, unavailable, problem+json",
			resp.StatusCode, resp.Header.Get("Retry-After"), doc.Code, resp.Header.Get("Content-Type"))
	}
	close(done)

	reg := prometheus.NewRegistry()
	reg.MustRegister(set)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	shed := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "ladle_limit_shed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" {
					shed[lp.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if shed["queue_full"] != 1 || shed["queue_timeout"] != 0 {
		t.Fatalf("ladle_limit_shed_total by reason: %v, want queue_full 1", shed)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestShedIfFull(t *testing.T) {
	t.Parallel()
	l := limit.NewSet().New(limit.Config{Name: "t", MaxInFlight: 1, MaxQueue: 1, MaxWait: time.Minute})
	if err := l.ShedIfFull(); err != nil {
		t.Fatalf("idle limiter sheds: %v", err)
	}
	release, _ := l.Acquire(context.Background())
	if err := l.ShedIfFull(); err != nil {
		t.Fatalf("a free queue place is shed: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := l.Acquire(context.Background())
		if err == nil {
			r()
		}
		got <- err
	}()
	waitFor(t, func() bool { return l.Queued() == 1 })
	if err := l.ShedIfFull(); ladle.ErrorKind(err) != ladle.KindUnavailable {
		t.Fatalf("full limiter: %v, want unavailable", err)
	}
	if l.Shed() != 1 {
		t.Fatalf("shed count %d, want 1", l.Shed())
	}
	release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}
