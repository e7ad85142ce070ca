package main

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

var natsShown = regexp.MustCompile(`Other Ladle processes: --nats-url (nats://\S+)`)

// TestServeNATSListenNeedsToken: `ladle serve --nats-listen` opens a port
// that refuses clients without the token. With no --nats-token the token is
// made, kept in the data dir and shown once on stdout; a given --nats-token
// (LADLE_NATS_TOKEN) is used instead and never appears in the output.
func TestServeNATSListenNeedsToken(t *testing.T) {
	t.Parallel()
	for _, given := range []string{"", "operator-chosen-t0ken"} {
		ctx, cancel := context.WithCancel(context.Background())
		out, errOut := &syncBuffer{}, &syncBuffer{}
		done := make(chan error, 1)
		env := map[string]string{"LADLE_NATS_TOKEN": given}
		argv := []string{"ladle", "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0"}
		go func() { done <- run(ctx, argv, func(k string) string { return env[k] }, out, errOut) }()
		stop := func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v\n%s", err, errOut.String())
			}
		}
		var natsURL string
		deadline := time.Now().Add(30 * time.Second)
		for natsURL == "" {
			if given != "" {
				// Nothing is shown for a given token: find the port in
				// the log, which must not carry the token.
				if m := regexp.MustCompile(`listening on nats://redacted@([0-9.:]+)`).FindStringSubmatch(errOut.String()); m != nil {
					natsURL = "nats://" + given + "@" + m[1]
				}
			} else if m := natsShown.FindStringSubmatch(out.String()); m != nil {
				natsURL = m[1]
			}
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("no NATS address; stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		u, err := url.Parse(natsURL)
		if err != nil || u.User == nil {
			stop()
			t.Fatalf("NATS URL %q has no token", natsURL)
		}
		bare := *u
		bare.User = nil
		if nc, err := nats.Connect(bare.String(), nats.Timeout(5*time.Second)); err == nil {
			nc.Close()
			t.Errorf("connected to %s without the token", bare.String())
		}
		nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
		if err != nil {
			t.Errorf("connect with the token: %v", err)
		} else {
			nc.Close()
		}
		stop()
		if given != "" && (strings.Contains(out.String(), given) || strings.Contains(errOut.String(), given)) {
			t.Errorf("the given token shows in the output:\n%s\n%s", out.String(), errOut.String())
		}
		if given == "" && strings.Contains(errOut.String(), u.User.Username()) {
			t.Errorf("the made token is in the log:\n%s", errOut.String())
		}
	}
}
