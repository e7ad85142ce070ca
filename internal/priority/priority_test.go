package priority_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ladle-dev/ladle/internal/priority"
)

func TestBulkWaitsForUrgentWork(t *testing.T) {
	t.Parallel()
	// In a bubble the clock is fake and a Sleep ends only once every other
	// goroutine is blocked: the bulk goroutine is inside Yield before the
	// urgent work ends, however slowly a loaded machine starts it, and the
	// waits measure exactly what the gate did.
	synctest.Test(t, func(t *testing.T) {
		g := priority.New()
		ctx := context.Background()
		if d := g.Yield(ctx, time.Second); d != 0 {
			t.Fatalf("yield with nothing urgent waited %v", d)
		}
		exit1 := g.Enter()
		exit2 := g.Enter()
		done := make(chan time.Duration)
		go func() { done <- g.Yield(ctx, 10*time.Second) }()
		time.Sleep(50 * time.Millisecond)
		exit1()
		exit1() // twice: counted once
		select {
		case d := <-done:
			t.Fatalf("yield returned after %v with urgent work still in progress", d)
		case <-time.After(50 * time.Millisecond):
		}
		exit2()
		select {
		case d := <-done:
			if d < 90*time.Millisecond {
				t.Fatalf("waited %v, want ~100ms", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("yield still waiting after the urgent work ended")
		}
		// Bounded: urgent work that never ends delays bulk work by at most max.
		g.Enter()
		start := time.Now()
		g.Yield(ctx, 30*time.Millisecond)
		if d := time.Since(start); d < 30*time.Millisecond || d > 2*time.Second {
			t.Fatalf("bounded yield took %v", d)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if d := g.Yield(cctx, time.Hour); d > time.Second {
			t.Fatalf("cancelled yield took %v", d)
		}
		entered, yields, _ := g.Stats()
		if entered != 3 || yields != 3 {
			t.Fatalf("stats: entered %d yields %d", entered, yields)
		}
		var nilGate *priority.Gate
		nilGate.Enter()()
		if nilGate.Yield(ctx, time.Second) != 0 {
			t.Fatal("nil gate waited")
		}
	})
}

func TestExpectedWorkHoldsTheGate(t *testing.T) {
	t.Parallel()
	g := priority.New()
	ctx := context.Background()
	busy := func() bool { return g.Yield(ctx, 20*time.Millisecond) > 0 }

	// Expected, then arrived: busy in between, idle after.
	g.Expect("a", time.Hour)
	if !busy() {
		t.Fatal("an expected event did not hold the gate")
	}
	exit := g.Enter() // the handler, before it says it arrived
	g.Arrived("a")
	if !busy() {
		t.Fatal("the handler's Enter did not hold the gate")
	}
	exit()
	if busy() {
		t.Fatal("gate busy after the expected event arrived and its handler ended")
	}

	// Never arrives (another process took it): held for at most d.
	g.Expect("b", 50*time.Millisecond)
	start := time.Now()
	for busy() {
		if time.Since(start) > 5*time.Second {
			t.Fatal("an expectation that never arrived held the gate past its bound")
		}
	}

	// Arrived before its Expect (the handler was faster than the watcher):
	// the late Expect holds nothing.
	g.Arrived("c")
	g.Expect("c", time.Hour)
	if busy() {
		t.Fatal("a late Expect of an event that had arrived held the gate")
	}

	var nilGate *priority.Gate
	nilGate.Expect("x", time.Hour)
	nilGate.Arrived("x")
}
