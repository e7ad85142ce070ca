package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
)

// hoursRoutes are the Hours page and the board's pause switch (owners and
// managers). They join staffRoutes (routes.go) at init, so the tenant
// isolation test covers them.
var hoursRoutes = []staffRoute{
	{"GET /admin/r/{rid}/hours", func(s *server) staffHandler { return s.handleHours }},
	{"POST /admin/r/{rid}/hours", func(s *server) staffHandler { return s.handleHoursPost }},
	{"POST /admin/r/{rid}/pause", func(s *server) staffHandler { return s.handlePausePost }},
}

func init() { staffRoutes = append(staffRoutes, hoursRoutes...) }

// pauseChoices are the board's pause lengths, in minutes.
var pauseChoices = []int{15, 30, 60, 120}

// hoursPage is the Hours page: the form as typed, and its errors.
type hoursPage struct {
	page
	Restaurant *ladle.Restaurant
	Days       []hoursDay
	Closures   string
	Slot       struct{ Minutes, Orders, Items, Prep string }
	Lengths    []int
	Errors     map[string]string
	Saved      bool
	Paused     string // "paused until …", "" when not paused
}

// hoursDay is one weekday's ranges as typed: "11:00-14:00, 17:00-02:00".
type hoursDay struct {
	Day   time.Weekday
	Name  string
	Value string
}

// weekOrder lists the days Monday first, as the page shows them.
var weekOrder = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

func (s *server) canEditHours(w http.ResponseWriter, r *http.Request, st *staffView) bool {
	if !st.Role.CanEditMenu() {
		s.errorPage(w, r, http.StatusForbidden, "Not allowed", "Only owners and managers can change the hours or pause ordering.")
		return false
	}
	return true
}

// handleHours shows the restaurant's hours, closures and slot settings.
func (s *server) handleHours(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !s.canEditHours(w, r, st) {
		return
	}
	h, err := s.Store.Hours(r.Context(), st.Restaurant.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := &hoursPage{Errors: map[string]string{}, Saved: r.URL.Query().Get("saved") == "1"}
	for _, d := range weekOrder {
		var parts []string
		for _, rg := range h.Weekly {
			if rg.Day == d {
				parts = append(parts, rg.Open.String()+"-"+rg.Close.String())
			}
		}
		p.Days = append(p.Days, hoursDay{Day: d, Name: d.String(), Value: strings.Join(parts, ", ")})
	}
	var lines []string
	for _, c := range h.Closures {
		lines = append(lines, strings.TrimSpace(c.Date+" "+c.Note))
	}
	p.Closures = strings.Join(lines, "\n")
	p.Slot.Minutes, p.Slot.Orders = strconv.Itoa(h.SlotMinutes), strconv.Itoa(h.SlotOrders)
	p.Slot.Items, p.Slot.Prep = strconv.Itoa(h.SlotItems), strconv.Itoa(h.PrepMinutes)
	s.renderHours(w, r, st, http.StatusOK, p, h)
}

func (s *server) renderHours(w http.ResponseWriter, r *http.Request, st *staffView, status int, p *hoursPage, h *ladle.Hours) {
	p.page = page{Title: "Hours · " + st.Restaurant.Name, Staff: st}
	p.Restaurant, p.Lengths = st.Restaurant, ladle.SlotLengths
	if h != nil && h.Paused(s.Now()) {
		p.Paused = "Online ordering is paused until " + dayLabel(*h.PausedUntil, s.Now(), st.Restaurant.Location()) + "."
	}
	s.render(w, r, status, "admin_hours.html", p)
}

// handleHoursPost saves the form. Every error is shown beside its field and
// everything typed is kept (422); nothing is saved unless all of it is valid.
func (s *server) handleHoursPost(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !s.canEditHours(w, r, st) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 32<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	p := &hoursPage{Errors: map[string]string{}, Closures: r.PostFormValue("closures")}
	p.Slot.Minutes, p.Slot.Orders = r.PostFormValue("slot_minutes"), r.PostFormValue("slot_orders")
	p.Slot.Items, p.Slot.Prep = r.PostFormValue("slot_items"), r.PostFormValue("prep_minutes")
	h := &ladle.Hours{Weekly: []ladle.OpenRange{}, Closures: []ladle.Closure{}}
	dayOf := []string{} // weekly index → form field
	for _, d := range weekOrder {
		field := "day" + strconv.Itoa(int(d))
		v := r.PostFormValue(field)
		p.Days = append(p.Days, hoursDay{Day: d, Name: d.String(), Value: v})
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			a, b, ok := strings.Cut(strings.ReplaceAll(part, "–", "-"), "-")
			open, err1 := ladle.ParseDayTime(a)
			cl, err2 := ladle.ParseDayTime(b)
			if !ok || err1 != nil || err2 != nil {
				p.Errors[field] = "Write ranges like 11:00-14:30, 17:00-02:00 (" + strconvQuote(part) + " is not one)."
				continue
			}
			h.Weekly = append(h.Weekly, ladle.OpenRange{Day: d, Open: open, Close: cl})
			dayOf = append(dayOf, field)
		}
	}
	for _, line := range strings.Split(p.Closures, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		date, note, _ := strings.Cut(line, " ")
		h.Closures = append(h.Closures, ladle.Closure{Date: date, Note: strings.TrimSpace(note)})
	}
	num := func(field, v string, dst *int) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			p.Errors[field] = "Enter a whole number."
			return
		}
		*dst = n
	}
	num("slot_minutes", p.Slot.Minutes, &h.SlotMinutes)
	num("slot_orders", p.Slot.Orders, &h.SlotOrders)
	num("slot_items", p.Slot.Items, &h.SlotItems)
	num("prep_minutes", p.Slot.Prep, &h.PrepMinutes)
	for k, msg := range h.Validate() {
		switch {
		case strings.HasPrefix(k, "weekly["):
			i, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(k, "weekly["), "]"))
			if i < len(dayOf) && p.Errors[dayOf[i]] == "" {
				p.Errors[dayOf[i]] = "A range " + msg + "."
			}
		case strings.HasPrefix(k, "closures"):
			p.Errors["closures"] = "A closure: " + msg + "."
		case p.Errors[k] == "":
			p.Errors[k] = "Must " + strings.TrimPrefix(msg, "must ") + "."
		}
	}
	if len(p.Errors) == 0 {
		err := s.Store.SetHours(r.Context(), st.Restaurant.ID, h, s.Now())
		if err == nil {
			http.Redirect(w, r, "/admin/r/"+strconv.FormatInt(st.Restaurant.ID, 10)+"/hours?saved=1", http.StatusSeeOther)
			return
		}
		if ladle.ErrorCode(err) != ladle.CodeValidation {
			s.fail(w, r, err)
			return
		}
		p.Errors["form"] = "The hours could not be saved: " + err.Error()
	}
	cur, err := s.Store.Hours(r.Context(), st.Restaurant.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderHours(w, r, st, http.StatusUnprocessableEntity, p, cur)
}

func strconvQuote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}

// handlePausePost is the board's switch: minutes=15…120 pauses new orders
// for that long, minutes=0 resumes. Back to the board.
func (s *server) handlePausePost(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !s.canEditHours(w, r, st) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	n, err := strconv.Atoi(r.PostFormValue("minutes"))
	valid := err == nil && n == 0
	for _, c := range pauseChoices {
		valid = valid || (err == nil && n == c)
	}
	if !valid {
		s.renderBoard(w, r, st, http.StatusUnprocessableEntity, "Choose how long to pause online ordering.", "")
		return
	}
	now := s.Now()
	var until *time.Time
	if n > 0 {
		t := now.Add(time.Duration(n) * time.Minute)
		until = &t
	}
	if err := s.Store.PauseOrdering(r.Context(), st.Restaurant.ID, until, now); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/r/"+strconv.FormatInt(st.Restaurant.ID, 10)+"/orders", http.StatusSeeOther)
}

// pauseView is the board's pause switch.
type pauseView struct {
	CanPause bool
	Until    string // "" when not paused
	Choices  []int
}

// boardPause builds the board's pause switch; errors leave it out.
func (s *server) boardPause(r *http.Request, st *staffView) *pauseView {
	if !st.Role.CanEditMenu() {
		return nil
	}
	h, err := s.Store.Hours(r.Context(), st.Restaurant.ID)
	if err != nil {
		return nil
	}
	v := &pauseView{CanPause: true, Choices: pauseChoices}
	if now := s.Now(); h.Paused(now) {
		v.Until = clockTime(*h.PausedUntil, st.Restaurant.Location(), now)
	}
	return v
}
