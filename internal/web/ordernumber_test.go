package web

import (
	"net/http"
	"slices"
	"testing"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
)

// TestDeclinedCardTakesNoOrderNumber: a card declined at checkout leaves no
// gap in the restaurant's order numbers (they are given at capture,
// sqlstore/payments.go): the guests after it get the next numbers, the
// board shows no missing one, and the declined attempt has none.
func TestDeclinedCardTakesNoOrderNumber(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()
		c.post(e.checkoutPath(), e.checkoutForm("first@example.com", newKey())).want(t, http.StatusSeeOther)
		declined := e.checkoutForm("second@example.com", newKey())
		declined.Set("card_token", payment.TokenDecline)
		c.post(e.checkoutPath(), declined).want(t, http.StatusPaymentRequired, "This card was declined.")
		third := e.checkoutForm("third@example.com", newKey())
		third.Set("name", "Third Guest")
		placed := c.post(e.checkoutPath(), third)
		placed.want(t, http.StatusSeeOther)
		c.get(placed.header.Get("Location")).want(t, http.StatusOK, "Thanks! Your order #2 is placed")

		var numbers []int64
		failed := 0
		for _, o := range e.orders(e.fx.Restaurant.ID) {
			switch o.Status {
			case ladle.StatusPaymentFailed:
				failed++
				if o.Number != 0 {
					t.Errorf("the declined order took number %d", o.Number)
				}
			default:
				numbers = append(numbers, o.Number)
			}
		}
		slices.Sort(numbers)
		if failed != 1 || !slices.Equal(numbers, []int64{1, 2}) {
			t.Fatalf("%d declined orders, numbers %v: want 1 declined and numbers 1, 2 with no gap", failed, numbers)
		}

		staff := e.client()
		staff.login(e.staffA)
		board := staff.get("/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders")
		board.want(t, http.StatusOK, `title="Order details">#1</a>`, `title="Order details">#2</a>`)
		board.wantNot(t, `title="Order details">#3</a>`, `title="Order details">#0</a>`)
	})
}
