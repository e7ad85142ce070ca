package web

import (
	"net/http"

	"github.com/ladle-dev/ladle/internal/auth"
)

// crossOrigin builds the CSRF protection with a page that explains the
// refusal instead of a bare 403.
func crossOrigin(s *server) (*http.CrossOriginProtection, error) {
	deny := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Logger.Warn("web: cross-origin request refused", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		s.errorPage(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site, so we did not act on it. Go back to the page and try again.")
	})
	return auth.CrossOrigin(s.TrustedOrigins, deny)
}
