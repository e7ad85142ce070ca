package live

import (
	"encoding/json"
	"fmt"
	"net/http"
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
	defer h.Unsubscribe(sub)
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
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case u, ok := <-sub.C():
			if !ok {
				return // dropped: the browser reconnects and reloads
			}
			b, err := json.Marshal(view(u))
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "id: %s\nevent: order\ndata: %s\n\n", u.EventID, b); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
