package web

import (
	"net/http"
	"strings"
	"testing"
)

// TestCheckoutHostileInput: the checkout form goes through the same input
// policy as the API. Every hostile value is refused with a 4xx page (never a
// 5xx), no order is created, and the form's key still places the order once
// the form is fixed.
func TestCheckoutHostileInput(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()
		cases := []struct {
			field, value, message string
		}{
			{"name", "Ada\x00Lovelace", "Name must not contain control characters."},
			{"name", "Ada\xffLovelace", "Name is not valid UTF-8."},
			{"name", "Ada\xed\xa0\x80Lovelace", "Name is not valid UTF-8."},
			{"name", "Ada\r\nBcc: eve@example.com", "Name must be a single line."},
			{"name", "\u202eAda", "Name must not contain bidirectional controls or byte order marks."},
			{"name", "Ada\ufeff", "Name must not contain bidirectional controls"},
			{"email", "ada@example", "Email needs a domain name with a dot"},
			{"email", "ada\xc0\xaf@example.com", "Email is not valid UTF-8."},
			{"email", "ada\x00@example.com", "Email must not contain control characters."},
			{"phone", "555\x000100", "Phone must not contain control characters."},
			{"coupon", "SAVE\x0010", "Coupon code must not contain control characters."},
			{"coupon", "SAVE\xc3\x2810", "Coupon code is not valid UTF-8."},
			{"card_token", "tok_\x00visa", "Card must not contain control characters."},
			{"card_token", "tok_visä", "Card must be printable ASCII."},
			{"tip", "99999.99", "Tip must be between"},
			{"tip", "40.00", "Tip must not be more than the subtotal"},
			{"cart", `[{"item_id":1,"quantity":1,"note":"\ud800"}]`, "Your cart could not be read."},
			{"cart", "[{\"item_id\":1,\"quantity\":1,\"note\":\"\xff\"}]", "Your cart could not be read."},
		}
		key := newKey()
		for _, tc := range cases {
			form := e.checkoutForm("ada@example.com", key)
			form.Set(tc.field, tc.value)
			res := c.post(e.checkoutPath(), form)
			if res.status < 400 || res.status >= 500 {
				t.Errorf("%s=%q: status %d", tc.field, tc.value, res.status)
				continue
			}
			if !strings.Contains(res.body, tc.message) {
				t.Errorf("%s=%q: page lacks %q", tc.field, tc.value, tc.message)
			}
		}
		for _, bad := range []string{"clé", "key\xff", strings.Repeat("k", 256)} {
			form := e.checkoutForm("ada@example.com", bad)
			res := c.post(e.checkoutPath(), form)
			res.want(t, http.StatusBadRequest, "Something interrupted your checkout.")
			if k := res.field(t, "idempotency_key"); !uuidRE.MatchString(k) {
				t.Errorf("bad key %q: the page gave key %q", bad, k)
			}
		}
		if n := len(e.orders(e.fx.Restaurant.ID)); n != 0 {
			t.Fatalf("%d orders after hostile forms, want 0", n)
		}
		c.post(e.checkoutPath(), e.checkoutForm("ada@example.com", key)).want(t, http.StatusSeeOther)
	})
}
