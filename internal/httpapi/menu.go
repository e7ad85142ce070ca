package httpapi

import (
	"net/http"
	"strconv"

	"github.com/ladle-dev/ladle"
)

// handleMenu is GET /api/v1/restaurants/{slug}/menu: the menu document.
func handleMenu(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, err := d.Store.RestaurantBySlug(r.Context(), r.PathValue("slug"))
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		m, err := d.Menus.Menu(r.Context(), rest.ID)
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		etag := `"m` + strconv.FormatInt(rest.ID, 10) + "-" + strconv.FormatInt(m.Version, 10) + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "public, max-age=30, stale-while-revalidate=300")
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writeJSON(w, http.StatusOK, withImageURLs(m, d.ImageURL))
	})
}

// withImageURLs returns a copy of m whose items carry image URLs. The
// cached document is shared, so it is never written to.
func withImageURLs(m *ladle.Menu, url func(string) string) *ladle.Menu {
	out := *m
	out.Categories = make([]ladle.Category, len(m.Categories))
	for i, c := range m.Categories {
		c.Items = append([]ladle.Item(nil), c.Items...)
		for j := range c.Items {
			if c.Items[j].ImageKey != "" {
				c.Items[j].Image = url(c.Items[j].ImageKey)
			}
		}
		out.Categories[i] = c
	}
	return &out
}
