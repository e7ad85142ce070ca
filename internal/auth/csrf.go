package auth

import (
	"net/http"
)

// CrossOrigin returns Go's CSRF protection (http.CrossOriginProtection): it
// refuses state-changing requests (every method but GET, HEAD, OPTIONS) that
// a browser marks as cross-site through Sec-Fetch-Site, or whose Origin is
// not the Host. trusted lists extra origins ("https://admin.example.com")
// allowed to post, deny renders the refusal (nil: a plain 403).
//
// It needs no token in forms, so server-rendered pages stay plain HTML; it
// relies on browsers sending Sec-Fetch-Site or Origin, which all current ones
// do. Requests with neither are not from a browser and carry no ambient
// credentials worth forging.
func CrossOrigin(trusted []string, deny http.Handler) (*http.CrossOriginProtection, error) {
	c := http.NewCrossOriginProtection()
	for _, o := range trusted {
		if err := c.AddTrustedOrigin(o); err != nil {
			return nil, err
		}
	}
	if deny != nil {
		c.SetDenyHandler(deny)
	}
	return c, nil
}
