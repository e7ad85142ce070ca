package redact_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ladle-dev/ladle/internal/redact"
)

func TestURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://ladle:s3cret-pw@db:5432/ladle?sslmode=require": "postgres://ladle:xxxxx@db:5432/ladle?sslmode=require",
		"postgres://postgres@127.0.0.1/test":                       "postgres://postgres@127.0.0.1/test",
		"nats://tok3n-abc@a:4222,nats://u:pw-secret@b:4222":        "nats://xxxxx@a:4222,nats://u:xxxxx@b:4222",
		"smtp://user:pass%20word@mail:587":                         "smtp://user:xxxxx@mail:587",
		"redis://:redispass@127.0.0.1:6379/0":                      "redis://:xxxxx@127.0.0.1:6379/0",
		"":                                                         "",
		"%%%://u:p@x":                                              "xxxxx",
	} {
		if got := redact.URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHandlerMasksEverywhere(t *testing.T) {
	t.Parallel()
	secrets := redact.Secrets("postgres://ladle:s3cret-pw@db/ladle", "nats://tok3n-abc@a:4222", "smtp://u:pass word@m:587")
	var buf bytes.Buffer
	log := slog.New(redact.Handler(slog.NewJSONHandler(&buf, nil), secrets)).With("dsn", "postgres://ladle:s3cret-pw@db/ladle")
	log.Info("connecting to nats://tok3n-abc@a:4222",
		"err", errors.New(`parse "smtp://u:pass word@m:587": invalid`),
		slog.Group("g", "url", "nats://tok3n-abc@a:4222"))
	out := buf.String()
	for _, s := range []string{"s3cret-pw", "tok3n-abc", "pass word"} {
		if strings.Contains(out, s) {
			t.Fatalf("secret %q logged: %s", s, out)
		}
	}
	if !strings.Contains(out, "xxxxx") {
		t.Fatalf("nothing masked: %s", out)
	}
}
