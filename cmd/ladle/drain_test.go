package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/bench"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// TestBenchDrainReportsThreePools runs `ladle bench drain` small (2,000
// events, one round; the README's command drains 20,000 in five): each of
// the autoscaled, fixed-minimum and fixed-maximum pools drains the whole
// backlog exactly once in a child process of its own (the bench fails
// otherwise), and the table reports each one's time and peak RSS, with the
// autoscaled pool peaking above its minimum.
func TestBenchDrainReportsThreePools(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "three child processes")
	// The children are this test binary re-executed as ladle.
	script := filepath.Join(t.TempDir(), "ladle")
	body := fmt.Sprintf("#!/bin/sh\nexec env LADLE_TEST_HELPER_SERVE=1 %q '-test.run=^TestHelperServe$' -- \"$@\"\n", os.Args[0])
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := bench.Drain(ctx, bench.DrainConfig{Out: &out, Binary: script, Events: 2000, Latency: 2 * time.Millisecond,
		Min: 2, Max: 16, Target: 500 * time.Millisecond, Rounds: 1})
	if err != nil {
		t.Fatalf("bench drain: %v\n%s", err, out.String())
	}
	for _, pool := range []string{"autoscaled 2–16", "fixed 2 (minimum)", "fixed 16 (maximum)"} {
		// pool | drain s | vs fixed max | events/s | peak workers | peak RSS MiB
		m := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(pool) + ` \| [0-9.]+ \[[^]]*\] \| [0-9.]+ \| \d+ \| (\d+) \| (\d+)`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no row for %s with its time, peak workers and peak RSS:\n%s", pool, out.String())
		}
		peak, _ := strconv.Atoi(m[1])
		rss, _ := strconv.Atoi(m[2])
		if rss <= 0 {
			t.Errorf("%s: peak RSS %d MiB", pool, rss)
		}
		if pool == "autoscaled 2–16" && peak <= 2 {
			t.Errorf("the autoscaled pool never grew past its minimum (peak %d)", peak)
		}
	}
	t.Log("\n" + out.String())
}
