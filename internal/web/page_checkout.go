package web

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
)

// checkoutPage is the checkout form, fresh or re-rendered after a refused
// attempt with everything the guest typed.
type checkoutPage struct {
	page
	Restaurant *ladle.Restaurant
	Data       clientMenu
	Form       checkoutForm
	// Errors are per-field messages, keyed by form field name ("email",
	// "cart", …); Notice is a message for the whole form.
	Errors map[string]string
	Notice string
	// Key is the Idempotency-Key of this attempt. RotateKey tells the page's
	// JS to start a new attempt (new key) instead of reusing the one kept
	// in sessionStorage: after a declined card, a refused order, or a
	// duplicate the guest may confirm. Without JS, Key itself is fresh then.
	Key       string
	RotateKey bool
	// Duplicate is set when the order looks like one just placed.
	Duplicate *duplicateView
	// SoldOut lists items the JS must drop from the cart.
	SoldOut []int64
	Slots   []pickupSlot
	// Closed words why ASAP is not offered now ("" when open); the
	// ASAP option is then disabled and a slot preselected.
	Closed string
	// Quote is the server's quote of the form (the no-JS "Apply" button);
	// nil until asked.
	Quote *ladle.Quote
	// Fresh is a first rendering (GET): the JS may restore the guest's
	// draft from sessionStorage (a reload keeps what they typed).
	Fresh bool
}

// checkoutForm is the checkout form's fields, as typed.
type checkoutForm struct {
	Name, Email, Phone string
	Pickup             string // "asap" or an RFC 3339 time (one of Slots)
	Coupon, Tip        string
	Marketing          bool
	Payment            string // "card" or "pay_at_pickup"
	CardToken          string
	Cart               string // JSON: [{"item_id":1,"quantity":2,"modifier_ids":[3]}]
}

// duplicateView is the "a similar order was just placed" dialog. It has no
// fields on purpose: nothing about the other order reaches this page.
type duplicateView struct{}

type pickupSlot struct {
	Value, Label string
	Full         bool
}

// handleCheckout shows the checkout form. Its cart field is filled by the
// page's JS from the cart in localStorage.
func (s *server) handleCheckout(w http.ResponseWriter, r *http.Request) {
	rest, err := s.Store.RestaurantBySlug(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	form := checkoutForm{Pickup: "asap", Payment: "card", CardToken: payment.TokenVisa, Cart: "[]"}
	s.renderCheckout(w, r, http.StatusOK, rest, &checkoutPage{Form: form, Key: newKey(), Fresh: true})
}

// renderCheckout fills the parts of the page every rendering shares.
func (s *server) renderCheckout(w http.ResponseWriter, r *http.Request, status int, rest *ladle.Restaurant, p *checkoutPage) {
	menu, err := s.Menus.Menu(r.Context(), rest.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.page = page{Title: "Checkout · " + rest.Name}
	p.Restaurant = rest
	p.Data = newClientMenu(rest, menu)
	now, loc := s.Now(), rest.Location()
	hours, err := s.Store.Hours(r.Context(), rest.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var usage []ladle.SlotUsage
	if hours.Capped() {
		if usage, err = s.Store.SlotUsage(r.Context(), rest.ID, now, now.Add(ladle.MaxPickupAhead)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	p.Slots = pickupSlots(hours, usage, now, loc, p.Form.Pickup)
	if p.Closed = openLabel(hours.StatusAt(now, loc), now, loc); p.Closed != "" && p.Form.Pickup == "asap" {
		for _, sl := range p.Slots {
			if !sl.Full {
				p.Form.Pickup = sl.Value
				break
			}
		}
	}
	if p.Errors == nil {
		p.Errors = map[string]string{}
	}
	s.render(w, r, status, "checkout.html", p)
}

// maxSlotChoices bounds the pickup menu: the first this many open slots.
const maxSlotChoices = 48

// pickupSlots offers the restaurant's open pickup slots (ladle.Hours.Slots:
// from now plus the preparation time, open hours only), the first
// maxSlotChoices of them, labelled in the restaurant's time zone and sent
// as RFC 3339 UTC; a full slot is listed but disabled. A time the guest
// already picked stays selectable on a re-render even if it has scrolled
// out of the list.
func pickupSlots(h *ladle.Hours, usage []ladle.SlotUsage, now time.Time, loc *time.Location, picked string) []pickupSlot {
	var slots []pickupSlot
	found := picked == "asap" || picked == ""
	for _, ps := range h.Slots(now, now.Add(ladle.MaxPickupAhead), loc, usage) {
		if len(slots) == maxSlotChoices {
			break
		}
		v := ps.Start.UTC().Format(time.RFC3339)
		found = found || v == picked
		slots = append(slots, pickupSlot{Value: v, Label: dayLabel(ps.Start, now, loc), Full: !ps.Available})
	}
	if !found {
		if t, err := time.Parse(time.RFC3339, picked); err == nil {
			slots = append([]pickupSlot{{Value: picked, Label: dayLabel(t, now, loc)}}, slots...)
		}
	}
	return slots
}

// openLabel words an OpenStatus for the guest: "" when open.
func openLabel(st ladle.OpenStatus, now time.Time, loc *time.Location) string {
	if st.Open {
		return ""
	}
	msg := "Closed now"
	if st.Reason == "paused" {
		msg = "Online ordering is paused"
	}
	if st.NextOpen != nil {
		msg += " · opens " + dayLabel(*st.NextOpen, now, loc)
	}
	return msg
}

func dayLabel(t, now time.Time, loc *time.Location) string {
	lt, ln := t.In(loc), now.In(loc)
	switch {
	case lt.Year() == ln.Year() && lt.YearDay() == ln.YearDay():
		return "Today " + lt.Format("3:04 PM")
	case lt.Sub(ln) < 48*time.Hour && lt.YearDay() == ln.AddDate(0, 0, 1).YearDay():
		return "Tomorrow " + lt.Format("3:04 PM")
	default:
		return lt.Format("Mon Jan 2, 3:04 PM")
	}
}

// newKey returns a random UUID (version 4), the same shape as the browser's
// crypto.randomUUID(): the key a guest without JS posts.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
