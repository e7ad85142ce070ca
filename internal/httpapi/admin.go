package httpapi

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/problem"
)

// AdminStore is what the staff API reads.
type AdminStore interface {
	ladle.CampaignStore
	ladle.CouponStore
	RestaurantBySlug(ctx context.Context, slug string) (*ladle.Restaurant, error)
	RestaurantOrder(ctx context.Context, restaurantID int64, id string) (*ladle.Order, error)
	Refunds(ctx context.Context, restaurantID int64, orderID string) ([]ladle.Refund, ladle.RefundTotals, error)
}

// AdminDeps are the staff API's dependencies, all required but Logger.
type AdminDeps struct {
	Store     AdminStore
	Campaigns *campaign.Service
	// Ordering makes refunds (admin_refunds.go).
	Ordering *ordering.Service
	Logger   *slog.Logger
	// RequestTimeout bounds a request's database work (0: none); an import
	// is bounded by its body instead.
	RequestTimeout time.Duration
	// ImportTimeout is how long an import's body may take to arrive, in
	// place of the server's ReadTimeout (30 s in ladle serve, which would
	// cut a large import off). 0: ImportReadTimeout.
	ImportTimeout time.Duration
}

// MaxImportBytes bounds a customer import's body (about 5 million rows of
// typical length); the import streams it, so the bound is not memory.
const MaxImportBytes = 512 << 20

// ImportReadTimeout is AdminDeps.ImportTimeout's default: MaxImportBytes
// at about 1 MB/s.
const ImportReadTimeout = 10 * time.Minute

// RegisterAdmin adds the staff API under /api/v1/admin/restaurants/{slug}:
// scripts authenticate with "Authorization: Bearer ldl_…" (ladle token
// create). A token works only for its own restaurant (any other is 404, as
// if it did not exist) and only while its member still belongs to it, with
// the member's current role: campaigns, coupons and refunds need owner or manager.
func RegisterAdmin(mux *http.ServeMux, d AdminDeps) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	const base = "/api/v1/admin/restaurants/{slug}"
	h := func(pattern string, fn adminHandler, timeout bool) {
		mux.Handle(pattern, d.admin(fn, timeout))
	}
	h("POST "+base+"/customers/import", d.handleImport, false)
	h("GET "+base+"/campaigns", d.handleCampaignList, true)
	h("POST "+base+"/campaigns", d.handleCampaignCreate, true)
	h("GET "+base+"/campaigns/{id}", d.handleCampaignGet, true)
	h("GET "+base+"/campaigns/{id}/failed", d.handleCampaignFailed, true)
	h("POST "+base+"/campaigns/{id}/schedule", d.handleCampaignSchedule, true)
	for _, action := range []string{"send", "pause", "resume", "cancel", "retry-failed"} {
		h("POST "+base+"/campaigns/{id}/"+action, d.handleCampaignAction(action), true)
	}
	h("POST "+base+"/campaigns/{id}/test", d.handleCampaignTest, true)
	for _, rt := range couponRoutes(d) { // admin_coupons.go
		h(rt.pattern, rt.fn, true)
	}
	for _, rt := range refundRoutes(d) { // admin_refunds.go
		h(rt.pattern, rt.fn, true)
	}
}

type adminHandler func(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, tok *ladle.APIToken) error

func (d AdminDeps) fail(w http.ResponseWriter, r *http.Request, err error) {
	if ladle.ErrorKind(err) == ladle.KindUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ladle"`)
	}
	problem.Write(w, r, d.Logger, err)
}

func (d AdminDeps) admin(fn adminHandler, timeout bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if timeout && d.RequestTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		raw, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		hash := auth.HashAPIToken(strings.TrimSpace(raw))
		if !found || hash == nil {
			d.fail(w, r, ladle.Errorf(ladle.KindUnauthorized, ladle.CodeUnauthorized, "send a staff API token: Authorization: Bearer ldl_…"))
			return
		}
		tok, err := d.Store.APITokenByHash(ctx, hash, time.Now())
		if err != nil {
			if ladle.ErrorKind(err) == ladle.KindNotFound {
				err = ladle.Errorf(ladle.KindUnauthorized, ladle.CodeUnauthorized, "the token is unknown or revoked")
			}
			d.fail(w, r, err)
			return
		}
		slug := r.PathValue("slug")
		rest, err := d.Store.RestaurantBySlug(ctx, slug)
		if err == nil && rest.ID != tok.RestaurantID {
			err = ladle.NotFound("restaurant") // another restaurant's: as if it did not exist
		}
		if err != nil {
			d.fail(w, r, err)
			return
		}
		if tok.Role != ladle.RoleOwner && tok.Role != ladle.RoleManager {
			d.fail(w, r, ladle.Errorf(ladle.KindForbidden, ladle.CodeForbidden, "the staff API needs the owner or manager role"))
			return
		}
		if err := fn(w, r, rest, tok); err != nil {
			d.fail(w, r, err)
		}
	})
}

func (d AdminDeps) handleImport(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		return ladle.Errorf(ladle.KindInvalid, "unsupported_media_type", "Content-Type must be text/csv")
	}
	// The import streams its body as it arrives: give the read a deadline
	// of its own, bounded like the size. A server without deadlines (or a
	// writer that cannot set one, like a test recorder) keeps its own.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(cmp.Or(d.ImportTimeout, ImportReadTimeout)))
	body := http.MaxBytesReader(w, r.Body, MaxImportBytes)
	rep, err := campaign.Import(r.Context(), d.Store, rest.ID, body, time.Now())
	var cut *campaign.BodyError
	if errors.As(err, &cut) {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			return ladle.Errorf(ladle.KindTooLarge, "body_too_large", "the import is larger than %d bytes; split it "+
				"(the rows before line %d were imported; importing them again changes nothing)", MaxImportBytes, cut.Line)
		}
		return ladle.Errorf(ladle.KindInvalid, "body_incomplete", "the body stopped arriving near line %d (too slow, "+
			"or the connection dropped); the rows before it were imported: send the file again, importing them again changes nothing", cut.Line)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

type createdCampaign struct {
	*campaign.Progress
	AudienceSize int64 `json:"audience_size"`
}

func (d AdminDeps) handleCampaignCreate(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
	var in campaign.Input
	if err := decodeAdmin(w, r, &in); err != nil {
		return err
	}
	c, n, err := d.Campaigns.Create(r.Context(), rest.ID, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", r.URL.Path+"/"+c.ID)
	writeJSON(w, http.StatusCreated, createdCampaign{Progress: &campaign.Progress{Campaign: c, Pending: c.Pending()}, AudienceSize: n})
	return nil
}

// decodeAdmin is decode with the bigger bound a campaign's HTML needs.
func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "Content-Type must be application/json")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCampaignBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return ladle.Errorf(ladle.KindTooLarge, "body_too_large", "the body is larger than %d bytes", maxCampaignBytes)
		}
		return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "the body could not be read")
	}
	return decodeJSON(raw, v)
}

const maxCampaignBytes = 2 << 20

func (d AdminDeps) handleCampaignList(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
	list, err := d.Store.Campaigns(r.Context(), rest.ID, 100)
	if err != nil {
		return err
	}
	if list == nil {
		list = []ladle.Campaign{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"campaigns": list})
	return nil
}

func (d AdminDeps) handleCampaignGet(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
	p, err := d.Campaigns.Progress(r.Context(), rest.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (d AdminDeps) handleCampaignFailed(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	id := r.PathValue("id")
	if _, err := d.Store.Campaign(r.Context(), rest.ID, id); err != nil {
		return err
	}
	sends, err := d.Store.Sends(r.Context(), rest.ID, id, ladle.SendFailed, after, 500)
	if err != nil {
		return err
	}
	if sends == nil {
		sends = []ladle.Send{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"failed": sends})
	return nil
}

// handleCampaignSchedule schedules a draft: JSON {"send_at": RFC 3339}.
func (d AdminDeps) handleCampaignSchedule(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
	var in struct {
		SendAt time.Time `json:"send_at"`
	}
	if err := decodeAdmin(w, r, &in); err != nil {
		return err
	}
	if _, err := d.Campaigns.Schedule(r.Context(), rest.ID, r.PathValue("id"), in.SendAt); err != nil {
		return err
	}
	p, err := d.Campaigns.Progress(r.Context(), rest.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// handleCampaignTest sends the campaign as a test to the token's staff
// member (their own address: the request names none), once per
// Idempotency-Key: 202 with where it goes. Too many: 429 with Retry-After.
func (d AdminDeps) handleCampaignTest(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, tok *ladle.APIToken) error {
	id, err := d.Campaigns.SendTest(r.Context(), rest.ID, r.PathValue("id"), tok.UserID, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"queued": true, "to": tok.Email, "event_id": id})
	return nil
}

func (d AdminDeps) handleCampaignAction(action string) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
		ctx, id := r.Context(), r.PathValue("id")
		var err error
		var retried int64
		switch action {
		case "send":
			_, err = d.Campaigns.Start(ctx, rest.ID, id)
		case "pause":
			_, err = d.Campaigns.Pause(ctx, rest.ID, id)
		case "resume":
			_, err = d.Campaigns.Resume(ctx, rest.ID, id)
		case "cancel":
			_, err = d.Campaigns.Cancel(ctx, rest.ID, id)
		case "retry-failed":
			retried, _, err = d.Campaigns.RetryFailed(ctx, rest.ID, id)
		}
		if err != nil {
			return err
		}
		p, err := d.Campaigns.Progress(ctx, rest.ID, id)
		if err != nil {
			return err
		}
		if action == "retry-failed" {
			writeJSON(w, http.StatusOK, map[string]any{"retried": retried, "campaign": p})
			return nil
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}
}
