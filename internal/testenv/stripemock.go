package testenv

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// StripeMock starts Stripe's API test server, stripe-mock (installed by
// .ci/run: go install github.com/stripe/stripe-mock@v0.203.0), on free
// loopback ports for this test and returns its HTTP base URL; it stops
// when the test ends. stripe-mock validates every request against
// Stripe's OpenAPI description and answers with fixture objects. It skips
// when the binary is not on PATH or in $(go env GOPATH)/bin, and fails
// instead under LADLE_REQUIRE_SERVICES=1.
func StripeMock(t testing.TB) string {
	t.Helper()
	bin := stripeMockBinary()
	if bin == "" {
		Skip(t, "stripe-mock is not installed (go install github.com/stripe/stripe-mock@v0.203.0)")
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start stripe-mock: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`Listening for HTTP at address: (\S+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- "http://" + m[1]:
				default:
				}
			}
		}
	}()
	// Loading the OpenAPI description takes a few seconds on a busy machine.
	select {
	case u := <-found:
		return u
	case <-time.After(90 * time.Second):
		t.Fatal("stripe-mock did not start listening within 90s")
	}
	return ""
}

func stripeMockBinary() string {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(filepath.SplitList(gopath)[0], "bin", "stripe-mock")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}
