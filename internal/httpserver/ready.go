package httpserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Ready is the readiness probe (/readyz): 200 "ok" when ping succeeds
// within timeout, else 503 "not ready" with Retry-After. It answers within
// timeout even if ping ignores its context; the cause goes to the log, never
// to the client (a database error names users, hosts and databases). While
// one ping is in flight, further probes share its result instead of starting
// more, so probes cannot pile up on a stuck database.
func Ready(ping func(context.Context) error, timeout time.Duration, log *slog.Logger) http.Handler {
	type probe struct {
		done chan struct{} // closed when err is set
		err  error
	}
	var mu sync.Mutex
	var current *probe // the running ping, nil when none runs
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		p := current
		if p == nil {
			p = &probe{done: make(chan struct{})}
			current = p
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				p.err = ping(ctx)
				cancel()
				mu.Lock()
				current = nil
				mu.Unlock()
				close(p.done)
			}()
		}
		mu.Unlock()
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		var err error
		select {
		case <-p.done:
			err = p.err
		case <-timer.C:
			err = context.DeadlineExceeded
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			log.Warn("not ready", "check", "database", "err", err)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
}
