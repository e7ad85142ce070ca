package priority_test

import (
	"context"
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/priority"
)

func TestBulkWaitsForUrgentWork(t *testing.T) {
	t.Parallel()
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
}
