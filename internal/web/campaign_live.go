package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/live"
)

// CampaignLiveEvery is how often a campaign's live stream reads its
// progress.
var CampaignLiveEvery = time.Second

// handleCampaignLive streams a campaign's progress to its page as
// server-sent events: a "progress" event at once, then one every
// CampaignLiveEvery while anything changed (read from the database, so the
// sends of every worker process count; the rate is measured over these
// reads), and "end" once the campaign is done or cancelled. Like the
// board's stream it ends with the staff member's session: at once on a
// logout in this process, at the next heartbeat otherwise.
func (s *server) handleCampaignLive(w http.ResponseWriter, r *http.Request, st *staffView) {
	if s.campaignAccess(w, r, st) == nil {
		return
	}
	rid, id := st.Restaurant.ID, r.PathValue("id")
	read := func() ([]byte, ladle.CampaignStatus, error) {
		ctx, cancel := context.WithTimeout(r.Context(), s.requestTimeout())
		defer cancel()
		p, err := s.Campaigns.Progress(ctx, rid, id)
		if err != nil {
			return nil, "", err
		}
		b, err := json.Marshal(p)
		return b, p.Status, err
	}
	b, status, err := read()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	done, untrack := s.sessions.Track(sessionKey(r))
	defer untrack()
	allowed := s.stillMember(r, st.User.ID, rid)
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Time{}) // the server's WriteTimeout must not cut a working stream
	write := func(s string) bool {
		_, err := fmt.Fprint(w, s)
		return err == nil && rc.Flush() == nil
	}
	if !write("retry: 2000\n\n") {
		return
	}
	tick := time.NewTicker(CampaignLiveEvery)
	defer tick.Stop()
	var last []byte
	quiet := time.Now()
	for {
		if b != nil && !bytes.Equal(b, last) {
			if !write("event: progress\ndata: " + string(b) + "\n\n") {
				return
			}
			last, quiet = b, time.Now()
		}
		if status == ladle.CampaignDone || status == ladle.CampaignCancelled {
			write("event: end\ndata: {}\n\n")
			return
		}
		if time.Since(quiet) >= live.Heartbeat {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			ok := allowed(ctx)
			cancel()
			if !ok {
				write("event: off\ndata: {}\n\n")
				return
			}
			if !write(": keep-alive\n\n") {
				return
			}
			quiet = time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-done:
			write("event: off\ndata: {}\n\n")
			return
		case <-tick.C:
		}
		// A read that fails (the database is down for a moment) keeps the
		// stream and the last figures; the next tick tries again.
		if nb, ns, err := read(); err == nil {
			b, status = nb, ns
		}
	}
}

// stillMember returns the check a staff stream makes at each heartbeat:
// is the request's session still the member's, and the member still the
// restaurant's? A database that cannot say (an outage) keeps the stream.
func (s *server) stillMember(r *http.Request, uid, rid int64) func(ctx context.Context) bool {
	return func(ctx context.Context) bool {
		u, err := s.Auth.User(r.WithContext(ctx))
		if err == nil && u.ID == uid {
			_, err = s.Store.Membership(ctx, uid, rid)
		}
		switch k := ladle.ErrorKind(err); {
		case err == nil:
			return true
		case k == ladle.KindUnauthorized || k == ladle.KindNotFound:
			return false
		default:
			return true
		}
	}
}
