// Package httpcache holds the HTTP caching rules of Ladle in one place:
// entity tags built from versions, conditional GET (If-None-Match → 304),
// Cache-Control policies.
//
// The rules, from RFC 9110 and RFC 9111:
//   - An ETag names one representation. Ours are strong and derived from a
//     version that changes on every edit (the menu version), never from
//     hashing the body on each request, so checking one costs nothing.
//   - If-None-Match uses the weak comparison (W/ prefixes are ignored), may
//     hold a list, or "*"; a match on GET or HEAD is answered 304 with the
//     same ETag and Cache-Control the 200 would have carried.
//   - Only public data is ever publicly cacheable: pages or API answers that
//     depend on who asks use NoStore or PrivateRevalidate.
package httpcache

import (
	"net/http"
	"strconv"
	"strings"
)

// ETag returns a strong entity tag (quoted) made of parts joined by "-",
// e.g. ETag("menu", "v7") is `"menu-v7"`. Characters an entity tag may not
// hold (quotes, spaces, controls, non-ASCII) become "_", so any string is
// safe to pass.
func ETag(parts ...string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('-')
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			// etagc = %x21 / %x23-7E / obs-text; we keep to visible ASCII.
			if c == '"' || c <= 0x20 || c >= 0x7f {
				c = '_'
			}
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// VersionETag returns the strong entity tag of version `version` of the
// thing `kind` number id, e.g. VersionETag("menu", 3, 12) is `"menu-3-v12"`.
// kind must name the representation (a JSON document and an HTML page of
// the same version are different representations and need different tags).
func VersionETag(kind string, id, version int64) string {
	b := make([]byte, 0, len(kind)+32)
	b = append(b, '"')
	b = append(b, kind...)
	b = append(b, '-')
	b = strconv.AppendInt(b, id, 10)
	b = append(b, "-v"...)
	b = strconv.AppendInt(b, version, 10)
	b = append(b, '"')
	return string(b)
}

// NoneMatch reports whether the If-None-Match header value `header` matches
// etag under the weak comparison of RFC 9110 §8.8.3.2: "*" matches any
// current representation, and a list matches when any of its tags has the
// same opaque value as etag, with or without W/. An empty or malformed header
// matches nothing (a malformed list is read up to the first bad element).
func NoneMatch(header, etag string) bool {
	if header == "" || etag == "" {
		return false
	}
	want := opaque(etag)
	s := header
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return false
		}
		if s[0] == '*' {
			return true
		}
		if strings.HasPrefix(s, "W/") {
			s = s[2:]
		}
		if s == "" || s[0] != '"' {
			return false
		}
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return false
		}
		if s[1:1+end] == want {
			return true
		}
		s = s[end+2:]
	}
}

// opaque strips W/ and the quotes from an entity tag.
func opaque(etag string) string {
	etag = strings.TrimPrefix(etag, "W/")
	if len(etag) >= 2 && etag[0] == '"' && etag[len(etag)-1] == '"' {
		return etag[1 : len(etag)-1]
	}
	return etag
}

// NotModified answers a conditional GET or HEAD: when r's If-None-Match
// matches etag it writes 304 Not Modified with the ETag and Cache-Control
// (cc, if not empty) and returns true; the caller then writes nothing else.
// Otherwise it sets nothing and returns false. Other methods never get a
// 304 (RFC 9110 answers them 412, which none of our handlers need).
func NotModified(w http.ResponseWriter, r *http.Request, etag string, cc Policy) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	inm := r.Header["If-None-Match"]
	if len(inm) == 0 {
		return false
	}
	matched := false
	for _, v := range inm { // the header may be split over several lines
		if NoneMatch(v, etag) {
			matched = true
			break
		}
	}
	if !matched {
		return false
	}
	h := w.Header()
	h["Etag"] = []string{etag}
	if cc != "" {
		h["Cache-Control"] = []string{string(cc)}
	}
	w.WriteHeader(http.StatusNotModified)
	return true
}
