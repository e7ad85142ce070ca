package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestHelpAndErrorsHideSecrets: the credentials inside --database-url,
// --nats-url, --redis-url, --smtp-url and --secret never show in --help, in
// an error, or in the log, whether given as flags or LADLE_* variables.
func TestHelpAndErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"db-pa55word", "nats-t0ken", "redis-pa55", "smtp-pa55", "the-server-secret-123"}
	env := map[string]string{
		"LADLE_DATABASE_URL": "postgres://ladle:db-pa55word@127.0.0.1:1/ladle?connect_timeout=1",
		"LADLE_NATS_URL":     "nats://nats-t0ken@127.0.0.1:1",
		"LADLE_REDIS_URL":    "redis://:redis-pa55@127.0.0.1:1/0",
		"LADLE_SMTP_URL":     "smtp://u:smtp-pa55@127.0.0.1:1",
		"LADLE_SECRET":       "the-server-secret-123",
	}
	getenv := func(k string) string { return env[k] }
	check := func(what, s string) {
		t.Helper()
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s shows the secret %q:\n%s", what, sec, s)
			}
		}
	}
	// --help, with every secret set in the environment and on the command line.
	var out, errOut syncBuffer
	if err := run(context.Background(), []string{"ladle", "serve", "--help"}, getenv, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "--database-url") {
		t.Fatalf("--help printed no flags:\n%s", errOut.String())
	}
	check("--help", out.String()+errOut.String())
	out, errOut = syncBuffer{}, syncBuffer{}
	_ = run(context.Background(), []string{"ladle", "serve", "--smtp-url", "smtp://u:smtp-pa55@127.0.0.1:1", "--help"}, getenv, &out, &errOut)
	check("--help with flags", out.String()+errOut.String())

	// A database that cannot be reached: the error and the log.
	out, errOut = syncBuffer{}, syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"ladle", "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, getenv, &out, &errOut)
	if err == nil {
		t.Fatal("serve with an unreachable database returned nil")
	}
	check("the error", err.Error())
	check("the log", errOut.String())
	// A URL Go cannot parse is quoted whole in its error.
	delete(env, "LADLE_DATABASE_URL")
	delete(env, "LADLE_NATS_URL")
	delete(env, "LADLE_REDIS_URL")
	env["LADLE_SMTP_URL"] = "smtp://u:smtp-pa55@127.0.0.1:1/%zz"
	err = run(ctx, []string{"ladle", "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, getenv, &out, &errOut)
	if err == nil {
		t.Fatal("serve with a broken --smtp-url returned nil")
	}
	check("the parse error", err.Error())
}

var metricsAt = regexp.MustCompile(`Metrics on (http://\S+)`)

// TestMetricsOffThePublicListener: /metrics is not on the main listener
// (outside --demo); --metrics-addr serves it on a listener of its own.
func TestMetricsOffThePublicListener(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	argv := []string{"ladle", "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--metrics-addr", "127.0.0.1:0"}
	go func() { done <- run(ctx, argv, func(string) string { return "" }, out, errOut) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var base, metrics string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" || metrics == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no addresses printed:\n%s\n%s", out.String(), errOut.String())
		}
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			base = strings.Replace(m[1], "localhost", "127.0.0.1", 1)
		}
		if m := metricsAt.FindStringSubmatch(out.String()); m != nil {
			metrics = m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(base + "/metrics"); code == 200 {
		t.Fatalf("/metrics is public on the main listener")
	}
	code, body := get(metrics)
	if code != 200 || !strings.Contains(body, `ladle_limit_max_in_flight{limiter="orders"} 16`) {
		t.Fatalf("--metrics-addr: %d, limiter metrics missing:\n%.2000s", code, body)
	}
	if code, body := get(base + "/readyz"); code != 200 || body != "ok\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
}
