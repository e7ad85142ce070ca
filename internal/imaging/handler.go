package imaging

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/blob"
	"github.com/ladle-dev/ladle/internal/httpcache"
)

// Handler serves images from s: mount it as
//
//	mux.Handle("GET /media/", imaging.Handler(blobs, logger))
//
// The path after /media/ is the key. Only image keys (ValidKey) are served;
// anything else is 404, so the blob store is not browsable. An image key
// names its bytes, so the response is cacheable for ever (Immutable), and
// its ETag is derived from the key: a conditional request is answered 304
// without touching storage.
func Handler(s blob.Store, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, MediaPrefix)
		if !strings.HasPrefix(r.URL.Path, MediaPrefix) || !ValidKey(key) {
			w.Header().Set("Cache-Control", string(httpcache.NoStore))
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		hash := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(key, KeyPrefix), ".jpg"), ".png")
		etag := httpcache.ETag(hash)
		if httpcache.NotModified(w, r, etag, httpcache.Immutable) {
			return
		}
		var body io.ReadCloser
		var info blob.Info
		var err error
		if r.Method == http.MethodHead {
			info, err = s.Stat(r.Context(), key)
		} else {
			body, info, err = s.Get(r.Context(), key)
		}
		if err != nil {
			w.Header().Set("Cache-Control", string(httpcache.NoStore))
			if ladle.ErrorKind(err) == ladle.KindNotFound {
				http.NotFound(w, r)
				return
			}
			log.ErrorContext(r.Context(), "serving image", "key", key, "err", err)
			http.Error(w, "image storage is unavailable", http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		// The type comes from the key, which Save derived from the encoder:
		// never from stored metadata, and never sniffed by the browser.
		if strings.HasSuffix(key, ".jpg") {
			h.Set("Content-Type", "image/jpeg")
		} else {
			h.Set("Content-Type", "image/png")
		}
		h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
		h.Set("ETag", etag)
		h.Set("Cache-Control", string(httpcache.Immutable))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		if body == nil {
			return
		}
		defer body.Close()
		if _, err := io.Copy(w, body); err != nil {
			log.WarnContext(r.Context(), "sending image", "key", key, "err", err)
		}
	})
}
