// Package stripefake is an httptest server that answers the few Stripe API
// calls Ladle makes with objects shaped like Stripe's documented ones, for
// what Stripe's own stripe-mock cannot show: declines, 3-D Secure
// (requires_action and its completion), idempotent replays, lost
// responses, and webhook events in any order. The provider under test
// talks to it through the real stripe-go client; request shapes are
// checked against Stripe's OpenAPI description by the stripe-mock tests.
package stripefake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// Test payment methods, named as Stripe's test cards are.
const (
	CardVisa      = "pm_card_visa"                  // succeeds
	CardDeclined  = "pm_card_chargeDeclined"        // card_error, card_declined
	CardThreeDS   = "pm_card_threeDSecure2Required" // requires_action (use_stripe_sdk)
	WebhookSecret = "whsec_test_fake_secret"
)

// Intent is one PaymentIntent as the fake keeps it.
type Intent struct {
	ID, Status, Currency, PaymentMethod, Account, ClientSecret string
	Amount, ApplicationFee                                     int64
	Metadata                                                   map[string]string
}

type stored struct {
	status int
	body   []byte
}

// Server is the fake Stripe API.
type Server struct {
	URL string

	mu       sync.Mutex
	intents  map[string]*Intent
	order    []string
	replies  map[string]stored // account + " " + idempotency key → first response
	creates  int               // POST /v1/payment_intents requests, replays included
	loseNext int
	down     bool
}

// New starts a fake Stripe API for t.
func New(t testing.TB) *Server {
	s := &Server{intents: map[string]*Intent{}, replies: map[string]stored{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// LoseResponses makes the next n create calls create (or replay) the
// intent and then drop the connection before answering: Stripe charged, the
// caller does not know.
func (s *Server) LoseResponses(n int) { s.mu.Lock(); s.loseNext = n; s.mu.Unlock() }

// SetDown makes every call fail with 503 until SetDown(false).
func (s *Server) SetDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

// Intents returns every PaymentIntent created, oldest first.
func (s *Server) Intents() []Intent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Intent, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.intents[id])
	}
	return out
}

// Creates counts the create requests received, replays included.
func (s *Server) Creates() int { s.mu.Lock(); defer s.mu.Unlock(); return s.creates }

// Authenticate completes (ok) or fails a requires_action intent's 3-D
// Secure, as the guest does in Stripe.js.
func (s *Server) Authenticate(id string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pi := s.intents[id]
	if pi == nil || pi.Status != "requires_action" {
		panic("stripefake: no intent requires action: " + id)
	}
	pi.Status = "succeeded"
	if !ok {
		pi.Status = "requires_payment_method"
	}
}

// Event returns a signed webhook delivery about the intent id: the body
// and its Stripe-Signature header, made with stripe-go's test signer at
// time at (zero: now).
func (s *Server) Event(eventID, typ, id string, at time.Time) (body []byte, signature string) {
	s.mu.Lock()
	obj := s.intentJSON(s.intents[id])
	s.mu.Unlock()
	return SignedEvent(eventID, typ, obj, at)
}

// SignedEvent wraps obj in an event and signs it with WebhookSecret.
func SignedEvent(eventID, typ string, obj map[string]any, at time.Time) (body []byte, signature string) {
	body, _ = json.Marshal(map[string]any{"id": eventID, "object": "event", "type": typ,
		"api_version": stripe.APIVersion, "created": time.Now().Unix(), "livemode": false,
		"pending_webhooks": 1, "data": map[string]any{"object": obj}})
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: WebhookSecret, Timestamp: at})
	return body, sp.Header
}

// Dispute returns the object of a charge.dispute.created event for the
// intent id.
func Dispute(id string) map[string]any {
	return map[string]any{"id": "dp_" + randHex(8), "object": "dispute", "payment_intent": id,
		"charge": "ch_" + randHex(8), "reason": "fraudulent", "status": "needs_response", "amount": 100, "currency": "usd"}
}

var searchOrder = regexp.MustCompile(`metadata\['order_id'\]:'([^']*)'`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		writeErr(w, http.StatusServiceUnavailable, "api_error", "", "Stripe is down.")
		return
	}
	acct := r.Header.Get("Stripe-Account")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents":
		s.create(w, r, acct)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/payment_intents/search":
		m := searchOrder.FindStringSubmatch(r.URL.Query().Get("query"))
		s.mu.Lock()
		data := []any{}
		for _, id := range s.order {
			if pi := s.intents[id]; m != nil && pi.Metadata["order_id"] == m[1] && pi.Account == acct {
				data = append(data, s.intentJSON(pi))
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"object": "search_result", "url": "/v1/payment_intents/search",
			"has_more": false, "data": data})
	case r.Method == http.MethodGet && len(r.URL.Path) > len("/v1/payment_intents/"):
		id := r.URL.Path[len("/v1/payment_intents/"):]
		s.mu.Lock()
		pi := s.intents[id]
		var obj map[string]any
		if pi != nil && pi.Account == acct {
			obj = s.intentJSON(pi)
		}
		s.mu.Unlock()
		if obj == nil {
			writeErr(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such payment_intent: '"+id+"'")
			return
		}
		writeJSON(w, http.StatusOK, obj)
	default:
		writeErr(w, http.StatusNotFound, "invalid_request_error", "", "Unrecognized request URL")
	}
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, acct string) {
	if err := r.ParseForm(); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
		return
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	s.creates++
	lose := s.loseNext > 0
	if lose {
		s.loseNext--
	}
	prev, replay := s.replies[acct+" "+key]
	if !replay {
		prev = s.newIntent(r, acct)
		if key != "" {
			s.replies[acct+" "+key] = prev
		}
	}
	s.mu.Unlock()
	if lose {
		// The intent exists; the answer never arrives.
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	if replay {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(prev.status)
	w.Write(prev.body)
}

// newIntent creates and confirms an intent; s.mu is held.
func (s *Server) newIntent(r *http.Request, acct string) stored {
	amount, _ := strconv.ParseInt(r.PostForm.Get("amount"), 10, 64)
	fee, _ := strconv.ParseInt(r.PostForm.Get("application_fee_amount"), 10, 64)
	id := "pi_" + randHex(12)
	pi := &Intent{ID: id, Amount: amount, ApplicationFee: fee, Currency: r.PostForm.Get("currency"),
		PaymentMethod: r.PostForm.Get("payment_method"), Account: acct, ClientSecret: id + "_secret_" + randHex(8),
		Metadata: map[string]string{}}
	for k, v := range r.PostForm {
		if m := regexp.MustCompile(`^metadata\[(.+)\]$`).FindStringSubmatch(k); m != nil {
			pi.Metadata[m[1]] = v[0]
		}
	}
	switch pi.PaymentMethod {
	case CardDeclined:
		pi.Status = "requires_payment_method"
	case CardThreeDS:
		pi.Status = "requires_action"
	default:
		pi.Status = "succeeded"
	}
	s.intents[id] = pi
	s.order = append(s.order, id)
	obj := s.intentJSON(pi)
	if pi.Status == "requires_payment_method" {
		body, _ := json.Marshal(map[string]any{"error": map[string]any{"type": "card_error", "code": "card_declined",
			"decline_code": "generic_decline", "message": "Your card was declined.", "payment_intent": obj}})
		return stored{status: http.StatusPaymentRequired, body: body}
	}
	body, _ := json.Marshal(obj)
	return stored{status: http.StatusOK, body: body}
}

// intentJSON is the PaymentIntent object as Stripe documents it (the
// fields Ladle reads, and a few more); s.mu is held.
func (s *Server) intentJSON(pi *Intent) map[string]any {
	obj := map[string]any{"id": pi.ID, "object": "payment_intent", "amount": pi.Amount, "currency": pi.Currency,
		"status": pi.Status, "client_secret": pi.ClientSecret, "metadata": pi.Metadata, "livemode": false,
		"payment_method": pi.PaymentMethod, "payment_method_types": []string{"card"}, "capture_method": "automatic",
		"confirmation_method": "automatic", "created": time.Now().Unix(), "next_action": nil, "last_payment_error": nil}
	if pi.ApplicationFee > 0 {
		obj["application_fee_amount"] = pi.ApplicationFee
	}
	switch pi.Status {
	case "requires_action":
		obj["next_action"] = map[string]any{"type": "use_stripe_sdk", "use_stripe_sdk": map[string]any{"type": "three_d_secure_redirect"}}
	case "requires_payment_method":
		obj["last_payment_error"] = map[string]any{"type": "card_error", "code": "card_declined",
			"decline_code": "generic_decline", "message": "Your card was declined."}
	}
	return obj
}

// IntentJSON returns the intent id's object, as webhooks carry it.
func (s *Server) IntentJSON(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.intentJSON(s.intents[id])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, typ, code, msg string) {
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// String describes the intents, for test failures.
func (s *Server) String() string { return fmt.Sprintf("%+v", s.Intents()) }
