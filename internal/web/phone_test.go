package web

import "testing"

func TestFormatPhone(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, home, want string }{
		{"+12125550100", "1", "(212) 555-0100"},
		{"+12125550100", "44", "+1 212-555-0100"},
		{"+12125550100", "", "+1 212-555-0100"},
		{"2125550100", "1", "(212) 555-0100"}, // stored without +1, at home
		{"2125550100", "44", "2125550100"},    // can't tell the country: as stored
		{"+1 212 555 0142", "1", "(212) 555-0142"},
		{"+442079460958", "44", "020 7946 0958"},
		{"+442079460958", "1", "+44 207 946 0958"},
		{"+4915123456789", "1", "+49 151 2345 6789"},
		{"+4915123456789", "49", "0151 2345 6789"},
		{"+33612345678", "1", "+33 612 345 678"},
		{"+35312345678", "1", "+353 1234 5678"}, // a three-digit code
		{"+79161234567", "1", "+7 916 123 4567"},
		{"+12345", "1", "+12345"},             // too short: as stored
		{"+1212555010x", "1", "+1212555010x"}, // not digits: as stored
		{"+1 (212) 555-0100 ext", "1", "+1 (212) 555-0100 ext"},
		{"", "1", ""},
	} {
		if got := formatPhone(c.in, c.home); got != c.want {
			t.Errorf("formatPhone(%q, %q) = %q, want %q", c.in, c.home, got, c.want)
		}
	}
	for in, want := range map[string]string{"+1 212 555 0142": "1", "+44 20 7946 0958": "44", "+353 1 234 5678": "353", "212 555 0142": ""} {
		if got := callingCode(in); got != want {
			t.Errorf("callingCode(%q) = %q, want %q", in, got, want)
		}
	}
}
