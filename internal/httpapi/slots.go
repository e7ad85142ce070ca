package httpapi

import (
	"net/http"
	"time"

	"github.com/ladle-dev/ladle"
)

// slotsResponse is GET /api/v1/restaurants/{slug}/pickup-slots.
type slotsResponse struct {
	TimeZone    string             `json:"time_zone"`
	SlotMinutes int                `json:"slot_minutes"`
	PrepMinutes int                `json:"prep_minutes"`
	Now         ladle.OpenStatus   `json:"now"`
	PausedUntil *time.Time         `json:"paused_until,omitempty"`
	Weekly      []ladle.OpenRange  `json:"weekly"`
	Closures    []ladle.Closure    `json:"closures"`
	Slots       []ladle.PickupSlot `json:"slots"`
}

// handlePickupSlots lists the open pickup slots of the next 7 days (from
// now plus the preparation time), each with what remains of its capacity
// (remaining_orders / remaining_items, absent when uncapped) and whether
// one more order fits; with whether the restaurant takes ASAP orders now
// and, if not, when it next does.
func handlePickupSlots(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := d.deadline(r.Context())
		defer cancel()
		rest, err := d.Store.RestaurantBySlug(ctx, r.PathValue("slug"))
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		h, err := d.Store.Hours(ctx, rest.ID)
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		now := d.Ordering.Now()
		until := now.Add(ladle.MaxPickupAhead)
		var usage []ladle.SlotUsage
		if h.Capped() {
			if usage, err = d.Store.SlotUsage(ctx, rest.ID, now, until); err != nil {
				writeError(w, r, d, err)
				return
			}
		}
		loc := rest.Location()
		slots := h.Slots(now, until, loc, usage)
		if slots == nil {
			slots = []ladle.PickupSlot{}
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, slotsResponse{TimeZone: loc.String(), SlotMinutes: h.SlotMinutes, PrepMinutes: h.PrepMinutes,
			Now: h.StatusAt(now, loc), PausedUntil: h.PausedUntil, Weekly: h.Weekly, Closures: h.Closures, Slots: slots})
	})
}
