package devcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

// Burst commits n pay-at-pickup orders for the demo restaurant straight
// into the database (each with its outbox event, as a placement writes
// them), from clients goroutines, as fast as the database takes them: the
// relays publish them and the workers send the receipts. placed counts the
// committed orders as they go. It returns the first error.
func Burst(ctx context.Context, st *sqlstore.Store, n, clients int, placed *atomic.Int64) error {
	r, err := st.RestaurantBySlug(ctx, demo.Slug)
	if err != nil {
		return err
	}
	item, err := PlainItem(ctx, st, r.ID)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			for i := c; i < n; i += clients {
				if ctx.Err() != nil {
					return
				}
				_, err := st.CreateOrder(ctx, ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(), RestaurantID: r.ID, Now: ladle.Now(),
					Request: &ladle.OrderRequest{
						Customer:         ladle.CustomerInput{Name: fmt.Sprintf("Guest %d", i), Email: fmt.Sprintf("guest%d@example.com", i)},
						Fulfillment:      ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
						Lines:            []ladle.LineRequest{{ItemID: item.ID, Quantity: 1}},
						Payment:          ladle.PaymentInput{Method: "pay_at_pickup"},
						ConfirmDuplicate: true,
					}})
				if err != nil {
					errs <- err
					return
				}
				placed.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// PlainItem is the demo menu's first available item without modifier
// groups.
func PlainItem(ctx context.Context, st *sqlstore.Store, restaurantID int64) (ladle.Item, error) {
	m, err := st.Menu(ctx, restaurantID)
	if err != nil {
		return ladle.Item{}, err
	}
	for _, c := range m.Categories {
		for _, it := range c.Items {
			if it.Available && len(it.ModifierGroups) == 0 {
				return it, nil
			}
		}
	}
	return ladle.Item{}, fmt.Errorf("the demo menu has no plain available item")
}

// LoadConfig drives a running cluster through its API processes.
type LoadConfig struct {
	// APIs are the API processes' base URLs; requests go round-robin.
	APIs []string
	// OrderRate is guest orders per second through POST
	// /api/v1/restaurants/{slug}/orders, at a constant arrival rate (open
	// model: a slow answer does not slow the schedule); 0 places none.
	OrderRate float64
	// MaxInFlight bounds the orders awaiting an answer; an arrival past it
	// is counted as dropped, not queued (default 256).
	MaxInFlight int
	// Recipients, when positive, imports that many opted-in customers and
	// sends them a campaign through the staff API once at the start.
	Recipients int
	// Token is a staff API token of the demo owner (NewOwnerToken).
	Token string
}

// LoadStats counts what the load generator saw.
type LoadStats struct {
	Sent, Created, Shed, Failed, Dropped atomic.Int64
	// CampaignSent is set once the campaign was sent (to the recipients).
	CampaignSent atomic.Bool
}

// NewOwnerToken makes a staff API token for the demo owner.
func NewOwnerToken(ctx context.Context, st *sqlstore.Store) (string, error) {
	r, err := st.RestaurantBySlug(ctx, demo.Slug)
	if err != nil {
		return "", err
	}
	u, err := st.UserByEmail(ctx, demo.StaffEmail)
	if err != nil {
		return "", err
	}
	token, hash := auth.NewAPIToken()
	if err := st.CreateAPIToken(ctx, &ladle.APIToken{RestaurantID: r.ID, UserID: u.ID, Name: "ladle dev cluster"}, hash); err != nil {
		return "", err
	}
	return token, nil
}

// RunLoad drives the cluster until ctx is done: the campaign first (if
// any), then orders at OrderRate. item is the item ordered.
func RunLoad(ctx context.Context, cfg LoadConfig, itemID int64, stats *LoadStats) error {
	hc := &http.Client{Timeout: 30 * time.Second}
	if cfg.Recipients > 0 {
		if err := startCampaign(ctx, hc, cfg); err != nil {
			return fmt.Errorf("campaign: %w", err)
		}
		stats.CampaignSent.Store(true)
	}
	if cfg.OrderRate <= 0 {
		<-ctx.Done()
		return nil
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	slots := make(chan struct{}, cfg.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	interval := time.Duration(float64(time.Second) / cfg.OrderRate)
	next := time.Now()
	for i := 0; ; i++ {
		next = next.Add(interval)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(next)):
		}
		select {
		case slots <- struct{}{}:
		default:
			stats.Dropped.Add(1)
			continue
		}
		base := cfg.APIs[i%len(cfg.APIs)]
		wg.Go(func() {
			defer func() { <-slots }()
			stats.Sent.Add(1)
			switch code := placeOrder(ctx, hc, base, itemID, i); {
			case code == 0 && ctx.Err() != nil:
				// Cut off by the end of the run, not an answer.
			case code == http.StatusCreated:
				stats.Created.Add(1)
			case code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests:
				stats.Shed.Add(1)
			default:
				stats.Failed.Add(1)
			}
		})
	}
}

func placeOrder(ctx context.Context, hc *http.Client, base string, itemID int64, i int) int {
	body, _ := json.Marshal(ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: fmt.Sprintf("Load %d", i), Email: fmt.Sprintf("load%d@example.com", i)},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:       []ladle.LineRequest{{ItemID: itemID, Quantity: 1}},
		Payment:     ladle.PaymentInput{Method: "pay_at_pickup"},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/restaurants/"+demo.Slug+"/orders", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", uuid.NewString())
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// startCampaign imports cfg.Recipients opted-in customers, creates a
// campaign to them and sends it, through the first API process.
func startCampaign(ctx context.Context, hc *http.Client, cfg LoadConfig) error {
	api := cfg.APIs[0] + "/api/v1/admin/restaurants/" + demo.Slug
	var csv strings.Builder
	csv.WriteString("email,name,marketing_opt_in\n")
	for i := range cfg.Recipients {
		fmt.Fprintf(&csv, "fan%d@example.com,Fan %d,true\n", i, i)
	}
	call := func(method, path, ctype string, body io.Reader, out any) error {
		req, _ := http.NewRequestWithContext(ctx, method, api+path, body)
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode >= 300 {
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	if err := call(http.MethodPost, "/customers/import", "text/csv", strings.NewReader(csv.String()), nil); err != nil {
		return err
	}
	var camp struct {
		ID string `json:"id"`
	}
	spec, _ := json.Marshal(map[string]any{"name": "Dev cluster", "subject": "Hello {{.Name}}",
		"html": `<p>Hello {{.Name}}</p><a href="{{.UnsubscribeURL}}">unsubscribe</a>`,
		"text": "Hello {{.Name}} {{.UnsubscribeURL}}", "audience": map[string]any{"segment": "opted_in"}})
	if err := call(http.MethodPost, "/campaigns", "application/json", bytes.NewReader(spec), &camp); err != nil {
		return err
	}
	return call(http.MethodPost, "/campaigns/"+camp.ID+"/send", "", nil, nil)
}
