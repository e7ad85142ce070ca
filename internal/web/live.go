package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/live"
)

// Live updates over server-sent events (internal/live): the staff board and
// the guest's status page each hold an EventSource; static/live.js reloads
// what changed. Without Deps.Live the streams say "off" once and the pages
// keep to their periodic reload.

// handleBoardLive streams every change of the restaurant's orders to the
// staff board: new orders and status changes made on any screen, by any
// process. The stream ends when its session does: at once on a logout in
// this process, and at the next heartbeat when the session was ended in
// another process or expired (or the membership was removed).
func (s *server) handleBoardLive(w http.ResponseWriter, r *http.Request, st *staffView) {
	if s.Live == nil {
		liveOff(w)
		return
	}
	done, untrack := s.sessions.Track(sessionKey(r))
	defer untrack()
	sub := s.Live.Subscribe(st.Restaurant.ID, "")
	live.Serve(w, r, live.Stream{Hub: s.Live, Sub: sub, View: func(u live.Update) any { return u }, Done: done,
		Allowed: s.stillMember(r, st.User.ID, st.Restaurant.ID)}) // campaign_live.go
}

// sessionKey identifies the request's login session among the open
// streams: a hash of the session cookie, so no token is kept in memory
// longer than the request. "" when there is none.
func sessionKey(r *http.Request) string {
	for _, name := range []string{auth.SecureCookieName, auth.CookieName} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			sum := sha256.Sum256([]byte(c.Value))
			return hex.EncodeToString(sum[:])
		}
	}
	return ""
}

// handleOrderLive streams one order's status to the guest holding its access
// token (the same check, and the same 404, as the status page).
func (s *server) handleOrderLive(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.requestTimeout())
	o, err := s.Ordering.GuestOrder(ctx, r.PathValue("id"), r.URL.Query().Get("token"))
	cancel()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.Live == nil {
		liveOff(w)
		return
	}
	sub := s.Live.Subscribe(o.RestaurantID, o.ID)
	live.ServeSSE(w, r, s.Live, sub, func(u live.Update) any { return u.Guest() })
}

// liveOff answers a stream request when live updates are not configured: one
// "off" event, which makes live.js close the stream, and a day's retry delay
// for any client that does not understand it.
func liveOff(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("retry: 86400000\nevent: off\ndata: {}\n\n"))
}

// requestTimeout is Limits.RequestTimeout, or a generous bound when none is
// set, for lookups made before a stream starts.
func (s *server) requestTimeout() time.Duration {
	if s.Limits.RequestTimeout > 0 {
		return s.Limits.RequestTimeout
	}
	return 30 * time.Second
}
