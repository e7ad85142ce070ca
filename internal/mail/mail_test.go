package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
)

// parts parses raw into its headers and its decoded text and HTML parts.
func parts(t *testing.T, raw []byte) (netmail.Header, string, string) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("unparsable message: %v\n%s", err, raw)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	if mt == "text/plain" {
		b, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
		return msg.Header, string(b), ""
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var text, html string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(quotedprintable.NewReader(p))
		switch {
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain"):
			text = string(b)
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/html"):
			html = string(b)
		}
	}
	return msg.Header, text, html
}

func TestHeadersResistInjection(t *testing.T) {
	t.Parallel()
	m := &mail.Message{
		From:      mail.Address("Luigi's\r\nBcc: thief@evil.example", "orders@ladle.example"),
		To:        "guest@example.com",
		Subject:   "Your order\r\nBcc: thief@evil.example\r\n\r\nfake body",
		Text:      "line one\nline two with a long tail " + strings.Repeat("x", 100),
		HTML:      "<p>Hello</p>",
		MessageID: "evt-1.receipt@ladle.example>\r\nBcc: x",
		Date:      time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
	}
	raw, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	h, text, html := parts(t, raw)
	if bcc := h.Get("Bcc"); bcc != "" {
		t.Fatalf("injected Bcc header %q in\n%s", bcc, raw)
	}
	if strings.Contains(strings.ToLower(string(raw)), "\r\nbcc:") {
		t.Fatalf("a line starts with Bcc:\n%s", raw)
	}
	subj, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if subj != "Your order Bcc: thief@evil.example fake body" {
		t.Errorf("subject %q", subj)
	}
	from, err := netmail.ParseAddress(h.Get("From"))
	if err != nil || from.Address != "orders@ladle.example" || from.Name != "Luigi's Bcc: thief@evil.example" {
		t.Errorf("from %q: %+v %v", h.Get("From"), from, err)
	}
	if id := h.Get("Message-ID"); id != "<evt-1.receipt@ladle.exampleBcc:x>" {
		t.Errorf("message id %q", id)
	}
	if !strings.Contains(text, "line two with a long tail xxx") || !strings.HasPrefix(text, "line one\r\n") {
		t.Errorf("text part %q", text)
	}
	if html != "<p>Hello</p>" {
		t.Errorf("html part %q", html)
	}
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("line %d is %d bytes", i, len(line))
		}
		if bytes.ContainsAny(line, "\r\n") {
			t.Errorf("line %d has a bare CR or LF", i)
		}
	}

	// An address cannot be smuggled through To either.
	m.To = "guest@example.com\r\nBcc: thief@evil.example"
	if _, err := m.Bytes(); !mail.IsPermanent(err) {
		t.Fatalf("To with a line break: %v, want a permanent error", err)
	}
	m.To = "not an address"
	if err := (mail.DevMailbox{}).Send(context.Background(), m); !mail.IsPermanent(err) {
		t.Fatalf("bad To in the dev mailbox: %v, want a permanent error", err)
	}
}

func TestNonASCIISubjectRoundTrips(t *testing.T) {
	t.Parallel()
	m := &mail.Message{From: "a@b.example", To: "Zoë <zoe@example.com>", Subject: "Ihre Bestellung #12 bei Café Müller ☕", Text: "Grüße"}
	raw, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	h, text, _ := parts(t, raw)
	if subj, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); subj != m.Subject {
		t.Errorf("subject %q, want %q", subj, m.Subject)
	}
	if to, _ := netmail.ParseAddress(h.Get("To")); to == nil || to.Name != "Zoë" {
		t.Errorf("to %q", h.Get("To"))
	}
	if text != "Grüße" {
		t.Errorf("text %q", text)
	}
	for _, b := range raw {
		if b >= 0x80 {
			t.Fatalf("raw message has 8-bit bytes:\n%s", raw)
		}
	}
}

func TestFormatMoney(t *testing.T) {
	for _, c := range []struct {
		m    ladle.Money
		cur  string
		want string
	}{
		{1250, "USD", "$12.50"}, {5, "usd", "$0.05"}, {0, "EUR", "€0.00"}, {-199, "GBP", "-£1.99"},
		{500, "JPY", "¥500"}, {12500, "KWD", "12.500 KWD"}, {123456, "SEK", "1234.56 SEK"},
	} {
		if got := mail.FormatMoney(c.m, c.cur); got != c.want {
			t.Errorf("FormatMoney(%d, %s) = %q, want %q", c.m, c.cur, got, c.want)
		}
	}
}

func sampleData() mail.Data {
	pickup := time.Date(2025, 6, 1, 18, 30, 0, 0, time.UTC)
	return mail.Data{
		Restaurant: &ladle.Restaurant{ID: 1, Slug: "luigis", Name: "Luigi's <Trattoria>", Currency: "USD",
			TimeZone: "America/New_York", Address: "1 Main St", Phone: "+15550100"},
		Order: &ladle.Order{
			ID: "0190-order", Number: 42, Status: ladle.StatusPlaced, Currency: "USD",
			Customer:    ladle.CustomerInput{Name: "Ada", Email: "ada@example.com"},
			Fulfillment: ladle.FulfillmentInfo{Type: "pickup", Time: &pickup},
			Lines: []ladle.OrderLine{
				{ItemID: 1, Name: "Margherita", UnitPrice: 1350, Quantity: 2, LineTotal: 2700,
					Modifiers: []ladle.LineModifier{{Name: "Extra basil", Price: 50}}, Note: "well done"},
				{ItemID: 2, Name: "Tiramisu", UnitPrice: 650, Quantity: 1, LineTotal: 650},
			},
			CouponCode: "WELCOME", Subtotal: 3350, Discount: 335, Tax: 249, Tip: 300, Total: 3564,
			PaymentMethod: "card", CreatedAt: time.Date(2025, 6, 1, 17, 55, 0, 0, time.UTC),
		},
		StatusURL: "https://order.example/orders/0190-order?token=a&b",
	}
}

func TestReceiptTemplate(t *testing.T) {
	t.Parallel()
	tpl, err := mail.NewTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	r, err := tpl.Render(mail.KindReceipt, sampleData())
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Your order #42 at Luigi's <Trattoria>" {
		t.Errorf("subject %q", r.Subject)
	}
	for _, want := range []string{
		"Hi Ada,", "Order #42", "2 x Margherita  $27.00", "+ Extra basil ($0.50)", "Note: well done",
		"1 x Tiramisu  $6.50", "Subtotal   $33.50", "Discount (WELCOME)   -$3.35", "Tax        $2.49",
		"Tip        $3.00", "Total      $35.64", "Paid by card.", "https://order.example/orders/0190-order?token=a&b",
		"Sun 1 Jun 2025, 14:30 EDT", // the pickup time in the restaurant's zone
	} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("text receipt lacks %q:\n%s", want, r.Text)
		}
	}
	for _, want := range []string{
		"Luigi&#39;s &lt;Trattoria&gt;", "Order #42", "<strong>Margherita</strong>", "$27.00", "&minus;$3.35",
		"$35.64", `href="https://order.example/orders/0190-order?token=a&amp;b"`,
	} {
		if !strings.Contains(r.HTML, want) {
			t.Errorf("html receipt lacks %q", want)
		}
	}

	ready, err := tpl.Render(mail.KindReady, sampleData())
	if err != nil {
		t.Fatal(err)
	}
	if ready.Subject != "Order #42 is ready for pickup at Luigi's <Trattoria>" || !strings.Contains(ready.Text, "is ready") {
		t.Errorf("ready email: %q\n%s", ready.Subject, ready.Text)
	}
}

func TestPerRestaurantTemplates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "luigis"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, "luigis", name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("receipt.txt", `{{define "subject"}}Grazie! Ordine {{.Order.Number}}{{end}}Totale {{money .Order.Total}}`)
	tpl, err := mail.NewTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := sampleData()
	r, err := tpl.Render(mail.KindReceipt, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Grazie! Ordine 42" || r.Text != "Totale $35.64\n" {
		t.Errorf("override not used: %q %q", r.Subject, r.Text)
	}
	if !strings.Contains(r.HTML, "Follow your order") {
		t.Error("the HTML part should still be the default")
	}
	// Another restaurant keeps the defaults.
	other := d
	other.Restaurant = &ladle.Restaurant{Slug: "other", Name: "Other", Currency: "USD"}
	if r, _ := tpl.Render(mail.KindReceipt, other); !strings.HasPrefix(r.Subject, "Your order #42") {
		t.Errorf("other restaurant got %q", r.Subject)
	}
	// A broken edit is reported, not silently replaced by the default.
	time.Sleep(10 * time.Millisecond)
	write("receipt.txt", `{{define "subject"}}oops{{end}}{{.Order.Nope`)
	future := time.Now().Add(time.Minute)
	_ = os.Chtimes(filepath.Join(dir, "luigis", "receipt.txt"), future, future)
	if _, err := tpl.Render(mail.KindReceipt, d); err == nil {
		t.Error("a broken template rendered")
	}
}

func TestSMTPReusesConnections(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	tr, err := mail.Open(srv.URL() + "&pool=2")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- tr.Send(ctx, &mail.Message{From: "Ladle <orders@ladle.example>", To: fmt.Sprintf("guest%d@example.com", i),
				Subject: fmt.Sprintf("receipt %d", i), Text: "hi", HTML: "<b>hi</b>", MessageID: fmt.Sprintf("m%d@ladle.example", i)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != n {
		t.Fatalf("server got %d messages, want %d", len(msgs), n)
	}
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.MessageID] = true
		if m.From != "orders@ladle.example" || !strings.HasPrefix(m.To, "guest") {
			t.Errorf("envelope %s -> %s", m.From, m.To)
		}
	}
	if len(ids) != n {
		t.Errorf("%d distinct message ids, want %d", len(ids), n)
	}
	if s := srv.Sessions(); s > 2 {
		t.Errorf("%d SMTP connections for %d messages with pool=2", s, n)
	}
}

func TestSMTPErrors(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	tr, err := mail.Open(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	msg := &mail.Message{From: "orders@ladle.example", To: "guest@example.com", Subject: "s", Text: "t"}

	srv.FailNext(smtptest.ErrTemporary, smtptest.ErrPermanent)
	if err := tr.Send(ctx, msg); err == nil || mail.IsPermanent(err) {
		t.Errorf("451 reply: %v, want a temporary error", err)
	}
	if err := tr.Send(ctx, msg); !mail.IsPermanent(err) {
		t.Errorf("550 reply: %v, want a permanent error", err)
	}
	if err := tr.Send(ctx, msg); err != nil {
		t.Fatalf("after the failures: %v", err)
	}
	if s := srv.Sessions(); s != 1 {
		t.Errorf("refusals should not cost the connection: %d sessions", s)
	}

	// The server restarts while our connection sits idle in the pool: the
	// next send notices the dead connection and uses a fresh one.
	addr := srv.Addr()
	srv.Close()
	// The port was just ours; retry briefly in case the close has not
	// released it yet. Another process taking it in between is a failure,
	// not a skip: nothing may skip in CI.
	srv2, err := smtptest.ListenAddr(addr)
	for i := 0; err != nil && i < 50; i++ {
		time.Sleep(20 * time.Millisecond)
		srv2, err = smtptest.ListenAddr(addr)
	}
	if err != nil {
		t.Fatalf("could not listen on %s again: %v", addr, err)
	}
	defer srv2.Close()
	if err := tr.Send(ctx, msg); err != nil {
		t.Fatalf("send after a server restart: %v", err)
	}
	if srv2.Count() != 1 {
		t.Fatalf("restarted server got %d messages", srv2.Count())
	}

	// Nobody listening at all: a temporary failure.
	srv2.Close()
	if err := tr.Send(ctx, msg); err == nil || mail.IsPermanent(err) {
		t.Errorf("server down: %v, want a temporary error", err)
	}
	if _, err := mail.Open("ftp://x"); err == nil {
		t.Error("ftp:// accepted as an SMTP url")
	}
	if _, err := mail.Open("smtp://user:pw@mail.example.com?tls=none"); err != nil {
		t.Fatal(err)
	}
}

// A batch goes out pipelined over the pool's connections: every message in
// order with its own outcome, a refused recipient or a refused message in
// the middle costing neither the connection nor the messages after it, and
// content lines starting with a dot arriving intact.
func TestSMTPBatchPipelined(t *testing.T) {
	t.Parallel()
	// go-smtp offers CHUNKING: by default the batch goes out with BDAT;
	// the DATA path is what a server without it gets.
	t.Run("BDAT", func(t *testing.T) { t.Parallel(); testSMTPBatchPipelined(t, false) })
	t.Run("DATA", func(t *testing.T) { t.Parallel(); testSMTPBatchPipelined(t, true) })
}

func testSMTPBatchPipelined(t *testing.T, noChunking bool) {
	srv := smtptest.Start(t)
	srv.RejectRcpt("bad@example.com", smtptest.ErrPermanent)
	srv.FailTo("later@example.com", smtptest.ErrTemporary)
	u, _ := url.Parse(srv.URL() + "&pool=2")
	tr, err := mail.NewSMTP(u)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if noChunking {
		mail.NoChunking(tr)
	}
	const n = 40
	msgs := make([]*mail.Message, n)
	for i := range msgs {
		to := fmt.Sprintf("guest%d@example.com", i)
		switch i {
		case 7:
			to = "bad@example.com"
		case 23:
			to = "later@example.com"
		}
		msgs[i] = &mail.Message{From: "Ladle <news@ladle.example>", To: to, Subject: fmt.Sprintf("m %d", i),
			Text: ".starts with a dot\n.\nthen a lone dot", MessageID: fmt.Sprintf("b%d@ladle.example", i)}
	}
	msgs[30].To = "not an address"
	errs := tr.SendBatch(context.Background(), msgs)
	for i, err := range errs {
		switch i {
		case 7:
			if !mail.IsPermanent(err) || !strings.Contains(err.Error(), "550") {
				t.Errorf("refused recipient: %v", err)
			}
		case 23:
			if err == nil || mail.IsPermanent(err) {
				t.Errorf("refused message: %v, want a temporary error", err)
			}
		case 30:
			if !errors.Is(err, mail.ErrBadAddress) {
				t.Errorf("bad address: %v", err)
			}
		default:
			if err != nil {
				t.Errorf("message %d: %v", i, err)
			}
		}
	}
	got := srv.Messages()
	if len(got) != n-3 {
		t.Fatalf("server got %d messages, want %d", len(got), n-3)
	}
	for _, m := range got {
		if !strings.Contains(string(m.Raw), "\r\n.starts with a dot\r\n.\r\nthen a lone dot") {
			t.Fatalf("content changed on the way:\n%s", m.Raw)
		}
	}
	if s := srv.Sessions(); s > 2 {
		t.Errorf("%d connections with pool=2", s)
	}
	// The connections are clean for the next sender.
	if err := tr.Send(context.Background(), msgs[0]); err != nil {
		t.Fatal(err)
	}
}

// TestReceiptReadyEstimate: an ASAP order's receipt says when it should be
// ready, in the restaurant's zone.
func TestReceiptReadyEstimate(t *testing.T) {
	t.Parallel()
	tpl, err := mail.NewTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	d := sampleData()
	d.Order.Fulfillment.Time = nil
	ready := time.Date(2025, 6, 1, 18, 45, 0, 0, time.UTC)
	d.Order.ReadyEstimate = &ready
	r, err := tpl.Render(mail.KindReceipt, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{r.Text, r.HTML} {
		if !strings.Contains(body, "As soon as possible (ready around 14:45 EDT)") {
			t.Errorf("receipt lacks the ready estimate:\n%s", body)
		}
	}
}

// BenchmarkSMTPSendBatch sends campaign-sized batches (100 messages over a
// pool of 16) to a go-smtp server in this process, with BDAT (go-smtp
// offers CHUNKING) and with DATA. Client and server share the process, so
// ns/op (per message) is the CPU of both ends.
//
//	go test -run '^$' -bench SMTPSendBatch -benchtime 20000x ./internal/mail/
func BenchmarkSMTPSendBatch(b *testing.B) {
	for _, noChunking := range []bool{false, true} {
		name := "BDAT"
		if noChunking {
			name = "DATA"
		}
		b.Run(name, func(b *testing.B) {
			addr := discardServer(b)
			u, _ := url.Parse("smtp://" + addr + "?tls=none&pool=16")
			tr, err := mail.NewSMTP(u)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			if noChunking {
				mail.NoChunking(tr)
			}
			html := strings.Repeat("<p>Spring menu is here, come and taste it.</p>", 8)
			msgs := make([]*mail.Message, 100)
			for i := range msgs {
				msgs[i] = &mail.Message{From: "Bench <news@bench.example>", To: fmt.Sprintf("Guest %d <b%07d@bench.example>", i, i),
					Subject: "Spring menu", Text: html, HTML: html, MessageID: fmt.Sprintf("c.x.%d@bench.example", i),
					ListUnsubscribe: "https://bench.example/unsubscribe/x"}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for sent := 0; sent < b.N; sent += len(msgs) {
				for i, err := range tr.SendBatch(context.Background(), msgs[:min(len(msgs), b.N-sent)]) {
					if err != nil {
						b.Fatalf("message %d: %v", i, err)
					}
				}
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// discardServer is a go-smtp server on loopback that accepts every message
// and keeps nothing (smtptest parses and keeps each one, which would be
// most of a benchmark's time).
func discardServer(b *testing.B) string {
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return discardSession{}, nil }))
	srv.Domain = "localhost"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

type discardSession struct{}

func (discardSession) Reset()                                 {}
func (discardSession) Logout() error                          { return nil }
func (discardSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) error                 { _, err := io.Copy(io.Discard, r); return err }
