package ladle

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hours is when a restaurant takes orders, and how much its kitchen can
// cook per pickup slot. Wall-clock times are in the restaurant's time zone
// (Restaurant.Location), so opening at 11:00 stays 11:00 across daylight
// saving changes.
//
// A restaurant whose Weekly is empty takes orders around the clock (every
// restaurant starts that way); closures and a pause still apply.
type Hours struct {
	// Weekly lists the opening ranges; a day may have several, and a range
	// whose Close is not after its Open runs overnight into the next day.
	Weekly []OpenRange `json:"weekly"`
	// Closures are whole local days without orders (holidays), whatever
	// Weekly says: a range running overnight into one ends at its
	// midnight, and a range opening on one does not open at all (its
	// overnight part included).
	Closures []Closure `json:"closures"`
	// PausedUntil, while in the future, stops all new orders (the board's
	// "pause online ordering" switch). Not part of the document SetHours
	// writes: it has its own switch.
	PausedUntil *time.Time `json:"paused_until,omitempty"`
	// SlotMinutes is the length of a pickup slot (5, 10, 15, 20, 30 or 60);
	// slots start at multiples of it on the restaurant's wall clock
	// (counted from local midnight), so at :00/:15/:30/:45 local time in
	// every zone, Asia/Kathmandu's +05:45 included.
	SlotMinutes int `json:"slot_minutes"`
	// SlotOrders and SlotItems cap what one slot takes: orders, and items
	// (the sum of line quantities). 0 is no cap.
	SlotOrders int `json:"slot_orders"`
	SlotItems  int `json:"slot_items"`
	// PrepMinutes is how long the kitchen needs for an order: an ASAP order
	// is ready that long after it is placed at the earliest, no pickup
	// slot sooner than that is offered, and a scheduled order for a pickup
	// time sooner than that is refused (pickup_too_soon).
	PrepMinutes int `json:"prep_minutes"`
}

// OpenRange is one opening range of one weekday.
type OpenRange struct {
	Day   time.Weekday `json:"day"` // 0 Sunday … 6 Saturday
	Open  DayTime      `json:"open"`
	Close DayTime      `json:"close"` // not after Open: overnight
}

// Closure is a local date without orders.
type Closure struct {
	Date string `json:"date"` // YYYY-MM-DD
	Note string `json:"note,omitempty"`
}

// DayTime is a wall-clock time as minutes after midnight, 0 to 1440
// ("24:00", a closing time only). JSON: "HH:MM".
type DayTime int

// String formats t as "HH:MM".
func (t DayTime) String() string { return fmt.Sprintf("%02d:%02d", int(t)/60, int(t)%60) }

// ParseDayTime reads "H:MM" or "HH:MM", 00:00 to 24:00.
func ParseDayTime(s string) (DayTime, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || len(h) < 1 || len(h) > 2 ||
		hh < 0 || mm < 0 || mm > 59 || hh*60+mm > 24*60 {
		return 0, fmt.Errorf("%q is not a time like 09:30", s)
	}
	return DayTime(hh*60 + mm), nil
}

// MarshalJSON implements json.Marshaler.
func (t DayTime) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (t *DayTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDayTime(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Default ordering settings of a restaurant that never set its hours.
const (
	DefaultSlotMinutes = 15
	DefaultPrepMinutes = 15
	MaxOpenRanges      = 28
	MaxClosures        = 100
	MaxPauseMinutes    = 24 * 60
	// asapSlots bounds how far an ASAP order looks for a slot with room:
	// past that the kitchen is full, and the guest is told to pick a time.
	asapSlots = 16
)

// DefaultHours is the schedule of a restaurant that never set one: open
// around the clock, 15-minute slots without caps, 15 minutes' preparation.
func DefaultHours() *Hours {
	return &Hours{Weekly: []OpenRange{}, Closures: []Closure{}, SlotMinutes: DefaultSlotMinutes, PrepMinutes: DefaultPrepMinutes}
}

// SlotLengths are the slot lengths Validate accepts, in minutes.
var SlotLengths = []int{5, 10, 15, 20, 30, 60}

// Validate checks h and returns field → message, empty when valid. Keys are
// "weekly", "weekly[i]", "closures[i]", "slot_minutes", "slot_orders",
// "slot_items", "prep_minutes".
func (h *Hours) Validate() map[string]string {
	errs := map[string]string{}
	if len(h.Weekly) > MaxOpenRanges {
		errs["weekly"] = fmt.Sprintf("must have at most %d ranges", MaxOpenRanges)
	}
	for i, r := range h.Weekly {
		at := "weekly[" + strconv.Itoa(i) + "]"
		switch {
		case r.Day < time.Sunday || r.Day > time.Saturday:
			errs[at] = "has no such weekday"
		case r.Open < 0 || r.Open >= 24*60:
			errs[at] = "must open between 00:00 and 23:59"
		case r.Close < 0 || r.Close > 24*60:
			errs[at] = "must close between 00:00 and 24:00"
		case r.Close == r.Open:
			errs[at] = "opens and closes at the same time (for all day use 00:00–24:00)"
		}
		if errs[at] != "" {
			continue
		}
		for j, o := range h.Weekly[:i] {
			if o.Day == r.Day && r.Open < o.end() && o.Open < r.end() {
				errs[at] = fmt.Sprintf("overlaps %s %s–%s", r.Day, h.Weekly[j].Open, h.Weekly[j].Close)
				break
			}
		}
	}
	if len(h.Closures) > MaxClosures {
		errs["closures"] = fmt.Sprintf("must have at most %d dates", MaxClosures)
	}
	seen := map[string]bool{}
	for i, c := range h.Closures {
		at := "closures[" + strconv.Itoa(i) + "]"
		if _, err := time.Parse(time.DateOnly, c.Date); err != nil {
			errs[at] = fmt.Sprintf("%q is not a date like 2026-12-25", c.Date)
		} else if seen[c.Date] {
			errs[at] = c.Date + " is listed twice"
		} else if msg := CheckText(c.Note, TextRule{Max: 100}); msg != "" {
			errs[at] = "note " + msg
		}
		seen[c.Date] = true
	}
	if !slices.Contains(SlotLengths, h.SlotMinutes) {
		errs["slot_minutes"] = "must be 5, 10, 15, 20, 30 or 60"
	}
	if h.SlotOrders < 0 || h.SlotOrders > 10_000 {
		errs["slot_orders"] = "must be between 0 (no cap) and 10000"
	}
	if h.SlotItems < 0 || h.SlotItems > 100_000 {
		errs["slot_items"] = "must be between 0 (no cap) and 100000"
	}
	if h.PrepMinutes < 0 || h.PrepMinutes > 240 {
		errs["prep_minutes"] = "must be between 0 and 240"
	}
	return errs
}

// end is the range's close in minutes after its opening day's midnight
// (past 1440 when it runs overnight).
func (r OpenRange) end() DayTime {
	if r.Close <= r.Open {
		return r.Close + 24*60
	}
	return r.Close
}

// Normalize sorts the ranges by day and opening time and the closures by
// date, so the document reads the same however it was entered.
func (h *Hours) Normalize() {
	slices.SortFunc(h.Weekly, func(a, b OpenRange) int {
		if a.Day != b.Day {
			return int(a.Day - b.Day)
		}
		return int(a.Open - b.Open)
	})
	slices.SortFunc(h.Closures, func(a, b Closure) int { return strings.Compare(a.Date, b.Date) })
}

// Paused reports whether online ordering is paused at now.
func (h *Hours) Paused(now time.Time) bool { return h.PausedUntil != nil && now.Before(*h.PausedUntil) }

// closed reports whether t's local date is a closure.
func (h *Hours) closed(lt time.Time) bool {
	d := lt.Format(time.DateOnly)
	for _, c := range h.Closures {
		if c.Date == d {
			return true
		}
	}
	return false
}

// at returns the instant of wall-clock minute m on local date (y, mo, d);
// minutes past 1440 fall on the next day. A wall time that does not exist
// (inside a spring-forward gap) is the instant the clocks jump, the first
// at which the wall clock is past it.
func at(y int, mo time.Month, d int, m DayTime, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, int(m)/60, int(m)%60, 0, 0, loc)
	if lt := t.In(loc); lt.Hour()*60+lt.Minute() != int(m)%(24*60) {
		_, end := lt.ZoneBounds()
		if !end.IsZero() {
			return end
		}
	}
	return t
}

// OpenAt reports whether the schedule (weekly ranges and closures; not the
// pause) takes orders for time t.
func (h *Hours) OpenAt(t time.Time, loc *time.Location) bool {
	lt := t.In(loc)
	if h.closed(lt) {
		return false
	}
	if len(h.Weekly) == 0 {
		return true
	}
	y, mo, d := lt.Date()
	for back := 0; back <= 1; back++ { // ranges opened today, and overnight ones opened yesterday
		prev := lt.AddDate(0, 0, -back)
		if back == 1 && h.closed(prev) {
			continue // a closed day's overnight range never opened
		}
		day := prev.Weekday()
		for _, r := range h.Weekly {
			if r.Day != day {
				continue
			}
			open, end := at(y, mo, d-back, r.Open, loc), at(y, mo, d-back, r.end(), loc)
			if !t.Before(open) && t.Before(end) {
				return true
			}
		}
	}
	return false
}

// NextOpen returns the first instant at or after t when the schedule takes
// orders (the pause aside), looking up to 15 days ahead; false when it
// never does in that time.
func (h *Hours) NextOpen(t time.Time, loc *time.Location) (time.Time, bool) {
	if h.OpenAt(t, loc) {
		return t, true
	}
	// The schedule only turns open at a range's opening or at a local
	// midnight (the end of a closure): try those in time order.
	lt := t.In(loc)
	y, mo, d := lt.Date()
	var cands []time.Time
	for i := -1; i <= 15; i++ {
		cands = append(cands, time.Date(y, mo, d+i, 0, 0, 0, 0, loc))
		for _, r := range h.Weekly {
			if lt.AddDate(0, 0, i).Weekday() == r.Day {
				cands = append(cands, at(y, mo, d+i, r.Open, loc))
			}
		}
	}
	slices.SortFunc(cands, func(a, b time.Time) int { return a.Compare(b) })
	for _, c := range cands {
		if c.After(t) && h.OpenAt(c, loc) {
			return c.UTC(), true
		}
	}
	return time.Time{}, false
}

// CodeRestaurantClosed and CodeSlotFull are the errors of an order the
// schedule refuses.
const (
	CodeRestaurantClosed = "restaurant_closed"
	CodeSlotFull         = "slot_full"
)

// closedError is 422 restaurant_closed with the next opening time
// (Extra "next_open", RFC 3339 UTC, absent when none is known) and why
// ("reason": closed, closure or paused).
func closedError(reason, msg string, next time.Time, ok bool, loc *time.Location, field string) *Error {
	e := &Error{Kind: KindUnprocessable, Code: CodeRestaurantClosed, Extra: map[string]any{"reason": reason}}
	if ok {
		e.Extra["next_open"] = next.UTC().Format(time.RFC3339)
		msg += " Orders open again " + next.In(loc).Format("Mon Jan 2, 3:04 PM MST") + "."
	}
	e.Message = msg
	if field != "" {
		e.Fields = map[string]string{field: "is outside the opening hours"}
	}
	return e
}

// Check decides whether an order placed at now for pickup (nil: ASAP) is
// taken, and returns a restaurant_closed error if not: while paused, every
// order; an ASAP order when the schedule is closed at now; a scheduled one
// when it is closed at the pickup time (ordering ahead while closed is
// fine).
func (h *Hours) Check(now time.Time, pickup *time.Time, loc *time.Location) error {
	if h.Paused(now) {
		next, ok := h.NextOpen(*h.PausedUntil, loc)
		return closedError("paused", "The restaurant has paused online ordering for a short while.", next, ok, loc, "")
	}
	if pickup == nil {
		if h.OpenAt(now, loc) {
			return nil
		}
		reason := "closed"
		if h.closed(now.In(loc)) {
			reason = "closure"
		}
		next, ok := h.NextOpen(now, loc)
		return closedError(reason, "The restaurant is closed now.", next, ok, loc, "")
	}
	if h.OpenAt(*pickup, loc) {
		return nil
	}
	reason := "closed"
	if h.closed(pickup.In(loc)) {
		reason = "closure"
	}
	next, ok := h.NextOpen(*pickup, loc)
	return closedError(reason, "The restaurant is closed at that pickup time.", next, ok, loc, "fulfillment.time")
}

// Capped reports whether slots have a capacity (orders or items).
func (h *Hours) Capped() bool { return h.SlotOrders > 0 || h.SlotItems > 0 }

func (h *Hours) slotLen() time.Duration {
	if h.SlotMinutes <= 0 {
		return DefaultSlotMinutes * time.Minute
	}
	return time.Duration(h.SlotMinutes) * time.Minute
}

// SlotOf returns the start of the slot t falls in: slots are aligned to
// the wall clock in loc (at t's offset), not to UTC, so 60-minute slots
// start at 12:00 local in Asia/Kolkata (+05:30), not at 12:30.
func (h *Hours) SlotOf(t time.Time, loc *time.Location) time.Time {
	_, off := t.In(loc).Zone()
	shift := time.Duration(off) * time.Second
	// t+shift read as UTC is the local wall clock; truncating it aligns
	// to local midnight (Truncate counts from a UTC midnight).
	return t.UTC().Add(shift).Truncate(h.slotLen()).Add(-shift)
}

// nextSlot is the start of the slot after the one starting at s. Across a
// change of offset that is not a multiple of the slot length (Lord Howe's
// half-hour daylight saving) it realigns to the new wall clock.
func (h *Hours) nextSlot(s time.Time, loc *time.Location) time.Time {
	n := h.SlotOf(s.Add(h.slotLen()), loc)
	if !n.After(s) {
		return s.Add(h.slotLen())
	}
	return n
}

// SlotUsage is what a slot has taken so far.
type SlotUsage struct {
	Start  time.Time `json:"start"`
	Orders int       `json:"orders"`
	Items  int       `json:"items"`
}

// Fits reports whether one more order of items items fits in a slot that
// has taken u.
func (h *Hours) Fits(u SlotUsage, items int) bool {
	return (h.SlotOrders == 0 || u.Orders < h.SlotOrders) && (h.SlotItems == 0 || u.Items+items <= h.SlotItems)
}

// PickupPlan is where an order goes: the slot it counts against (zero when
// slots are uncapped) and, for ASAP, when it should be ready.
type PickupPlan struct {
	Slot  time.Time  // zero: nothing to count
	Items int        // the order's item count, counted against Slot
	Ready *time.Time // ASAP only
	// Candidates are the slots to try in order (ASAP: the first with
	// room wins; scheduled: exactly one).
	Candidates []time.Time
}

// Plan checks the schedule (Check) and the order's size against a slot,
// and returns the slots the order may take. It does not look at usage.
func (h *Hours) Plan(now time.Time, pickup *time.Time, items int, loc *time.Location) (*PickupPlan, error) {
	if err := h.Check(now, pickup, loc); err != nil {
		return nil, err
	}
	p := &PickupPlan{Items: items}
	if h.SlotItems > 0 && items > h.SlotItems {
		return nil, &Error{Kind: KindInvalid, Code: CodeValidation,
			Message: fmt.Sprintf("the order has more items than the kitchen takes for one pickup time (%d)", h.SlotItems),
			Fields:  map[string]string{"lines": fmt.Sprintf("must have at most %d items in all; call the restaurant for larger orders", h.SlotItems)}}
	}
	ready := h.Earliest(now)
	if pickup != nil {
		if pickup.Before(ready) {
			return nil, pickupTooSoon(ready, loc)
		}
		if h.Capped() {
			p.Candidates = []time.Time{h.SlotOf(*pickup, loc)}
		}
		return p, nil
	}
	p.Ready = &ready
	if h.Capped() {
		for s := h.SlotOf(ready, loc); len(p.Candidates) < asapSlots; s = h.nextSlot(s, loc) {
			p.Candidates = append(p.Candidates, s)
		}
	}
	return p, nil
}

// Earliest is the earliest pickup time of an order placed at now: now plus
// the preparation time.
func (h *Hours) Earliest(now time.Time) time.Time {
	return now.Add(time.Duration(h.PrepMinutes) * time.Minute).UTC()
}

// CodePickupTooSoon is a scheduled order whose pickup time is sooner than
// the kitchen's preparation time allows.
const CodePickupTooSoon = "pickup_too_soon"

// pickupTooSoon is 422 pickup_too_soon with the earliest pickup time
// (Extra "earliest_pickup", RFC 3339 UTC). The store adds the next slots
// with room (WithNextAvailable).
func pickupTooSoon(earliest time.Time, loc *time.Location) *Error {
	return &Error{Kind: KindUnprocessable, Code: CodePickupTooSoon,
		Message: "That pickup time is too soon for the kitchen; the earliest is " +
			earliest.In(loc).Format("Mon Jan 2, 3:04 PM MST") + ".",
		Fields: map[string]string{"fulfillment.time": "is sooner than the preparation time allows"},
		Extra:  map[string]any{"earliest_pickup": earliest.UTC().Format(time.RFC3339)}}
}

// Take records that the order took candidate slot s: an ASAP order pushed
// to a later slot by the kitchen's load is ready when that slot starts.
func (p *PickupPlan) Take(s time.Time) {
	p.Slot = s
	if p.Ready != nil && p.Ready.Before(s) {
		r := s
		p.Ready = &r
	}
}

// SlotFull is 409 slot_full for a plan none of whose candidates has room,
// naming up to three later slots that do (Extra "next_available", RFC 3339).
func SlotFull(p *PickupPlan, next []PickupSlot) *Error {
	msg := "That pickup time is fully booked; choose another."
	if p.Ready != nil {
		msg = "The kitchen is fully booked for the next while; choose a later pickup time."
	}
	return WithNextAvailable(&Error{Kind: KindConflict, Code: CodeSlotFull, Message: msg,
		Fields: map[string]string{"fulfillment.time": "is fully booked"}}, next)
}

// WithNextAvailable adds up to three slots to e (Extra "next_available",
// RFC 3339 UTC) and returns it.
func WithNextAvailable(e *Error, next []PickupSlot) *Error {
	avail := []string{}
	for _, s := range next {
		if len(avail) == 3 {
			break
		}
		avail = append(avail, s.Start.UTC().Format(time.RFC3339))
	}
	if e.Extra == nil {
		e.Extra = map[string]any{}
	}
	e.Extra["next_available"] = avail
	return e
}

// PickupSlot is one slot a guest may pick.
type PickupSlot struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// RemainingOrders and RemainingItems are nil when uncapped.
	RemainingOrders *int `json:"remaining_orders,omitempty"`
	RemainingItems  *int `json:"remaining_items,omitempty"`
	Available       bool `json:"available"`
}

// Slots lists the open slots starting from the first a new order could be
// ready for (now plus preparation) until `until`, with what remains of each
// given usage (slots absent from it are empty). A slot is open if the
// schedule takes orders at its start; while paused, slots before the pause
// ends are left out.
func (h *Hours) Slots(now, until time.Time, loc *time.Location, usage []SlotUsage) []PickupSlot {
	used := make(map[int64]SlotUsage, len(usage))
	for _, u := range usage {
		used[u.Start.UnixMicro()] = u
	}
	from := h.Earliest(now)
	if h.Paused(now) && h.PausedUntil.After(from) {
		from = *h.PausedUntil
	}
	s := h.SlotOf(from, loc)
	if s.Before(from) {
		s = h.nextSlot(s, loc)
	}
	var out []PickupSlot
	for ; s.Before(until); s = h.nextSlot(s, loc) {
		if !h.OpenAt(s, loc) {
			continue
		}
		u := used[s.UnixMicro()]
		ps := PickupSlot{Start: s, End: h.nextSlot(s, loc), Available: h.Fits(u, 1)}
		if h.SlotOrders > 0 {
			n := max(h.SlotOrders-u.Orders, 0)
			ps.RemainingOrders = &n
		}
		if h.SlotItems > 0 {
			n := max(h.SlotItems-u.Items, 0)
			ps.RemainingItems = &n
		}
		out = append(out, ps)
	}
	return out
}

// ItemCount is the number of items an order request asks for (the sum of
// its quantities), what SlotItems caps.
func (r *OrderRequest) ItemCount() int {
	n := 0
	for _, l := range r.Lines {
		n += l.Quantity
	}
	return n
}

// OpenStatus is whether a restaurant takes ASAP orders now, for the
// storefront and the slots API.
type OpenStatus struct {
	Open bool `json:"open"`
	// Reason is why not: "closed", "closure" or "paused".
	Reason   string     `json:"reason,omitempty"`
	NextOpen *time.Time `json:"next_open,omitempty"`
}

// StatusAt tells whether an ASAP order placed at now would be taken (as
// Check decides) and, if not, why and when that changes.
func (h *Hours) StatusAt(now time.Time, loc *time.Location) OpenStatus {
	err := h.Check(now, nil, loc)
	if err == nil {
		return OpenStatus{Open: true}
	}
	e := err.(*Error)
	st := OpenStatus{Reason: e.Extra["reason"].(string)}
	if s, ok := e.Extra["next_open"].(string); ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			st.NextOpen = &t
		}
	}
	return st
}
