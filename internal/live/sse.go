package live

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Heartbeat is how often an idle stream sends a comment, so proxies keep it
// open and a dead client is noticed.
var Heartbeat = 15 * time.Second

// ServeSSE streams sub to the client as server-sent events until the client
// goes away or the hub drops the subscription, then unsubscribes. Each
// update is one event named "order" whose data is view(update) as JSON.
// The stream starts with a "hello" event, which tells the page it is live:
// it loads the current state after that, so nothing published in between
// is missed.
func ServeSSE(w http.ResponseWriter, r *http.Request, h *Hub, sub *Sub, view func(Update) any) {
	Serve(w, r, Stream{Hub: h, Sub: sub, View: view})
}

// Stream is one server-sent event stream: what ServeSSE takes, plus an
// optional check that ends the stream once its viewer may no longer see it.
type Stream struct {
	Hub  *Hub
	Sub  *Sub
	View func(Update) any
	// Allowed, if set, is asked at every heartbeat whether the viewer may
	// still watch (a staff session that ended in another process, or
	// expired); false ends the stream. It gets a context bounded to a few
	// seconds.
	Allowed func(ctx context.Context) bool
	// Done, if set, ends the stream when closed (a logout in this process,
	// see Sessions).
	Done <-chan struct{}
}

// Serve streams s to the client; see ServeSSE.
func Serve(w http.ResponseWriter, r *http.Request, s Stream) {
	defer s.Hub.Unsubscribe(s.Sub)
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // nginx: don't buffer the stream
	w.WriteHeader(http.StatusOK)
	// retry: how long the browser waits before reconnecting.
	if _, err := fmt.Fprint(w, "retry: 2000\nevent: hello\ndata: {}\n\n"); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	// The server's WriteTimeout must not cut a stream that is working.
	_ = rc.SetWriteDeadline(time.Time{})
	tick := time.NewTicker(Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.Done:
			ended(w, rc)
			return
		case <-tick.C:
			if s.Allowed != nil {
				ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
				ok := s.Allowed(ctx)
				cancel()
				if !ok {
					ended(w, rc)
					return
				}
			}
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case u, ok := <-s.Sub.C():
			if !ok {
				return // dropped: the browser reconnects and reloads
			}
			b, err := json.Marshal(s.View(u))
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", u.EventID, "order", b); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// ended tells the page its stream was ended on purpose ("off": live.js
// closes the EventSource instead of reconnecting).
func ended(w http.ResponseWriter, rc *http.ResponseController) {
	_, _ = fmt.Fprint(w, "event: off\ndata: {}\n\n")
	_ = rc.Flush()
}

// Sessions tracks the open streams of each login session in this process,
// so that a logout ends them at once. (A session ended in another process,
// or expired, is caught by Stream.Allowed at the next heartbeat.)
type Sessions struct {
	mu   sync.Mutex
	open map[string]map[chan struct{}]struct{}
}

// NewSessions returns an empty registry.
func NewSessions() *Sessions { return &Sessions{open: map[string]map[chan struct{}]struct{}{}} }

// Track registers one stream of session key: done is closed by End(key);
// untrack must be called when the stream ends.
func (s *Sessions) Track(key string) (done <-chan struct{}, untrack func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	if s.open[key] == nil {
		s.open[key] = map[chan struct{}]struct{}{}
	}
	s.open[key][ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if set, ok := s.open[key]; ok {
			if _, ok := set[ch]; ok {
				delete(set, ch)
				close(ch)
			}
			if len(set) == 0 {
				delete(s.open, key)
			}
		}
	}
}

// End ends every stream of session key and returns how many there were.
func (s *Sessions) End(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.open[key]
	for ch := range set {
		close(ch)
	}
	delete(s.open, key)
	return len(set)
}

// Open returns how many streams session key has open.
func (s *Sessions) Open(key string) int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.open[key]) }
