package mail

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestExpect: expect reads a single-line reply with the wanted code in
// place, and leaves every other reply (another code, a multi-line one, a
// line longer than the read buffer) to reply, with the same outcome.
func TestExpect(t *testing.T) {
	long := "250 " + strings.Repeat("x", 5000) + "\r\n"
	in := "250 2.0.0 OK\r\n" + "250-first\r\n250 last\r\n" + "550 5.1.1 no such user\r\n" + "451 4.3.0 try later\r\n" +
		long + "354 go ahead\r\n" + "250 end\r\n"
	client, server := net.Pipe()
	defer client.Close()
	go func() { server.Write([]byte(in)); server.Close() }()
	c := newSMTPConn(client)
	check := func(want int, wantCode int) {
		t.Helper()
		err := c.expect(want)
		var se *smtp.SMTPError
		switch {
		case wantCode == 0 && err != nil:
			t.Fatalf("expect(%d): %v, want nil", want, err)
		case wantCode != 0 && (!errors.As(err, &se) || se.Code != wantCode):
			t.Fatalf("expect(%d): %v, want an SMTP error %d", want, err, wantCode)
		}
	}
	check(250, 0)
	check(250, 0)   // multi-line
	check(250, 550) // a refusal
	check(250, 451)
	check(250, 0) // longer than the buffer
	check(354, 0)
	check(250, 0)
	if err := c.expect(250); err == nil {
		t.Fatal("a closed connection: nil error")
	}
}
