package campaign_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
	"github.com/ladle-dev/ladle/internal/outbox"
	"github.com/ladle-dev/ladle/internal/priority"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rig is a store with a seeded restaurant, a broker, an SMTP server and a
// campaign service; senders are started by the test.
type rig struct {
	t      *testing.T
	store  *sqlstore.Store
	f      *storetest.Fixture
	b      *broker.Broker
	smtp   *smtptest.Server
	svc    *campaign.Service
	signer *campaign.Signer
	lim    campaign.Limiter
}

func newRig(t *testing.T, db string) *rig {
	t.Helper()
	ctx := context.Background()
	var u string
	kind := brokertest.Embedded
	switch db {
	case "sqlite":
		u = "sqlite:" + filepath.Join(t.TempDir(), "ladle.db")
	case "postgres":
		u = testenv.PostgresSchema(t)
		kind = brokertest.External
	}
	st, err := sqlstore.Open(ctx, u, sqlstore.WithLogger(quiet), sqlstore.WithMaxConns(8))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, store: st, f: storetest.Seed(t, st), b: brokertest.Open(t, kind), smtp: smtptest.Start(t),
		signer: campaign.NewSigner([]byte("test secret")), lim: campaign.NewLocalLimiter(10000)}
	r.svc = campaign.NewService(st, quiet)
	return r
}

// relay starts an outbox relay on the rig's store and broker: what every
// ladle process runs, and what carries a campaign's start to the senders.
func (r *rig) relay() {
	r.t.Helper()
	rl := outbox.New(outbox.Config{Store: r.store, Publisher: r.b, Logger: quiet, PollInterval: 50 * time.Millisecond})
	r.store.OnEventsCommitted(rl.Wake)
	if err := rl.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(rl.Stop)
}

// sender starts a worker process's campaign side: a sender on the rig's
// server and limiter, with a relay beside it.
func (r *rig) sender(mod func(*campaign.SenderConfig)) *campaign.Sender {
	r.t.Helper()
	r.relay()
	u, _ := url.Parse(r.smtp.URL() + "&pool=8")
	tr, err := mail.NewSMTP(u)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg := campaign.SenderConfig{Store: r.store, Broker: r.b, Transport: tr, Limiter: r.lim,
		From: "Bistro <news@bistro.example>", PublicURL: "https://ladle.example", Signer: r.signer, Logger: quiet,
		BatchSize: 40, PageSize: 120, EnumStep: 35, Chunk: 10, AckWait: 5 * time.Second, Lease: 5 * time.Second,
		Backoff: []time.Duration{100 * time.Millisecond}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := campaign.NewSender(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { s.Stop(); tr.Close() })
	return s
}

// customers imports n opted-in customers c0000@example.com….
func (r *rig) customers(n int) {
	r.t.Helper()
	var b strings.Builder
	b.WriteString("email,name,marketing_opt_in\n")
	for i := range n {
		fmt.Fprintf(&b, "c%04d@example.com,Customer %d,true\n", i, i)
	}
	rep, err := campaign.Import(context.Background(), r.store, r.f.Restaurant.ID, strings.NewReader(b.String()), time.Now())
	if err != nil || rep.Imported != int64(n) {
		r.t.Fatalf("import: %+v %v", rep, err)
	}
}

func (r *rig) create(name string) *ladle.Campaign {
	r.t.Helper()
	c, _, err := r.svc.Create(context.Background(), r.f.Restaurant.ID, campaign.Input{Name: name,
		Subject: "Hello {{.Name}}", HTML: `<p>Hi {{.Name}}</p><a href="{{.UnsubscribeURL}}">unsubscribe</a>`,
		Text: "Hi {{.Name}}\nUnsubscribe: {{.UnsubscribeURL}}"})
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

func (r *rig) waitStatus(id string, want ladle.CampaignStatus, timeout time.Duration) *ladle.Campaign {
	r.t.Helper()
	return r.waitCampaign(id, "status "+string(want), func(c *ladle.Campaign) bool { return c.Status == want }, timeout)
}

// waitCampaign polls campaign id until ok says yes, for at most timeout.
func (r *rig) waitCampaign(id, what string, ok func(*ladle.Campaign) bool, timeout time.Duration) *ladle.Campaign {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := r.store.Campaign(context.Background(), r.f.Restaurant.ID, id)
		if err != nil {
			r.t.Fatal(err)
		}
		if ok(c) {
			return c
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("campaign is %s (sent %d failed %d skipped %d of %d), want %s after %v",
				c.Status, c.Sent, c.Failed, c.Skipped, c.Total, what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// perRecipient counts the messages the server accepted per recipient.
func (r *rig) perRecipient() map[string]int {
	m := map[string]int{}
	for _, msg := range r.smtp.Messages() {
		m[msg.To]++
	}
	return m
}

func (r *rig) exactlyOnce(n int) {
	r.t.Helper()
	got := r.perRecipient()
	if len(got) != n {
		r.t.Errorf("%d recipients received mail, want %d", len(got), n)
	}
	for to, k := range got {
		if k != 1 {
			r.t.Errorf("%s received %d messages", to, k)
		}
	}
}

func TestSendReachesEveryoneOnce(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, db)
			r.customers(300)
			// Not opted in, and suppressed: neither is mailed.
			_, err := r.store.ImportCustomers(context.Background(), r.f.Restaurant.ID,
				[]ladle.CustomerImport{{Email: "nope@example.com", Name: "Nope"}}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := r.store.Suppress(context.Background(), r.f.Restaurant.ID, "c0007@example.com", ladle.SuppressComplaint, time.Now()); err != nil {
				t.Fatal(err)
			}
			spy := &enumSpy{Store: r.store}
			spyOn := func(cfg *campaign.SenderConfig) { cfg.Store = spy }
			r.sender(spyOn)
			r.sender(spyOn) // two workers share the consumer
			c := r.create("spring")
			if _, err := r.svc.Start(context.Background(), r.f.Restaurant.ID, c.ID); err != nil {
				t.Fatal(err)
			}
			done := r.waitStatus(c.ID, ladle.CampaignDone, 30*time.Second)
			if done.Total != 299 || done.Sent != 299 || done.Failed != 0 {
				t.Fatalf("done: total %d sent %d failed %d skipped %d", done.Total, done.Sent, done.Failed, done.Skipped)
			}
			r.exactlyOnce(299)
			// Pages of 120 are enumerated 35 at a time, each step its own
			// transaction (a page in one held SQLite's writer from
			// receipts): 300 customers take at least 9 steps.
			if calls, most := spy.stats(); most > 35 || calls < 9 {
				t.Errorf("enumerated in %d steps of up to %d recipients, want ≥ 9 of ≤ 35", calls, most)
			}
			msgs := r.smtp.Messages()
			m := msgs[0]
			if !strings.HasPrefix(m.MessageID, "c."+c.ID+".") || !strings.HasSuffix(m.MessageID, "@bistro.example") {
				t.Errorf("Message-ID %q", m.MessageID)
			}
			lu := m.Header.Get("List-Unsubscribe")
			if !strings.HasPrefix(lu, "<https://ladle.example/unsubscribe/") || m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
				t.Errorf("List-Unsubscribe %q / %q", lu, m.Header.Get("List-Unsubscribe-Post"))
			}
			tok := strings.TrimSuffix(strings.TrimPrefix(lu, "<https://ladle.example/unsubscribe/"), ">")
			rid, email, err := r.signer.Parse(tok)
			if err != nil || rid != r.f.Restaurant.ID || email != m.To {
				t.Errorf("token names %d %q (%v), want %d %q", rid, email, err, r.f.Restaurant.ID, m.To)
			}
			if !strings.HasPrefix(m.Subject, "Hello Customer ") {
				t.Errorf("subject %q", m.Subject)
			}
		})
	}
}

// enumSpy records the limits the senders enumerate recipients with.
type enumSpy struct {
	campaign.Store
	mu          sync.Mutex
	calls, most int
}

func (s *enumSpy) EnumerateRecipients(ctx context.Context, restaurantID int64, id string, after int64, limit int, now time.Time) (*ladle.Campaign, error) {
	s.mu.Lock()
	s.calls++
	s.most = max(s.most, limit)
	s.mu.Unlock()
	return s.Store.EnumerateRecipients(ctx, restaurantID, id, after, limit, now)
}

func (s *enumSpy) stats() (calls, most int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.most
}

// The start is durable: a process that moved a campaign to sending and
// died at once (before anything reached the broker; here nothing was even
// running to publish) leaves its first work message in the outbox, and a
// worker process started later sends the campaign to every recipient
// exactly once — three of them, each with its relay, racing to publish.
func TestStartSurvivesACrashRightAfterTheMove(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := newRig(t, db)
			r.customers(150)
			c := r.create("crash")
			// The crash point: the move committed, no process is left.
			if _, err := r.store.MoveCampaign(ctx, r.f.Restaurant.ID, c.ID, ladle.CampaignSending, time.Now()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			if got := r.smtp.Messages(); len(got) != 0 {
				t.Fatalf("%d messages before any worker ran", len(got))
			}
			for range 3 {
				r.sender(nil)
			}
			done := r.waitStatus(c.ID, ladle.CampaignDone, 30*time.Second)
			if done.Total != 150 || done.Sent != 150 || done.Failed != 0 || done.Skipped != 0 {
				t.Fatalf("done: total %d sent %d failed %d skipped %d", done.Total, done.Sent, done.Failed, done.Skipped)
			}
			r.exactlyOnce(150)
		})
	}
}

func TestPauseResumeNobodySkippedOrRepeated(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite")
	r.customers(400)
	// 100/s: the whole list takes 4 s, so a pause (effective within its
	// status cache's 1 s plus what is in flight) lands mid-campaign even on
	// a loaded machine. At 400/s everything could go out first.
	if err := r.lim.SetRate(context.Background(), "default", 100); err != nil {
		t.Fatal(err)
	}
	r.sender(nil)
	r.sender(nil)
	ctx := context.Background()
	c := r.create("pausable")
	if _, err := r.svc.Start(ctx, r.f.Restaurant.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	r.smtp.Wait(100, 10*time.Second)
	if _, err := r.svc.Pause(ctx, r.f.Restaurant.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	time.Sleep(2 * time.Second)
	before := r.smtp.Count()
	time.Sleep(time.Second)
	if after := r.smtp.Count(); after != before {
		t.Fatalf("still sending 2 s after pause: %d then %d", before, after)
	}
	if before >= 400 {
		t.Fatalf("everything went out before the pause took effect (%d)", before)
	}
	for _, m := range r.smtp.Messages() {
		if m.At.After(paused.Add(2 * time.Second)) {
			t.Errorf("message at %v, more than 2 s after pause", m.At.Sub(paused))
		}
	}
	if _, err := r.svc.Resume(ctx, r.f.Restaurant.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	r.waitStatus(c.ID, ladle.CampaignDone, 30*time.Second)
	r.exactlyOnce(400)
}

func TestCancelStopsWithinTwoSeconds(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite")
	r.customers(300)
	if err := r.lim.SetRate(context.Background(), "default", 100); err != nil {
		t.Fatal(err)
	}
	r.sender(nil)
	ctx := context.Background()
	c := r.create("cancel me")
	if _, err := r.svc.Start(ctx, r.f.Restaurant.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	r.smtp.Wait(30, 10*time.Second)
	if _, err := r.svc.Cancel(ctx, r.f.Restaurant.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	cancelled := time.Now()
	time.Sleep(3 * time.Second)
	var last time.Time
	for _, m := range r.smtp.Messages() {
		if m.At.After(last) {
			last = m.At
		}
	}
	if d := last.Sub(cancelled); d > 2*time.Second {
		t.Fatalf("last message %v after cancel", d)
	}
	if n := r.smtp.Count(); n >= 300 {
		t.Fatalf("cancel did not stop anything: %d sent", n)
	}
	got, _ := r.store.Campaign(ctx, r.f.Restaurant.ID, c.ID)
	if got.Status != ladle.CampaignCancelled {
		t.Fatalf("status %s", got.Status)
	}
	r.exactlyOnce(r.smtp.Count())
}

func TestTransientRetriedPermanentFailed(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite")
	r.customers(50)
	ctx := context.Background()
	r.smtp.FailTo("c0003@example.com", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "busy"},
		&smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "full"})
	r.smtp.FailTo("c0010@example.com", smtptest.ErrTemporary)
	r.smtp.FailTo("c0020@example.com", smtptest.ErrPermanent) // 550 5.1.1: a hard bounce
	r.smtp.FailTo("c0030@example.com", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "policy"})
	r.sender(nil)
	c := r.create("flaky")
	if _, err := r.svc.Start(ctx, r.f.Restaurant.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	done := r.waitStatus(c.ID, ladle.CampaignDone, 30*time.Second)
	if done.Sent != 48 || done.Failed != 2 {
		t.Fatalf("sent %d failed %d, want 48 and 2", done.Sent, done.Failed)
	}
	got := r.perRecipient()
	for _, to := range []string{"c0003@example.com", "c0010@example.com"} {
		if got[to] != 1 {
			t.Errorf("%s (transient replies) received %d", to, got[to])
		}
	}
	failed, err := r.store.Sends(ctx, r.f.Restaurant.ID, c.ID, ladle.SendFailed, 0, 10)
	if err != nil || len(failed) != 2 {
		t.Fatalf("failed sends: %+v %v", failed, err)
	}
	if failed[0].Email != "c0020@example.com" || !strings.Contains(failed[0].Reason, "550") ||
		failed[1].Email != "c0030@example.com" || !strings.Contains(failed[1].Reason, "554") {
		t.Fatalf("failed: %+v", failed)
	}
	if why, _ := r.store.Suppressed(ctx, r.f.Restaurant.ID, "c0020@example.com"); why != ladle.SuppressHardBounce {
		t.Errorf("hard bounce suppressed as %q", why)
	}
	if why, _ := r.store.Suppressed(ctx, r.f.Restaurant.ID, "c0030@example.com"); why != "" {
		t.Errorf("policy rejection suppressed as %q", why)
	}
	// Retry in bulk: the 554 one goes out now, the hard bounce is skipped.
	n, _, err := r.svc.RetryFailed(ctx, r.f.Restaurant.ID, c.ID)
	if err != nil || n != 2 {
		t.Fatalf("retry: %d %v", n, err)
	}
	done = r.waitStatus(c.ID, ladle.CampaignDone, 30*time.Second)
	if done.Sent != 49 || done.Skipped != 1 || done.Failed != 0 {
		t.Fatalf("after retry: sent %d skipped %d failed %d", done.Sent, done.Skipped, done.Failed)
	}
	r.exactlyOnce(49)
}

func TestUnsubscribedSkippedInFlight(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite")
	r.customers(200)
	ctx := context.Background()
	if err := r.lim.SetRate(ctx, "default", 200); err != nil {
		t.Fatal(err)
	}
	r.sender(nil)
	c := r.create("in flight")
	if _, err := r.svc.Start(ctx, r.f.Restaurant.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	r.smtp.Wait(20, 10*time.Second)
	// In flight: c0199 (the last customer) has its send record, pending.
	// Enumeration runs ahead of sending by pages; until it reaches c0199
	// an unsubscription keeps c0199 out of the audience instead, which is
	// not what this test is about.
	r.waitCampaign(c.ID, "all 200 recipients enumerated", func(c *ladle.Campaign) bool { return c.Total == 200 }, 10*time.Second)
	if got := r.perRecipient()["c0199@example.com"]; got != 0 {
		t.Fatalf("c0199 was sent to before the test could unsubscribe it (%d messages): sending outran enumeration", got)
	}
	if err := r.store.Suppress(ctx, r.f.Restaurant.ID, "c0199@example.com", ladle.SuppressUnsubscribed, time.Now()); err != nil {
		t.Fatal(err)
	}
	done := r.waitStatus(c.ID, ladle.CampaignDone, 30*time.Second)
	if got := r.perRecipient()["c0199@example.com"]; got != 0 || done.Skipped != 1 {
		t.Fatalf("unsubscribed mid-campaign received %d; skipped %d", got, done.Skipped)
	}
}

func TestUnsubscribeToken(t *testing.T) {
	s := campaign.NewSigner([]byte("k"))
	tok := s.Token(7, "a@example.com")
	// The format links already sent carry: base64url(payload) "."
	// base64url(the first 16 bytes of HMAC-SHA256 under the derived key).
	key := hmac.New(sha256.New, []byte("k"))
	key.Write([]byte("ladle unsubscribe v1"))
	m := hmac.New(sha256.New, key.Sum(nil))
	m.Write([]byte("u1|7|a@example.com"))
	enc := base64.RawURLEncoding
	if want := enc.EncodeToString([]byte("u1|7|a@example.com")) + "." + enc.EncodeToString(m.Sum(nil)[:16]); tok != want {
		t.Fatalf("token %q, want %q", tok, want)
	}
	if rid, email, err := s.Parse(tok); err != nil || rid != 7 || email != "a@example.com" {
		t.Fatalf("parse: %d %q %v", rid, email, err)
	}
	for _, bad := range []string{tok[:len(tok)-1] + "A", "x" + tok, strings.Replace(tok, ".", "", 1), "",
		campaign.NewSigner([]byte("other")).Token(7, "a@example.com")} {
		if _, _, err := s.Parse(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestConfirmToken(t *testing.T) {
	s := campaign.NewSigner([]byte("k"))
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	tok := s.ConfirmToken(7, "a|b@example.com", now.Add(time.Hour))
	if rid, email, err := s.ParseConfirm(tok, now); err != nil || rid != 7 || email != "a|b@example.com" {
		t.Fatalf("parse: %d %q %v", rid, email, err)
	}
	if _, _, err := s.ParseConfirm(tok, now.Add(time.Hour)); !errors.Is(err, campaign.ErrExpiredToken) {
		t.Fatalf("at expiry: %v", err)
	}
	flipped := tok[:len(tok)-2] + map[bool]string{true: "BB", false: "AA"}[strings.HasSuffix(tok, "AA")]
	for _, bad := range []string{flipped, "x" + tok, strings.Replace(tok, ".", "", 1), "",
		campaign.NewSigner([]byte("other")).ConfirmToken(7, "a@example.com", now.Add(time.Hour)),
		s.Token(7, "a@example.com")} { // an unsubscribe token confirms nothing
		if _, _, err := s.ParseConfirm(bad, now); !errors.Is(err, campaign.ErrBadToken) {
			t.Errorf("accepted %q: %v", bad, err)
		}
	}
	if _, _, err := s.Parse(tok); err == nil {
		t.Error("a confirmation token unsubscribes")
	}
}

func TestImportReport(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite")
	ctx := context.Background()
	csv := "email,name,marketing_opt_in,phone\n" +
		"Ada@Example.com,Ada,true,+1 555 0100\n" +
		"bob@example.com,Bob,false,\n" +
		"not-an-email,X,true,\n" +
		"eve@example.com,,true,\n" +
		"mal@example.com,Mal\u202e,true,\n" +
		"ada@example.com,Ada again,true,\n" +
		"tim@example.com,Tim,maybe,\n" +
		"short@example.com,Short\n"
	rep, err := campaign.Import(ctx, r.store, r.f.Restaurant.ID, strings.NewReader(csv), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported != 2 || rep.Updated != 0 || rep.RejectedCount != 6 {
		t.Fatalf("report: %+v", rep)
	}
	want := map[int64]string{4: "email", 5: "name is required", 6: "bidirectional", 7: "repeats line 2", 8: "marketing_opt_in", 9: "fields"}
	for _, rj := range rep.Rejected {
		if !strings.Contains(rj.Reason, want[rj.Row]) || want[rj.Row] == "" {
			t.Errorf("row %d: %q", rj.Row, rj.Reason)
		}
	}
	again, err := campaign.Import(ctx, r.store, r.f.Restaurant.ID, strings.NewReader(csv), time.Now())
	if err != nil || again.Imported != 0 || again.Updated != 0 || again.Unchanged != 2 {
		t.Fatalf("second import: %+v %v", again, err)
	}
	c, err := r.store.CustomerByEmail(ctx, r.f.Restaurant.ID, "ada@example.com")
	if err != nil || c.Phone != "+15550100" || !c.MarketingOptIn || c.ConsentSource != ladle.ConsentImport {
		t.Fatalf("ada: %+v %v", c, err)
	}
	for _, bad := range []string{"", "mail,name\n", "email,name,marketing_opt_in,color\n", "email,name,marketing_opt_in\n\"x,y\n"} {
		if _, err := campaign.Import(ctx, r.store, r.f.Restaurant.ID, strings.NewReader(bad), time.Now()); ladle.ErrorKind(err) != ladle.KindInvalid {
			t.Errorf("%q: %v, want invalid", bad, err)
		}
	}
}

func TestTemplatesRefuseHeaderInjection(t *testing.T) {
	in := campaign.Input{Name: "x", Subject: "Hi\r\nBcc: all@example.com", HTML: "<p>x</p>", Text: "x"}
	if errs := in.Validate(); errs["subject"] == "" {
		t.Fatalf("subject with a line break accepted: %v", errs)
	}
	in = campaign.Input{Name: "x", Subject: "Hi {{.Nope}}", HTML: "<p>x</p>", Text: "x"}
	if errs := in.Validate(); errs["subject"] == "" {
		t.Fatalf("unknown field accepted: %v", errs)
	}
	// A name with a line break renders escaped in HTML and stays in the
	// Subject header.
	tpl, errs := campaign.ParseTemplates(&ladle.Campaign{Subject: "Hi {{.Name}}", HTML: "<b>{{.Name}}</b>", Text: "{{.Name}}"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var b strings.Builder
	subject, html, _, err := tpl.Render(&b, campaign.Fields{Name: "<script>x</script>\r\nBcc: evil@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "<script>") {
		t.Errorf("html not escaped: %s", html)
	}
	m := &mail.Message{From: "a@example.com", To: "b@example.com", Subject: subject, Text: "x"}
	raw, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "\r\nBcc:") {
		t.Errorf("header injected:\n%s", raw)
	}
}

var _ = sync.Mutex{}

// Campaign sends yield to urgent work in the process (receipts): while the
// priority gate is held nothing is sent; once it is released the campaign
// completes, everyone once.
func TestSendsYieldToUrgentWork(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite")
	r.customers(50)
	gate := priority.New()
	exit := gate.Enter()
	r.sender(func(c *campaign.SenderConfig) { c.Yield, c.YieldMax = gate, time.Hour })
	ctx := context.Background()
	c := r.create("yielding")
	if _, err := r.svc.Start(ctx, r.f.Restaurant.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	// Hold the gate until a sender is waiting in it: on a loaded machine
	// the campaign's first work can take over a second to reach a sender,
	// and a gate released before that was never yielded to. Then hold it a
	// while more: nothing may go out meanwhile.
	for deadline := time.Now().Add(time.Minute); !yielding(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no sender waited at the gate within a minute (%d sent)", r.smtp.Count())
		}
	}
	time.Sleep(time.Second)
	if n := r.smtp.Count(); n != 0 {
		t.Fatalf("%d sent while urgent work was in progress", n)
	}
	// The fan-out yields before each message it publishes as well: the
	// stream holds the campaign's start (through the outbox), not yet the
	// two batches of 40 and 10.
	if n := brokertest.SubjectCount(t, r.b, campaign.Subject); n != 1 {
		t.Fatalf("%d campaign work messages in the stream while urgent work was in progress, want only the start", n)
	}
	exit()
	r.waitStatus(c.ID, ladle.CampaignDone, 30*time.Second)
	r.exactlyOnce(50)
	if _, yields, waited := gate.Stats(); yields == 0 || waited < 500*time.Millisecond {
		t.Fatalf("yields %d, waited %v", yields, waited)
	}
}

// yielding reports whether a goroutine of this process is waiting in a
// priority gate's Yield.
func yielding() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Contains(string(buf[:n]), "priority.(*Gate).Yield(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// A campaign scheduled a moment ahead is started by one of two senders
// (each looks for due campaigns every second) once, and reaches everyone
// exactly once; it does not start early.
func TestScheduledStartsOnceAcrossSenders(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite")
	r.customers(60)
	r.sender(nil)
	r.sender(nil)
	ctx := context.Background()
	c := r.create("scheduled")
	if _, err := r.svc.Schedule(ctx, r.f.Restaurant.ID, c.ID, time.Now().Add(-time.Second)); ladle.ErrorKind(err) != ladle.KindInvalid {
		t.Fatalf("scheduled in the past: %v", err)
	}
	at := time.Now().Add(1500 * time.Millisecond)
	s, err := r.svc.Schedule(ctx, r.f.Restaurant.ID, c.ID, at)
	if err != nil || s.Status != ladle.CampaignScheduled {
		t.Fatalf("schedule: %+v %v", s, err)
	}
	if _, err := r.svc.Schedule(ctx, r.f.Restaurant.ID, c.ID, at); ladle.ErrorCode(err) != ladle.CodeInvalidTransition {
		t.Fatalf("scheduled twice: %v", err)
	}
	done := r.waitStatus(c.ID, ladle.CampaignDone, 30*time.Second)
	if done.Generation != 1 {
		t.Fatalf("started %d times", done.Generation)
	}
	if done.StartedAt == nil || done.StartedAt.Before(at.Truncate(time.Millisecond)) {
		t.Fatalf("started at %v, scheduled for %v", done.StartedAt, at)
	}
	for _, m := range r.smtp.Messages() {
		if m.At.Before(at) {
			t.Fatalf("a message went out at %v, before %v", m.At, at)
		}
	}
	r.exactlyOnce(60)
}

// A campaign's records are committed lazily (on SQLite without an fsync)
// and made durable before anything outside the store relies on them:
// batches are published, and acknowledged, only after Durable succeeded.
// While it fails, nothing is published; once sending, the batches are
// redelivered rather than acknowledged, and nobody is mailed twice.
func TestRecordsDurableBeforePublishAndAck(t *testing.T) {
	t.Parallel()
	r := newRig(t, "sqlite")
	r.customers(100)
	spy := &durableSpy{Store: r.store}
	spy.fail.Store(true)
	r.sender(func(c *campaign.SenderConfig) { c.Store = spy; c.AckWait = time.Second })
	ctx := context.Background()
	c := r.create("durable")
	if _, err := r.svc.Start(ctx, r.f.Restaurant.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	// Enumerated, but not durable: no batch may reach the stream.
	r.waitCampaign(c.ID, "enumerated", func(c *ladle.Campaign) bool { return c.Enumerated }, 30*time.Second)
	time.Sleep(time.Second)
	if n := r.smtp.Count(); n != 0 {
		t.Fatalf("%d sent from batches published before their records were durable", n)
	}
	// Durable again: the fan-out publishes and the batches are sent; from
	// the first message on it fails once more, so no batch is acknowledged.
	spy.failAfterSend.Store(true)
	spy.fail.Store(false)
	r.waitStatus(c.ID, ladle.CampaignDone, 30*time.Second)
	cons, err := r.b.JetStream().Consumer(ctx, r.b.StreamName(), campaign.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	// Past an AckWait or two: the unacknowledged batches were redelivered.
	var info *jetstream.ConsumerInfo
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if info, err = cons.Info(ctx); err != nil {
			t.Fatal(err)
		}
		if info.NumRedelivered > 0 && info.NumAckPending > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batches acknowledged although their records were not durable: %d pending acks, %d redelivered",
				info.NumAckPending, info.NumRedelivered)
		}
	}
	spy.failAfterSend.Store(false)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if info, err = cons.Info(ctx); err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d batches still unacknowledged (%d not delivered) with Durable working", info.NumAckPending, info.NumPending)
		}
	}
	r.exactlyOnce(100)
	if n := spy.eager.Load(); n != 0 {
		t.Errorf("%d claims or results of sends were not committed lazily", n)
	}
}

// durableSpy fails Durable when told to, and counts the claims and results
// of sends made without ladle.WithLazyCommit.
type durableSpy struct {
	campaign.Store
	fail, failAfterSend atomic.Bool
	sent                atomic.Bool
	eager               atomic.Int64
}

func (s *durableSpy) Durable(ctx context.Context) error {
	if s.fail.Load() || (s.failAfterSend.Load() && s.sent.Load()) {
		return errors.New("durableSpy: the disk is gone")
	}
	return s.Store.Durable(ctx)
}

func (s *durableSpy) ClaimSends(ctx context.Context, c ladle.SendClaim) ([]ladle.Send, error) {
	if !ladle.IsLazyCommit(ctx) {
		s.eager.Add(1)
	}
	return s.Store.ClaimSends(ctx, c)
}

func (s *durableSpy) FinishSends(ctx context.Context, restaurantID int64, id string, results []ladle.SendResult, now time.Time) error {
	if !ladle.IsLazyCommit(ctx) {
		s.eager.Add(1)
	}
	err := s.Store.FinishSends(ctx, restaurantID, id, results, now)
	if err == nil {
		s.sent.Store(true)
	}
	return err
}
