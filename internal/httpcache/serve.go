package httpcache

import (
	"net/http"
	"strconv"
	"time"
)

// Serve writes a versioned representation: 304 when the request's
// If-None-Match matches etag, otherwise 200 with body. Either way the
// response carries ETag and Cache-Control (cc), as RFC 9110 asks of a 304.
// HEAD gets the headers of the 200 without the body. body is written as is,
// so a cache can hand over bytes it encoded once.
//
// Serve sets headers by their canonical keys directly: on the hot path of
// the menu it is most of what the handler does.
func Serve(w http.ResponseWriter, r *http.Request, etag string, cc Policy, contentType string, body []byte) {
	if NotModified(w, r, etag, cc) {
		return
	}
	h := w.Header()
	h["Etag"] = []string{etag}
	h["Cache-Control"] = []string{string(cc)}
	h["Content-Type"] = []string{contentType}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body) // a write error is the client going away
	}
}

// ServeJSONVersioned is Serve for a public JSON document: the menu API's
// handler is one call,
//
//	doc, err := cache.DocumentBySlug(ctx, slug)
//	…
//	httpcache.ServeJSONVersioned(w, r, doc.ETag, httpcache.MenuMaxAge, httpcache.MenuSWR, doc.JSON)
func ServeJSONVersioned(w http.ResponseWriter, r *http.Request, etag string, maxAge, swr time.Duration, body []byte) {
	cc := MenuPolicy
	if maxAge != MenuMaxAge || swr != MenuSWR {
		cc = Public(maxAge, swr)
	}
	Serve(w, r, etag, cc, "application/json", body)
}
