package httpapi

import (
	"net/http"

	"github.com/ladle-dev/ladle/internal/httpcache"
)

// handleMenu is GET /api/v1/restaurants/{slug}/menu: the menu document,
// pre-encoded by the menu cache. A warm request touches no database, and a
// conditional one with the current ETag is a 304.
func handleMenu(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := d.deadline(r.Context())
		defer cancel()
		doc, err := d.Menus.DocumentBySlug(ctx, r.PathValue("slug"))
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		httpcache.ServeJSONVersioned(w, r, doc.ETag, httpcache.MenuMaxAge, httpcache.MenuSWR, doc.JSON)
	})
}
