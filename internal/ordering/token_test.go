package ordering_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/ordering"
)

// Access tokens are derived, not stored: the same secret gives the same
// token in every process (the receipt worker mints links), another secret or
// another order gives another, and a wrong token reads as "no such order".
func TestAccessTokens(t *testing.T) {
	a := ordering.New(nil, nil, []byte("secret-one-secret-one"))
	b := ordering.New(nil, nil, []byte("secret-one-secret-one"))
	c := ordering.New(nil, nil, []byte("secret-two-secret-two"))
	tok := a.AccessToken("order-1")
	if len(tok) < 40 || tok != b.AccessToken("order-1") {
		t.Fatalf("token %q is not stable across processes", tok)
	}
	if tok == c.AccessToken("order-1") || tok == a.AccessToken("order-2") {
		t.Fatal("token does not depend on the secret and the order")
	}
	if _, err := a.GuestOrder(context.Background(), "order-1", tok[:len(tok)-1]); ladle.ErrorCode(err) != ladle.CodeNotFound {
		t.Fatalf("a wrong token: %v", err)
	}
	u, err := url.Parse(ordering.StatusURL("order-1", tok))
	if err != nil || u.Path != "/orders/order-1" || u.Query().Get("token") != tok || strings.Contains(u.RawQuery, "+") {
		t.Fatalf("status URL %v %v", u, err)
	}
}
