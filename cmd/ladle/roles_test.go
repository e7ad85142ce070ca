package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// An API process and a worker process sharing PostgreSQL and an external
// NATS: the order taken by the API gets its receipt from the worker, once.
func TestRolesAPIAndWorker(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"LADLE_DATABASE_URL": testenv.PostgresSchema(t),
		"LADLE_NATS_URL":     testenv.NATSURL(t),
		"LADLE_SECRET":       "roles-test-secret-0123456789",
	}
	api := startLadle(t, env, "--role", "api", "--demo")
	worker := startLadle(t, env, "--role", "worker")

	// The worker serves health and metrics, not the storefront.
	if resp, err := http.Get(worker + "/r/" + demo.Slug); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("worker serves the storefront: %d", resp.StatusCode)
		}
	}

	ctx := context.Background()
	st, err := sqlstore.Open(ctx, env["LADLE_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	instance, err := st.InstanceID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStream(t, env["LADLE_NATS_URL"], "LADLE_EVENTS_"+strings.ToUpper(instance[:12])) })
	r, err := st.RestaurantBySlug(ctx, demo.Slug)
	if err != nil {
		t.Fatal(err)
	}
	menu, err := st.Menu(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	o := postOrder(t, api, "roles-1", ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: "Grace Hopper", Email: "grace@example.com"},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:       []ladle.LineRequest{{ItemID: plainItem(t, menu).ID, Quantity: 1}},
		Payment:     ladle.PaymentInput{Method: "pay_at_pickup"},
	})

	deadline := time.Now().Add(20 * time.Second)
	var emails []ladle.Email
	for {
		emails, err = st.OrderEmails(ctx, r.ID, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(emails) > 0 && emails[0].Status == ladle.EmailSent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no receipt sent within 20s: %+v", emails)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show up
	emails, _ = st.OrderEmails(ctx, r.ID, o.ID)
	if len(emails) != 1 || !strings.Contains(emails[0].To, "<grace@example.com>") || emails[0].Kind != "receipt" {
		t.Fatalf("want one receipt to the guest, got %+v", emails)
	}
	// Its status link opens the order for the guest on the API process.
	if !strings.Contains(emails[0].Text, "/orders/"+o.ID+"?token=") {
		t.Fatalf("receipt has no status link:\n%s", emails[0].Text)
	}
}

func deleteStream(t *testing.T, url, name string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, name); err != nil {
		t.Logf("cleanup: delete stream %s: %v", name, err)
	}
}
