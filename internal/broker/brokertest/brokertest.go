// Package brokertest gives tests a real broker: an embedded nats-server in a
// temporary directory, and the external server named by LADLE_TEST_NATS_URL
// when it is set. Each broker gets its own stream and subject prefix, so
// tests can share one external server at the same moment.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// Kind is where a test broker runs.
type Kind string

const (
	Embedded Kind = "embedded"
	External Kind = "external"
)

// Each runs fn as a subtest on an embedded broker and on the external server
// named by LADLE_TEST_NATS_URL (skipped when it is unset, failed when it is
// unset under LADLE_REQUIRE_SERVICES=1: see internal/testenv).
func Each(t *testing.T, fn func(t *testing.T, kind Kind)) {
	t.Helper()
	for _, k := range []Kind{Embedded, External} {
		t.Run(string(k), func(t *testing.T) {
			if k == External {
				testenv.NATSURL(t)
			}
			fn(t, k)
		})
	}
}

// Config returns a broker config of the given kind with a stream and subject
// prefix no other test uses. For Embedded, dir is the data directory (a
// fresh t.TempDir() when empty).
func Config(t testing.TB, kind Kind, dir string) broker.Config {
	t.Helper()
	id := unique()
	cfg := broker.Config{
		Stream:        "T_" + strings.ToUpper(id),
		SubjectPrefix: "t" + id + ".events",
		Name:          t.Name(),
	}
	switch kind {
	case Embedded:
		if dir == "" {
			dir = t.TempDir()
		}
		cfg.DataDir = dir
	case External:
		cfg.URL = testenv.NATSURL(t)
		// Keep the shared server tidy even when a test fails.
		cfg.MaxAge = time.Hour
	}
	return cfg
}

// Open opens a broker of the given kind (see Config) and closes it, deleting
// the stream on an external server, when the test ends.
func Open(t testing.TB, kind Kind) *broker.Broker {
	t.Helper()
	return OpenConfig(t, Config(t, kind, ""))
}

// OpenConfig opens a broker with cfg and cleans up as Open does.
func OpenConfig(t testing.TB, cfg broker.Config) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	if err := b.Ready(ctx); err != nil {
		b.Close()
		t.Fatalf("broker ready: %v", err)
	}
	t.Cleanup(func() {
		if !b.Embedded() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = b.JetStream().DeleteStream(ctx, b.StreamName())
		}
		b.Close()
	})
	return b
}

// SubjectCount returns how many messages b's stream holds on the subject
// of typ (an event type, or another name under the stream's prefix).
func SubjectCount(t testing.TB, b *broker.Broker, typ string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := b.JetStream().Stream(ctx, b.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	subj := b.Subject(typ)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subj]
}

func unique() string {
	var p [6]byte
	_, _ = rand.Read(p[:])
	return hex.EncodeToString(p[:])
}
