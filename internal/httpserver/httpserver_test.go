package httpserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/httpserver"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestReadyAnswersFastWithoutCauses: a database that never answers makes
// /readyz say "not ready" within its timeout, with Retry-After, and the
// cause (which names hosts and users) goes to the log, not the client.
func TestReadyAnswersFastWithoutCauses(t *testing.T) {
	t.Parallel()
	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	secretErr := errors.New(`failed to connect to user=admin database=prod host=10.1.2.3:5432`)
	var mode sync.Map
	mode.Store("m", "ok")
	ping := func(ctx context.Context) error {
		switch m, _ := mode.Load("m"); m {
		case "hang": // ignores ctx entirely: Ready must still answer
			time.Sleep(3 * time.Second)
			return nil
		case "fail":
			return secretErr
		}
		return nil
	}
	srv := httptest.NewServer(httpserver.Ready(ping, 300*time.Millisecond, log))
	defer srv.Close()
	get := func() (int, string, string, time.Duration) {
		start := time.Now()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Retry-After"), time.Since(start)
	}
	if code, body, _, _ := get(); code != 200 || body != "ok\n" {
		t.Fatalf("healthy: %d %q", code, body)
	}
	mode.Store("m", "fail")
	code, body, ra, _ := get()
	if code != 503 || body != "not ready\n" || ra == "" {
		t.Fatalf("failing: %d %q Retry-After %q, want 503 \"not ready\" with Retry-After", code, body, ra)
	}
	if !strings.Contains(logs.String(), "10.1.2.3") {
		t.Fatalf("the cause was not logged: %s", logs.String())
	}
	mode.Store("m", "hang")
	code, body, _, d := get()
	if code != 503 || strings.Contains(body, "10.1.2.3") {
		t.Fatalf("hanging: %d %q", code, body)
	}
	if d > 2*time.Second { // the ping hangs 3 s; the probe's bound is 300 ms
		t.Fatalf("a hanging database held /readyz for %v", d)
	}
	// Probes while the hanging ping runs share it instead of piling up.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if code, _, _, _ := get(); code != 503 {
				t.Errorf("probe during a hang: %d", code)
			}
		})
	}
	wg.Wait()
}

// TestRequestLogLevels: ordinary requests and live streams are DEBUG, never
// WARN, however long a stream lasts; 500s are WARN; 503s and slow requests
// INFO.
func TestRequestLogLevels(t *testing.T) {
	t.Parallel()
	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = fmt.Fprint(w, "event: hello\ndata: {}\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(1100 * time.Millisecond) // longer than the "slow request" bound
	})
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	mux.HandleFunc("GET /busy", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	srv := httptest.NewServer(httpserver.Wrap(mux, log))
	defer srv.Close()
	for _, p := range []string{"/ok", "/stream", "/boom", "/busy"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	level := map[string]string{}
	for _, line := range strings.Split(logs.String(), "\n") {
		for _, p := range []string{"/ok", "/stream", "/boom", "/busy"} {
			if strings.Contains(line, "path="+p+" ") {
				f := strings.Fields(line)
				for _, kv := range f {
					if v, ok := strings.CutPrefix(kv, "level="); ok {
						level[p] = v
					}
				}
			}
		}
	}
	want := map[string]string{"/ok": "DEBUG", "/stream": "DEBUG", "/boom": "WARN", "/busy": "INFO"}
	for p, l := range want {
		if level[p] != l {
			t.Errorf("%s logged at %q, want %s; logs:\n%s", p, level[p], l, logs.String())
		}
	}
}
