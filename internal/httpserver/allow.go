package httpserver

import (
	"net/http"
	"slices"
)

// AllowedMethods lists the methods, other than r's, whose requests to r's
// path mux routes to a handler of their own rather than to one of the
// catch-all patterns named: what a 405's Allow header lists. A mux with a
// catch-all (a pattern without a method, such as "/") never answers 405 by
// itself, as the catch-all takes every method; its handler asks this
// instead, and answers 405 when the list is not empty, 404 when it is.
func AllowedMethods(mux *http.ServeMux, r *http.Request, catchAll ...string) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := mux.Handler(probe); pattern != "" && !slices.Contains(catchAll, pattern) {
			allow = append(allow, m)
		}
	}
	return allow
}
