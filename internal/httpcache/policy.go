package httpcache

import (
	"strconv"
	"time"
)

// Policy is a Cache-Control header value.
type Policy string

const (
	// Immutable is for content-addressed or fingerprinted resources: the URL
	// changes whenever the bytes do, so any cache may keep them for a year
	// and never revalidate.
	Immutable Policy = "public, max-age=31536000, immutable"
	// NoStore is for private data that must not be kept anywhere: pages and
	// answers that depend on who is logged in, orders, receipts.
	NoStore Policy = "no-store"
	// PrivateRevalidate lets the user's own browser keep a private response
	// but makes it ask (with If-None-Match) before every reuse; shared caches
	// never keep it.
	PrivateRevalidate Policy = "private, no-cache"
	// Revalidate is for public resources with a stable URL whose bytes may
	// change (an unfingerprinted asset): cacheable, but checked every time.
	Revalidate Policy = "public, no-cache"
)

// Defaults for the public menu (API document and storefront page). A guest
// may see a menu up to MenuMaxAge old without a request; for MenuSWR beyond
// that a cache may show the stale copy while it revalidates in the
// background. Both are short because prices change: checkout always prices
// from the database, so a stale display can never change a charge.
const (
	MenuMaxAge = 5 * time.Second
	MenuSWR    = 60 * time.Second
)

// Public is the policy for public data that may be a little stale:
// "public, max-age=<maxAge>, stale-while-revalidate=<swr>" (RFC 5861), in
// whole seconds; a zero swr leaves that directive out. Never use it for a
// response that depends on cookies or Authorization.
func Public(maxAge, swr time.Duration) Policy {
	b := make([]byte, 0, 64)
	b = append(b, "public, max-age="...)
	b = strconv.AppendInt(b, int64(max(maxAge, 0)/time.Second), 10)
	if swr > 0 {
		b = append(b, ", stale-while-revalidate="...)
		b = strconv.AppendInt(b, int64(swr/time.Second), 10)
	}
	return Policy(b)
}

// MenuPolicy is Public(MenuMaxAge, MenuSWR), computed once.
var MenuPolicy = Public(MenuMaxAge, MenuSWR)
