// Package httpserver holds what every Ladle HTTP server wraps around its
// routes: panic recovery, security headers, metrics by route pattern and
// request logs; and the readiness probe.
package httpserver

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/problem"
)

var (
	httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ladle_http_requests_total", Help: "HTTP requests by route pattern and status.",
	}, []string{"route", "code"})
	httpDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ladle_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route"})
)

// statusWriter remembers the status code for logs and metrics. It passes
// Flush through so server-sent events keep streaming.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Wrap adds, around every route of mux: panic recovery (a problem 500, never
// a dropped connection), security headers, metrics by route pattern and a
// log line for every request (see logRequest for the levels).
func Wrap(mux *http.ServeMux, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h := sw.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic", "method", r.Method, "path", r.URL.Path, "panic", p)
				if sw.code == 0 {
					problem.Write(sw, r, log, ladle.Errorf(ladle.KindInternal, "internal", "panic"))
				}
			}
			_, route := mux.Handler(r)
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			httpRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			httpDuration.WithLabelValues(route).Observe(d.Seconds())
			logRequest(log, r, code, d, sw.Header().Get("Content-Type"))
		}()
		mux.ServeHTTP(sw, r)
	})
}

// logRequest logs one finished request. Only a server error is a warning
// (500s are bugs, and problem.Write has logged their cause at ERROR); a 503
// (busy or a dependency down: its cause, if any, was logged where it was
// classified) and a slow request are INFO; every other request, and every
// live stream however long it lasted, is DEBUG. A stream is long by design:
// it must not read as a slow request.
func logRequest(log *slog.Logger, r *http.Request, code int, d time.Duration, contentType string) {
	level, msg := slog.LevelDebug, "request"
	switch {
	case code >= 500 && code != http.StatusServiceUnavailable:
		level = slog.LevelWarn
	case code == http.StatusServiceUnavailable:
		level = slog.LevelInfo
	case strings.HasPrefix(contentType, "text/event-stream"):
		msg = "stream closed"
	case d > time.Second:
		level, msg = slog.LevelInfo, "slow request"
	}
	if !log.Enabled(r.Context(), level) {
		return
	}
	log.Log(r.Context(), level, msg, "method", r.Method, "path", r.URL.Path, "status", code, "duration", d)
}
