package ladle_test

import (
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func dt(h, m int) ladle.DayTime { return ladle.DayTime(h*60 + m) }

// TestHoursDST: wall-clock ranges across New York's daylight saving
// changes (2026-03-08 02:00 → 03:00, 2026-11-01 02:00 → 01:00).
func TestHoursDST(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	h := &ladle.Hours{Weekly: []ladle.OpenRange{
		{Day: time.Saturday, Open: dt(22, 0), Close: dt(4, 0)}, // overnight into Sunday
		{Day: time.Sunday, Open: dt(11, 0), Close: dt(15, 0)},
	}, SlotMinutes: 15}
	cases := []struct {
		at   time.Time
		open bool
	}{
		// Spring forward: Saturday 22:00 EST to Sunday 04:00 EDT is 5 real hours.
		{time.Date(2026, 3, 8, 3, 0, 0, 0, time.UTC), true},    // Sat 22:00 EST
		{time.Date(2026, 3, 8, 6, 59, 0, 0, time.UTC), true},   // 01:59 EST
		{time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC), true},    // 03:00 EDT
		{time.Date(2026, 3, 8, 7, 59, 0, 0, time.UTC), true},   // 03:59 EDT
		{time.Date(2026, 3, 8, 8, 0, 0, 0, time.UTC), false},   // 04:00 EDT
		{time.Date(2026, 3, 8, 15, 0, 0, 0, time.UTC), true},   // 11:00 EDT
		{time.Date(2026, 3, 8, 14, 59, 0, 0, time.UTC), false}, // 10:59 EDT
		// Fall back: Saturday 22:00 EDT to Sunday 04:00 EST is 7 real hours.
		{time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC), true},  // Sat 22:00 EDT
		{time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), true}, // 01:30 EDT
		{time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), true}, // 01:30 EST, the repeated hour
		{time.Date(2026, 11, 1, 8, 59, 0, 0, time.UTC), true}, // 03:59 EST
		{time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), false}, // 04:00 EST
		{time.Date(2026, 11, 1, 16, 0, 0, 0, time.UTC), true}, // 11:00 EST
	}
	for _, c := range cases {
		if got := h.OpenAt(c.at, ny); got != c.open {
			t.Errorf("OpenAt(%s = %s) = %v, want %v", c.at.Format(time.RFC3339), c.at.In(ny).Format("Mon 15:04 MST"), got, c.open)
		}
	}
	// Next opening after Sunday 04:00 is 11:00 local, whatever the offset.
	next, ok := h.NextOpen(time.Date(2026, 3, 8, 8, 0, 0, 0, time.UTC), ny)
	if want := time.Date(2026, 3, 8, 11, 0, 0, 0, ny); !ok || !next.Equal(want) {
		t.Errorf("NextOpen after spring forward = %v, want %v", next, want)
	}
	next, ok = h.NextOpen(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), ny)
	if want := time.Date(2026, 11, 1, 11, 0, 0, 0, ny); !ok || !next.Equal(want) {
		t.Errorf("NextOpen after fall back = %v, want %v", next, want)
	}
	// A range opening inside the skipped hour (02:30 on 2026-03-08) opens
	// when the clocks jump to 03:00 EDT, not an hour early.
	gap := &ladle.Hours{Weekly: []ladle.OpenRange{{Day: time.Sunday, Open: dt(2, 30), Close: dt(6, 0)}}, SlotMinutes: 15}
	next, ok = gap.NextOpen(time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC), ny)
	if want := time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC); !ok || !next.Equal(want) {
		t.Errorf("NextOpen into the gap = %v, want %v", next, want)
	}
}

// TestHoursCheck: the order-time decision in several zones, with
// closures, the pause and an always-open schedule.
func TestHoursCheck(t *testing.T) {
	tokyo := mustLoc(t, "Asia/Tokyo")
	h := &ladle.Hours{Weekly: []ladle.OpenRange{{Day: time.Monday, Open: dt(11, 30), Close: dt(0, 0)}},
		Closures: []ladle.Closure{{Date: "2026-12-28"}}, SlotMinutes: 30, PrepMinutes: 10}
	mon := time.Date(2026, 12, 21, 10, 0, 0, 0, tokyo) // a Monday, 10:00 in Tokyo
	err := h.Check(mon, nil, tokyo)
	if ladle.ErrorCode(err) != ladle.CodeRestaurantClosed || ladle.ErrorKind(err) != ladle.KindUnprocessable {
		t.Fatalf("Check before opening = %v", err)
	}
	var le *ladle.Error
	if !asError(err, &le) || le.Extra["next_open"] != "2026-12-21T02:30:00Z" {
		t.Fatalf("next_open = %v", le.Extra)
	}
	if err := h.Check(mon.Add(2*time.Hour), nil, tokyo); err != nil {
		t.Fatalf("Check at 12:00 = %v", err)
	}
	// 23:59 open, midnight (Close 00:00 = end of day) closed.
	if !h.OpenAt(time.Date(2026, 12, 21, 23, 59, 0, 0, tokyo), tokyo) || h.OpenAt(time.Date(2026, 12, 22, 0, 0, 0, 0, tokyo), tokyo) {
		t.Fatal("a range closing at 00:00 must end at midnight")
	}
	// A week later is a closure: next Monday after it.
	pickup := time.Date(2026, 12, 28, 12, 0, 0, 0, tokyo)
	err = h.Check(mon, &pickup, tokyo)
	asError(err, &le)
	if le.Extra["reason"] != "closure" || le.Extra["next_open"] != "2027-01-04T02:30:00Z" || le.Fields["fulfillment.time"] == "" {
		t.Fatalf("closure: %v %v", err, le.Extra)
	}
	// Paused: refused until the pause ends, even ahead.
	until := mon.Add(3 * time.Hour)
	h.PausedUntil = &until
	later := mon.Add(5 * time.Hour)
	err = h.Check(mon.Add(2*time.Hour), &later, tokyo)
	asError(err, &le)
	if le.Extra["reason"] != "paused" || le.Extra["next_open"] != until.UTC().Format(time.RFC3339) {
		t.Fatalf("paused: %v %v", err, le.Extra)
	}
	if err := h.Check(until, nil, tokyo); err != nil {
		t.Fatalf("after the pause: %v", err)
	}
	// No ranges: always open, but closures still close.
	always := ladle.DefaultHours()
	always.Closures = []ladle.Closure{{Date: "2026-12-25"}}
	if err := always.Check(time.Date(2026, 12, 24, 3, 0, 0, 0, tokyo), nil, tokyo); err != nil {
		t.Fatalf("always open: %v", err)
	}
	next, ok := always.NextOpen(time.Date(2026, 12, 25, 9, 0, 0, 0, tokyo), tokyo)
	if !ok || !next.Equal(time.Date(2026, 12, 26, 0, 0, 0, 0, tokyo)) {
		t.Fatalf("NextOpen after a closure = %v", next)
	}
}

// TestSlots: slots start at multiples of their length, skip closed times
// and the preparation time, and report what remains.
func TestSlots(t *testing.T) {
	kolkata := mustLoc(t, "Asia/Kolkata") // UTC+05:30
	h := &ladle.Hours{Weekly: []ladle.OpenRange{{Day: time.Tuesday, Open: dt(12, 0), Close: dt(13, 0)}},
		SlotMinutes: 15, SlotOrders: 3, PrepMinutes: 20}
	now := time.Date(2026, 12, 1, 11, 50, 0, 0, kolkata) // Tuesday
	used := []ladle.SlotUsage{{Start: time.Date(2026, 12, 1, 12, 15, 0, 0, kolkata).UTC(), Orders: 3}}
	slots := h.Slots(now, now.Add(24*time.Hour), kolkata, used)
	var got []string
	for _, s := range slots {
		got = append(got, s.Start.In(kolkata).Format("15:04")+map[bool]string{true: "", false: " full"}[s.Available])
	}
	// 11:50 + 20 min prep = 12:10: the 12:00 slot is too soon.
	want := []string{"12:15 full", "12:30", "12:45"}
	if len(got) != len(want) {
		t.Fatalf("slots = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("slots = %v, want %v", got, want)
		}
	}
	if *slots[1].RemainingOrders != 3 || *slots[0].RemainingOrders != 0 || slots[0].RemainingItems != nil {
		t.Fatalf("remaining = %v %v", *slots[0].RemainingOrders, *slots[1].RemainingOrders)
	}
	// ASAP: candidates start at the slot of now + prep.
	plan, err := h.Plan(time.Date(2026, 12, 1, 12, 5, 0, 0, kolkata), nil, 2, kolkata)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Candidates[0].Equal(time.Date(2026, 12, 1, 12, 15, 0, 0, kolkata)) || !plan.Ready.Equal(time.Date(2026, 12, 1, 12, 25, 0, 0, kolkata)) {
		t.Fatalf("plan = %+v", plan)
	}
	plan.Take(plan.Candidates[2])
	if !plan.Ready.Equal(plan.Candidates[2]) {
		t.Fatalf("a later slot must push the ready estimate: %v", plan.Ready)
	}
}

func TestDayTimeJSON(t *testing.T) {
	for in, want := range map[string]string{"9:05": "09:05", "24:00": "24:00", "00:00": "00:00"} {
		v, err := ladle.ParseDayTime(in)
		if err != nil || v.String() != want {
			t.Errorf("ParseDayTime(%q) = %v, %v", in, v, err)
		}
	}
	for _, bad := range []string{"24:01", "12:60", "noon", "1:5", "-1:00", "123:00"} {
		if _, err := ladle.ParseDayTime(bad); err == nil {
			t.Errorf("ParseDayTime(%q) accepted", bad)
		}
	}
}

// TestSlotsAlignToLocalClock: 60-minute slots start on the hour of the
// restaurant's wall clock in zones whose offset is not a whole hour
// (Kolkata +05:30, Kathmandu +05:45), and 15-minute ones in Kathmandu at
// :00/:15/:30/:45 local; ASAP candidates and the slot of a pickup time
// follow the same alignment.
func TestSlotsAlignToLocalClock(t *testing.T) {
	for _, tc := range []struct {
		zone    string
		minutes int
		want    []string
	}{
		{"Asia/Kolkata", 60, []string{"12:00", "13:00", "14:00"}},
		{"Asia/Kathmandu", 60, []string{"12:00", "13:00", "14:00"}},
		{"Asia/Kathmandu", 15, []string{"11:30", "11:45", "12:00"}},
		{"America/St_Johns", 30, []string{"11:30", "12:00", "12:30"}}, // -03:30
	} {
		loc := mustLoc(t, tc.zone)
		h := &ladle.Hours{SlotMinutes: tc.minutes, SlotOrders: 2, PrepMinutes: 20}
		now := time.Date(2026, 12, 1, 11, 5, 0, 0, loc) // ready 11:25
		slots := h.Slots(now, now.Add(4*time.Hour), loc, nil)
		var got []string
		for _, s := range slots[:3] {
			got = append(got, s.Start.In(loc).Format("15:04"))
			if s.End.Sub(s.Start) != time.Duration(tc.minutes)*time.Minute {
				t.Fatalf("%s: slot %v–%v", tc.zone, s.Start, s.End)
			}
		}
		if len(got) != 3 || got[0] != tc.want[0] || got[1] != tc.want[1] || got[2] != tc.want[2] {
			t.Fatalf("%s, %d min: slots %v, want %v", tc.zone, tc.minutes, got, tc.want)
		}
		pickup := time.Date(2026, 12, 1, 13, 40, 0, 0, loc)
		if got := h.SlotOf(pickup, loc).In(loc); got.Minute()%tc.minutes != 0 || got.After(pickup) || pickup.Sub(got) >= time.Duration(tc.minutes)*time.Minute {
			t.Fatalf("%s: SlotOf(13:40) = %v", tc.zone, got)
		}
		plan, err := h.Plan(now, nil, 1, loc)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range plan.Candidates {
			if c.In(loc).Minute()%tc.minutes != 0 || (i > 0 && c.Sub(plan.Candidates[i-1]) != time.Duration(tc.minutes)*time.Minute) {
				t.Fatalf("%s: ASAP candidates %v", tc.zone, plan.Candidates)
			}
		}
	}
}

// TestPickupTooSoon: a scheduled pickup sooner than now plus the
// preparation time is 422 pickup_too_soon naming the earliest time; at
// that time exactly it is taken.
func TestPickupTooSoon(t *testing.T) {
	utc := time.UTC
	h := &ladle.Hours{SlotMinutes: 15, PrepMinutes: 25}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, utc)
	soon := now.Add(24 * time.Minute)
	_, err := h.Plan(now, &soon, 1, utc)
	var e *ladle.Error
	if !asError(err, &e) || e.Code != ladle.CodePickupTooSoon || e.Kind != ladle.KindUnprocessable ||
		e.Extra["earliest_pickup"] != "2026-12-01T12:25:00Z" || e.Fields["fulfillment.time"] == "" {
		t.Fatalf("too soon: %v", err)
	}
	ok := now.Add(25 * time.Minute)
	if _, err := h.Plan(now, &ok, 1, utc); err != nil {
		t.Fatalf("at the earliest time: %v", err)
	}
}
