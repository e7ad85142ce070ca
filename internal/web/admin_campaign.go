package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/campaign"
)

// CampaignService is what the campaign pages drive (campaign.Service).
type CampaignService interface {
	Create(ctx context.Context, restaurantID int64, in campaign.Input) (*ladle.Campaign, int64, error)
	Start(ctx context.Context, restaurantID int64, id string) (*ladle.Campaign, error)
	Pause(ctx context.Context, restaurantID int64, id string) (*ladle.Campaign, error)
	Resume(ctx context.Context, restaurantID int64, id string) (*ladle.Campaign, error)
	Cancel(ctx context.Context, restaurantID int64, id string) (*ladle.Campaign, error)
	Schedule(ctx context.Context, restaurantID int64, id string, at time.Time) (*ladle.Campaign, error)
	RetryFailed(ctx context.Context, restaurantID int64, id string) (int64, *ladle.Campaign, error)
	SendTest(ctx context.Context, restaurantID int64, id string, userID int64, key string) (string, error)
	Progress(ctx context.Context, restaurantID int64, id string) (*campaign.Progress, error)
}

// campaignRoutes are the campaign pages: list and create, one campaign's
// live progress and its actions, and the staff API tokens.
var campaignRoutes = []staffRoute{
	{"GET /admin/r/{rid}/campaigns", func(s *server) staffHandler { return s.handleCampaigns }},
	{"POST /admin/r/{rid}/campaigns", func(s *server) staffHandler { return s.handleCampaignCreate }},
	{"GET /admin/r/{rid}/campaigns/{id}", func(s *server) staffHandler { return s.handleCampaign }},
	{"GET /admin/r/{rid}/campaigns/{id}/progress", func(s *server) staffHandler { return s.handleCampaignProgress }},
	{"GET /admin/r/{rid}/campaigns/{id}/live", func(s *server) staffHandler { return s.handleCampaignLive }}, // campaign_live.go
	{"POST /admin/r/{rid}/campaigns/{id}/{action}", func(s *server) staffHandler { return s.handleCampaignAction }},
	{"POST /admin/r/{rid}/api-tokens/{id}/revoke", func(s *server) staffHandler { return s.handleTokenRevoke }},
	{"POST /admin/r/{rid}/double-opt-in", func(s *server) staffHandler { return s.handleDoubleOptIn }},
}

func init() { staffRoutes = append(staffRoutes, campaignRoutes...) }

type campaignsPage struct {
	page
	Restaurant *ladle.Restaurant
	Campaigns  []ladle.Campaign
	Tokens     []ladle.APIToken
	// OptedIn counts the customers campaigns can reach; Pending those
	// whose consent waits for their confirmation (double opt-in).
	OptedIn, Pending int64
	Form             campaign.Input
	Errors           map[string]string
	Error            string
}

type campaignPage struct {
	page
	Restaurant *ladle.Restaurant
	P          *campaign.Progress
	Done       int64
	Error      string
	Notice     string
	// TestKey is the "Send test to me" form's request key, made when the
	// page was rendered: a double click sends one test.
	TestKey string
	SendAt  string // when a scheduled campaign starts, in the restaurant's zone
	Actions []campaignAction
	Failed  []ladle.Send // the first failed sends, with their reasons
}

// campaignAction is one button of the campaign page.
type campaignAction struct {
	Name, Label string
	Hidden      bool // it does not apply to the status (static/campaign.js keeps this up to date)
}

// campaignActions are the page's buttons and the statuses each applies to
// (static/campaign.js has the same table).
var campaignActions = []struct {
	name, label string
	when        []ladle.CampaignStatus
}{
	{"send", "Send now", []ladle.CampaignStatus{ladle.CampaignDraft, ladle.CampaignScheduled}},
	{"schedule", "Schedule", []ladle.CampaignStatus{ladle.CampaignDraft}},
	{"pause", "Pause", []ladle.CampaignStatus{ladle.CampaignScheduled, ladle.CampaignSending}},
	{"resume", "Resume", []ladle.CampaignStatus{ladle.CampaignPaused}},
	{"cancel", "Cancel", []ladle.CampaignStatus{ladle.CampaignDraft, ladle.CampaignScheduled, ladle.CampaignSending, ladle.CampaignPaused}},
	{"retry-failed", "Retry failed sends", []ladle.CampaignStatus{ladle.CampaignDone}},
}

// campaignAccess returns the campaign store, or answers 404 (campaigns
// off) or 403 (the staff role) and returns nil.
func (s *server) campaignAccess(w http.ResponseWriter, r *http.Request, st *staffView) ladle.CampaignStore {
	cs, ok := s.Store.(ladle.CampaignStore)
	if s.Campaigns == nil || !ok {
		s.notFound(w, r)
		return nil
	}
	if st.Role != ladle.RoleOwner && st.Role != ladle.RoleManager {
		s.errorPage(w, r, http.StatusForbidden, "Not allowed", "Campaigns need the owner or manager role.")
		return nil
	}
	return cs
}

func (s *server) handleCampaigns(w http.ResponseWriter, r *http.Request, st *staffView) {
	s.renderCampaigns(w, r, st, http.StatusOK, campaign.Input{Text: "Hi {{.Name}},\n\n\n\nUnsubscribe: {{.UnsubscribeURL}}",
		HTML: `<p>Hi {{.Name}},</p>` + "\n\n" + `<p><a href="{{.UnsubscribeURL}}">Unsubscribe</a></p>`}, nil, "")
}

func (s *server) renderCampaigns(w http.ResponseWriter, r *http.Request, st *staffView, status int, form campaign.Input, errs map[string]string, msg string) {
	cs := s.campaignAccess(w, r, st)
	if cs == nil {
		return
	}
	list, err := cs.Campaigns(r.Context(), st.Restaurant.ID, 100)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	tokens, err := cs.APITokens(r.Context(), st.Restaurant.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	optedIn, pending, err := cs.ConsentCounts(r.Context(), st.Restaurant.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, status, "admin_campaigns.html", campaignsPage{page: page{Title: "Campaigns · " + st.Restaurant.Name, Staff: st},
		Restaurant: st.Restaurant, Campaigns: list, Tokens: tokens, OptedIn: optedIn, Pending: pending,
		Form: form, Errors: errs, Error: msg})
}

func (s *server) handleCampaignCreate(w http.ResponseWriter, r *http.Request, st *staffView) {
	if s.campaignAccess(w, r, st) == nil {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 2<<20)
	in := campaign.Input{Name: r.PostFormValue("name"), Subject: r.PostFormValue("subject"),
		HTML: r.PostFormValue("html"), Text: r.PostFormValue("text"), Audience: ladle.Audience{Segment: "opted_in"}}
	in.Audience.OrderedWithinDays, _ = strconv.Atoi(r.PostFormValue("ordered_within_days"))
	in.Audience.MinOrders, _ = strconv.Atoi(r.PostFormValue("min_orders"))
	c, _, err := s.Campaigns.Create(r.Context(), st.Restaurant.ID, in)
	if err != nil {
		var le *ladle.Error
		if asLadleError(err, &le) && le.Kind == ladle.KindInvalid {
			s.renderCampaigns(w, r, st, http.StatusBadRequest, in, le.Fields, le.Message)
			return
		}
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/r/"+strconv.FormatInt(st.Restaurant.ID, 10)+"/campaigns/"+c.ID, http.StatusSeeOther)
}

func (s *server) handleCampaign(w http.ResponseWriter, r *http.Request, st *staffView) {
	cs := s.campaignAccess(w, r, st)
	if cs == nil {
		return
	}
	p, err := s.Campaigns.Progress(r.Context(), st.Restaurant.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cp := campaignPage{page: page{Title: p.Name + " · Campaigns", Staff: st},
		Restaurant: st.Restaurant, P: p, Done: p.Sent + p.Failed + p.Skipped, Error: r.URL.Query().Get("error"),
		Notice: r.URL.Query().Get("notice"), TestKey: newNonce()}
	if p.Status == ladle.CampaignScheduled && p.ScheduledAt != nil {
		cp.SendAt = p.ScheduledAt.In(st.Restaurant.Location()).Format("2006-01-02 15:04 MST")
	}
	for _, a := range campaignActions {
		cp.Actions = append(cp.Actions, campaignAction{Name: a.name, Label: a.label, Hidden: !slices.Contains(a.when, p.Status)})
	}
	if p.Failed > 0 {
		if cp.Failed, err = cs.Sends(r.Context(), st.Restaurant.ID, p.ID, ladle.SendFailed, 0, 100); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.render(w, r, http.StatusOK, "admin_campaign.html", cp)
}

// handleCampaignProgress is the JSON the progress page polls every second.
func (s *server) handleCampaignProgress(w http.ResponseWriter, r *http.Request, st *staffView) {
	if s.campaignAccess(w, r, st) == nil {
		return
	}
	p, err := s.Campaigns.Progress(r.Context(), st.Restaurant.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(p)
}

func (s *server) handleCampaignAction(w http.ResponseWriter, r *http.Request, st *staffView) {
	if s.campaignAccess(w, r, st) == nil {
		return
	}
	ctx, rid, id := r.Context(), st.Restaurant.ID, r.PathValue("id")
	var err error
	var notice string
	switch r.PathValue("action") {
	case "send":
		_, err = s.Campaigns.Start(ctx, rid, id)
	case "pause":
		_, err = s.Campaigns.Pause(ctx, rid, id)
	case "resume":
		_, err = s.Campaigns.Resume(ctx, rid, id)
	case "cancel":
		_, err = s.Campaigns.Cancel(ctx, rid, id)
	case "schedule":
		// datetime-local: a wall-clock time in the restaurant's zone.
		at, perr := time.ParseInLocation("2006-01-02T15:04", r.PostFormValue("send_at"), st.Restaurant.Location())
		if perr != nil {
			err = ladle.Errorf(ladle.KindInvalid, ladle.CodeValidation, "pick a date and time to send at")
		} else {
			_, err = s.Campaigns.Schedule(ctx, rid, id, at)
		}
	case "retry-failed":
		_, _, err = s.Campaigns.RetryFailed(ctx, rid, id)
	case "test":
		// To the signed-in member's own address, whatever the form says.
		if _, err = s.Campaigns.SendTest(ctx, rid, id, st.User.ID, r.PostFormValue("key")); err == nil {
			notice = "A test was sent to " + st.User.Email + "."
		}
	default:
		s.notFound(w, r)
		return
	}
	to := "/admin/r/" + strconv.FormatInt(rid, 10) + "/campaigns/" + id
	if err != nil {
		var le *ladle.Error
		if asLadleError(err, &le) && (le.Kind == ladle.KindConflict || le.Kind == ladle.KindUnavailable || le.Kind == ladle.KindInvalid ||
			le.Kind == ladle.KindRateLimited) {
			http.Redirect(w, r, to+"?error="+urlQueryEscape(le.Message), http.StatusSeeOther)
			return
		}
		s.fail(w, r, err)
		return
	}
	if notice != "" {
		to += "?notice=" + urlQueryEscape(notice)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (s *server) handleTokenRevoke(w http.ResponseWriter, r *http.Request, st *staffView) {
	cs := s.campaignAccess(w, r, st)
	if cs == nil {
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err := cs.RevokeAPIToken(r.Context(), st.Restaurant.ID, id, time.Now()); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/r/"+strconv.FormatInt(st.Restaurant.ID, 10)+"/campaigns#tokens", http.StatusSeeOther)
}

// handleDoubleOptIn turns double opt-in on or off (owners and managers,
// like the campaigns themselves). Turning it off confirms nobody: consent
// still pending stays out of every audience until its owner confirms.
func (s *server) handleDoubleOptIn(w http.ResponseWriter, r *http.Request, st *staffView) {
	cs := s.campaignAccess(w, r, st)
	if cs == nil {
		return
	}
	on := r.PostFormValue("double_opt_in") == "on"
	if err := cs.SetDoubleOptIn(r.Context(), st.Restaurant.ID, on); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/r/"+strconv.FormatInt(st.Restaurant.ID, 10)+"/campaigns#audience", http.StatusSeeOther)
}

func asLadleError(err error, target **ladle.Error) bool { return errors.As(err, target) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
