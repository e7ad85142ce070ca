package events_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ladle-dev/ladle/internal/events"
)

// TestNATSListenIsClosed: --nats-listen without --nats-token makes a token
// in the data dir (mode 0600) and shows it once; the port refuses clients
// without it; the next start keeps the same token and shows nothing; a
// given token is used instead of the file.
func TestNATSListenIsClosed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := openStore(t, "sqlite:"+filepath.Join(dir, "ladle.db"))
	path := func(id string) string { return "/orders/" + id }
	ctx := context.Background()
	start := func(token string) (*events.System, string) {
		t.Helper()
		var out bytes.Buffer
		sys, err := events.Start(ctx, events.Config{Role: "api", DataDir: dir, NATSListen: "127.0.0.1:0",
			NATSToken: token, Stdout: &out, Logger: quiet}, store, path)
		if err != nil {
			t.Fatal(err)
		}
		return sys, out.String()
	}
	refused := func(u string) {
		t.Helper()
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		p.User = nil
		if nc, err := nats.Connect(p.String(), nats.Timeout(5*time.Second)); err == nil {
			nc.Close()
			t.Fatalf("connected to %s without a token", p)
		}
		nc, err := nats.Connect(u, nats.Timeout(5*time.Second))
		if err != nil {
			t.Fatalf("connect with the token: %v", err)
		}
		nc.Close()
	}

	sys, shown := start("")
	first := sys.Broker.ClientURL()
	refused(first)
	fi, err := os.Stat(events.TokenFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	u, _ := url.Parse(first)
	token := u.User.Username()
	if kept, _ := os.ReadFile(events.TokenFile(dir)); strings.TrimSpace(string(kept)) != token {
		t.Errorf("the file holds %q, the server wants %q", kept, token)
	}
	if !strings.Contains(shown, first) {
		t.Errorf("the new token was not shown:\n%s", shown)
	}
	sys.Stop()

	sys, shown = start("")
	if u, _ := url.Parse(sys.Broker.ClientURL()); u.User.Username() != token {
		t.Errorf("second start uses another token")
	}
	if shown != "" {
		t.Errorf("the kept token was shown again:\n%s", shown)
	}
	sys.Stop()

	sys, _ = start("given-by-the-operator")
	defer sys.Stop()
	if u, _ := url.Parse(sys.Broker.ClientURL()); u.User.Username() != "given-by-the-operator" {
		t.Errorf("--nats-token not used: %s", sys.Broker.ClientURL())
	}
	refused(sys.Broker.ClientURL())
}
