package auth

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func TestLimiterWindow(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	l := NewLimiter(5, 15*time.Minute, 100, clk.Now)
	for i := range 5 {
		if ok, _ := l.Allow("ip:1.2.3.4"); !ok {
			t.Fatalf("refused after %d failures", i)
		}
		l.Fail("ip:1.2.3.4")
		clk.t = clk.t.Add(time.Minute)
	}
	ok, wait := l.Allow("ip:1.2.3.4")
	if ok {
		t.Fatal("allowed after 5 failures")
	}
	if wait != 10*time.Minute {
		t.Fatalf("wait %v, want 10m (window started at the first failure)", wait)
	}
	if ok, _ := l.Allow("ip:5.6.7.8"); !ok {
		t.Fatal("another key is limited too")
	}
	clk.t = clk.t.Add(10 * time.Minute)
	if ok, _ := l.Allow("ip:1.2.3.4"); !ok {
		t.Fatal("still refused after the window")
	}
	// After the window the count starts again.
	l.Fail("ip:1.2.3.4")
	if ok, _ := l.Allow("ip:1.2.3.4"); !ok {
		t.Fatal("one failure in a new window refused")
	}
}

func TestLimiterReset(t *testing.T) {
	t.Parallel()
	l := NewLimiter(2, time.Minute, 10, nil)
	l.Fail("k")
	l.Fail("k")
	if ok, _ := l.Allow("k"); ok {
		t.Fatal("allowed")
	}
	l.Reset("k")
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("refused after reset")
	}
}

func TestLimiterIsBounded(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	l := NewLimiter(1, time.Hour, 3, clk.Now)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		l.Fail(k)
		clk.t = clk.t.Add(time.Second)
	}
	if l.Len() != 3 {
		t.Fatalf("holds %d keys, want 3", l.Len())
	}
	// The oldest windows were dropped; the newest are still enforced.
	if ok, _ := l.Allow("a"); !ok {
		t.Error("oldest key still held")
	}
	if ok, _ := l.Allow("e"); ok {
		t.Error("newest key forgotten")
	}
}

func TestIPKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"1.2.3.4":                 "1.2.3.4",
		"1.2.3.4:5678":            "1.2.3.4",
		"[2001:db8:1:2:3::4]:443": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9":    "2001:db8:1:2::/64",
		"not an ip":               "not an ip",
	} {
		if got := ipKey(in); got != want {
			t.Errorf("ipKey(%q) = %q, want %q", in, got, want)
		}
	}
}
