package ladle

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Email campaigns: customers with marketing consent, a suppression list,
// audiences, campaigns and one durable send record per recipient. The
// contract is CampaignStore; internal/campaign runs the fan-out and the
// sending on top of it.

// ConsentSource says where a customer's marketing consent was recorded.
const (
	ConsentCheckout = "checkout" // the box at checkout (CreateOrder)
	ConsentImport   = "import"   // a CSV import by staff
)

// Double opt-in (Restaurant.DoubleOptIn, off by default):
//
//   - A guest who ticks the marketing box at checkout (the web page or the
//     order API: every guest-facing way in goes through CreateOrder) is
//     not opted in but pending (ConsentPendingAt). Pending customers are
//     in no audience.
//   - When the order is placed, a worker emails the guest a confirmation
//     link (signed, expiring after ConfirmTokenTTL) through the outbox,
//     exactly once per event, and at most once per customer per
//     ConfirmEmailInterval however often they order with the box ticked.
//   - Opening the link shows a page; only its POST confirms
//     (ConfirmConsent): the customer is opted in with source checkout and
//     ConsentConfirmedAt set, and an unsubscribe of theirs is lifted (they
//     asked again, explicitly). A hard bounce or complaint is not lifted,
//     and those addresses get no confirmation email.
//   - A CSV import is the restaurant's own assertion that it gathered
//     consent elsewhere: double opt-in does not apply to it (Ladle would
//     otherwise mail a whole list the guests never gave it), and it never
//     lifts a suppression, so an unsubscribed address imported as opted
//     in still gets no campaign.

// ConfirmEmailInterval is the least time between two confirmation emails
// to one customer.
const ConfirmEmailInterval = 24 * time.Hour

// ConfirmTokenTTL is how long a confirmation link works.
const ConfirmTokenTTL = 7 * 24 * time.Hour

// Consent states of a customer, as staff see them (Customer.Consent).
const (
	ConsentOptedIn      = "opted_in"     // in audiences (unless suppressed)
	ConsentPending      = "pending"      // asked at checkout, not yet confirmed
	ConsentNone         = "none"         // no consent
	ConsentUnsubscribed = "unsubscribed" // suppressed, whatever was given
)

// Customer is one restaurant's customer as campaigns see it.
type Customer struct {
	ID             int64      `json:"id"`
	RestaurantID   int64      `json:"-"`
	Email          string     `json:"email"`
	Name           string     `json:"name"`
	Phone          string     `json:"phone,omitempty"`
	MarketingOptIn bool       `json:"marketing_opt_in"`
	ConsentAt      *time.Time `json:"consent_at,omitempty"`
	ConsentSource  string     `json:"consent_source,omitempty"`
	// ConsentPendingAt is when the guest last gave consent that awaits
	// confirmation (double opt-in); ConsentConfirmedAt when they confirmed.
	ConsentPendingAt   *time.Time `json:"consent_pending_at,omitempty"`
	ConsentConfirmedAt *time.Time `json:"consent_confirmed_at,omitempty"`
	// Suppressed is why the address is never mailed by a campaign, or "".
	Suppressed SuppressionReason `json:"suppressed,omitempty"`
}

// Consent is the customer's consent state (Consent* constants): a
// suppression wins, then consent given, then consent pending.
func (c *Customer) Consent() string {
	switch {
	case c.Suppressed != "":
		return ConsentUnsubscribed
	case c.MarketingOptIn:
		return ConsentOptedIn
	case c.ConsentPendingAt != nil:
		return ConsentPending
	}
	return ConsentNone
}

// CustomerQuery selects one page of a restaurant's customers for staff
// (ListCustomers): in customer id order, after After, matching Search.
type CustomerQuery struct {
	// After is the previous page's last customer id; 0 for the first page.
	After int64
	// Search matches a part of the email or of the name, ignoring case
	// (ASCII letters only on SQLite); "" matches every customer. At most
	// MaxCustomerSearch characters, valid UTF-8, no control characters;
	// surrounding spaces are ignored.
	Search string
	// Limit is the page size: 0 for DefaultCustomerLimit, at most
	// MaxCustomerLimit (more is cut to it).
	Limit int
}

// Bounds of CustomerQuery.
const (
	DefaultCustomerLimit = 50
	MaxCustomerLimit     = 100
	MaxCustomerSearch    = 100
)

// Validate returns a validation_failed error (field "after" or "q") when
// q cannot be run, else nil.
func (q *CustomerQuery) Validate() error {
	if q.After < 0 {
		return customerQueryInvalid("after", "must be a customer id")
	}
	search := strings.TrimSpace(q.Search)
	if !utf8.ValidString(search) || strings.IndexFunc(search, unicode.IsControl) >= 0 {
		return customerQueryInvalid("q", "must be plain text")
	}
	if utf8.RuneCountInString(search) > MaxCustomerSearch {
		return customerQueryInvalid("q", fmt.Sprintf("must be at most %d characters", MaxCustomerSearch))
	}
	return nil
}

func customerQueryInvalid(field, msg string) *Error {
	return &Error{Kind: KindInvalid, Code: CodeValidation, Message: field + " " + msg, Fields: map[string]string{field: msg}}
}

// ConfirmOutcome says what ConfirmConsent did.
type ConfirmOutcome int

const (
	ConfirmNothing   ConfirmOutcome = iota // nothing pending (withdrawn, never asked, or unsubscribed since)
	ConfirmDone                            // pending consent is now confirmed
	ConfirmedAlready                       // opted in already (a second click)
)

// CustomerImport is one valid row of an import.
type CustomerImport struct {
	Email, Name, Phone string
	MarketingOptIn     bool
}

// ImportOutcome says what ImportCustomer did with a row.
type ImportOutcome int

const (
	ImportUnchanged ImportOutcome = iota // the customer already had exactly this
	ImportCreated
	ImportUpdated
)

// SuppressionReason is why an address is never mailed by a campaign.
type SuppressionReason string

const (
	SuppressUnsubscribed SuppressionReason = "unsubscribed"
	SuppressHardBounce   SuppressionReason = "hard_bounce"
	SuppressComplaint    SuppressionReason = "complaint"
)

// Audience selects a campaign's recipients among the restaurant's
// customers. Every audience includes only customers who opted in to
// marketing and are not suppressed; the filters narrow it further. Zero
// values are "no filter".
type Audience struct {
	Segment string `json:"segment"` // "opted_in" (the only segment; the default)
	// OrderedWithinDays: at least one order in the last N days.
	OrderedWithinDays int `json:"ordered_within_days,omitempty"`
	// MinOrders: at least K orders ever.
	MinOrders int `json:"min_orders,omitempty"`
	// NotOrderedSince: no order at or after this time.
	NotOrderedSince *time.Time `json:"not_ordered_since,omitempty"`
}

// Filtered reports whether a narrows the opted-in segment by orders (any
// of the filters above is set): without filters the audience is every
// opted-in, unsuppressed customer, which a store can count without
// reading them all.
func (a Audience) Filtered() bool {
	return a.OrderedWithinDays > 0 || a.MinOrders > 0 || a.NotOrderedSince != nil
}

// Validate returns per-field problems, empty when a is usable.
func (a *Audience) Validate() map[string]string {
	errs := map[string]string{}
	if a.Segment == "" {
		a.Segment = "opted_in"
	}
	if a.Segment != "opted_in" {
		errs["audience.segment"] = `must be "opted_in"`
	}
	if a.OrderedWithinDays < 0 || a.OrderedWithinDays > 3650 {
		errs["audience.ordered_within_days"] = "must be 0..3650"
	}
	if a.MinOrders < 0 || a.MinOrders > 1_000_000 {
		errs["audience.min_orders"] = "must be 0..1000000"
	}
	return errs
}

// CampaignStatus is where a campaign is in its lifecycle:
//
//	draft → scheduled → sending ⇄ paused → done
//	any but done → cancelled
type CampaignStatus string

const (
	CampaignDraft     CampaignStatus = "draft"
	CampaignScheduled CampaignStatus = "scheduled"
	CampaignSending   CampaignStatus = "sending"
	CampaignPaused    CampaignStatus = "paused"
	CampaignDone      CampaignStatus = "done"
	CampaignCancelled CampaignStatus = "cancelled"
)

// CampaignCanMove reports whether a campaign may go from one status to
// another by a staff action. (sending → done is the sender's, not staff's.)
func CampaignCanMove(from, to CampaignStatus) bool {
	switch to {
	case CampaignScheduled:
		return from == CampaignDraft
	case CampaignSending:
		return from == CampaignDraft || from == CampaignScheduled || from == CampaignPaused
	case CampaignPaused:
		return from == CampaignSending || from == CampaignScheduled
	case CampaignCancelled:
		return from == CampaignDraft || from == CampaignScheduled || from == CampaignSending || from == CampaignPaused
	}
	return false
}

// Campaign is one email campaign of one restaurant.
type Campaign struct {
	ID           string         `json:"id"` // UUIDv7
	RestaurantID int64          `json:"-"`
	Name         string         `json:"name"`
	Subject      string         `json:"subject"`
	HTML         string         `json:"html"`
	Text         string         `json:"text"`
	Audience     Audience       `json:"audience"`
	Status       CampaignStatus `json:"status"`
	// Generation counts the times sending (re)started: resumes and bulk
	// retries publish the pending work again under a new generation.
	Generation int64 `json:"-"`
	// Enumerated is set once every recipient has a send record; Cursor is
	// the last customer id enumerated so far.
	Enumerated bool  `json:"-"`
	Cursor     int64 `json:"-"`
	// Counts of send records.
	Total   int64 `json:"total"`
	Sent    int64 `json:"sent"`
	Failed  int64 `json:"failed"`
	Skipped int64 `json:"skipped"`

	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Pending is the number of recipients neither sent, failed nor skipped.
func (c *Campaign) Pending() int64 {
	if p := c.Total - c.Sent - c.Failed - c.Skipped; p > 0 {
		return p
	}
	return 0
}

// SendStatus is the state of one recipient's send record.
type SendStatus string

const (
	SendPending SendStatus = "pending"
	SendSending SendStatus = "sending" // claimed by a worker, under a lease
	SendSent    SendStatus = "sent"
	SendFailed  SendStatus = "failed"
	SendSkipped SendStatus = "skipped"
)

// Send is one recipient's send record.
type Send struct {
	CampaignID string     `json:"-"`
	CustomerID int64      `json:"customer_id"`
	Email      string     `json:"email"`
	Name       string     `json:"name"`
	Status     SendStatus `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	Attempts   int        `json:"attempts"`
	SentAt     *time.Time `json:"sent_at,omitempty"`
}

// SendResult is a worker's outcome for one claimed send record.
type SendResult struct {
	CustomerID int64
	Status     SendStatus // sent, failed, skipped, or pending (retry at RetryAt)
	Reason     string
	RetryAt    time.Time
	// Suppress, when set, adds the address to the suppression list in the
	// same transaction (a hard bounce).
	Suppress SuppressionReason
}

// SendClaim is the input of ClaimSends: the send records of customers
// From..To (inclusive) of one campaign.
type SendClaim struct {
	RestaurantID int64
	CampaignID   string
	From, To     int64
	Limit        int
	Now          time.Time
	// Lease is how long the claim holds: past it, another worker may claim
	// the records again (their claimer is presumed dead).
	Lease time.Duration
}

// APIToken is a staff API token. Only its hash is stored.
type APIToken struct {
	ID           int64      `json:"id"`
	RestaurantID int64      `json:"-"`
	UserID       int64      `json:"user_id"`
	Email        string     `json:"email"`
	Role         Role       `json:"role"`
	Name         string     `json:"name"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsedAt   *time.Time `json:"last_used_at,omitempty"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
}

// Test sends ("Send test to me") of one campaign are bounded to
// CampaignTestsPerWindow per CampaignTestWindow, whoever asks.
const (
	CampaignTestsPerWindow = 5
	CampaignTestWindow     = time.Minute
)

// CampaignStore is the storage contract of campaigns. Every method is
// tenant-scoped by restaurantID like Store's.
type CampaignStore interface {
	// ImportCustomers creates or updates customers by email, in one
	// transaction, and says what happened to each row (in order): name and
	// phone are set when given; consent given sets ConsentAt = now and
	// source import unless the customer had consented already; consent
	// withheld (false) withdraws it. A row that would change nothing is
	// ImportUnchanged and writes nothing, so an import is idempotent.
	ImportCustomers(ctx context.Context, restaurantID int64, rows []CustomerImport, now time.Time) ([]ImportOutcome, error)
	// CustomerByEmail returns the customer (not_found if none).
	CustomerByEmail(ctx context.Context, restaurantID int64, email string) (*Customer, error)
	// ConsentCounts counts the customers opted in (and not suppressed:
	// what an unfiltered audience selects) and those pending confirmation.
	ConsentCounts(ctx context.Context, restaurantID int64) (optedIn, pending int64, err error)
	// ListCustomers returns one page of the restaurant's customers (ids
	// ascending, after q.After), with their consent and suppression, for
	// the staff's customer list. A next page may exist when the page is
	// full; its After is the last customer's id. An invalid q is
	// validation_failed (CustomerQuery.Validate).
	ListCustomers(ctx context.Context, restaurantID int64, q CustomerQuery) ([]Customer, error)

	// SetDoubleOptIn turns double opt-in on or off for the restaurant.
	// Turning it off confirms nothing: pending customers stay pending
	// until they confirm, or give consent again without it.
	SetDoubleOptIn(ctx context.Context, restaurantID int64, on bool) error
	// ClaimConfirmEmail decides whether the customer gets a confirmation
	// email for eventID, and records it: yes when their consent is pending
	// (and not yet in force: opted in and not unsubscribed), their address
	// is not suppressed for a bounce or complaint, and no confirmation
	// email went out in the last ConfirmEmailInterval — or the last one
	// was claimed by this same event (a redelivery). It returns the
	// customer when claimed, nil when not.
	ClaimConfirmEmail(ctx context.Context, restaurantID, customerID int64, eventID string, now time.Time) (*Customer, error)
	// ConfirmConsent confirms the pending consent of the address, if any:
	// opted in now with source checkout and ConsentConfirmedAt, pending
	// cleared, an unsubscribe lifted. Opted in already and not suppressed:
	// ConfirmedAlready, nothing written. Anything else: ConfirmNothing.
	ConfirmConsent(ctx context.Context, restaurantID int64, email string, now time.Time) (ConfirmOutcome, error)
	// AudienceSize counts the customers a would select now.
	AudienceSize(ctx context.Context, restaurantID int64, a Audience, now time.Time) (int64, error)

	// Suppress adds email to the suppression list (the first reason stays).
	Suppress(ctx context.Context, restaurantID int64, email string, why SuppressionReason, now time.Time) error
	// Suppressed returns why email is suppressed, or "".
	Suppressed(ctx context.Context, restaurantID int64, email string) (SuppressionReason, error)

	// CreateCampaign inserts c as a draft (c.ID must be set).
	CreateCampaign(ctx context.Context, c *Campaign) error
	Campaign(ctx context.Context, restaurantID int64, id string) (*Campaign, error)
	// Campaigns lists the restaurant's campaigns, newest first.
	Campaigns(ctx context.Context, restaurantID int64, limit int) ([]Campaign, error)
	// MoveCampaign changes the status if CampaignCanMove allows it from the
	// current one (atomically; else invalid_transition). Moving to sending
	// from draft/scheduled sets StartedAt; every move to sending increments
	// Generation and writes the generation's first work message
	// (EventCampaignWork) to the outbox in the same transaction, so a
	// campaign is never sending with nothing queued. It returns the
	// campaign after the move.
	MoveCampaign(ctx context.Context, restaurantID int64, id string, to CampaignStatus, now time.Time) (*Campaign, error)
	// ScheduleCampaign moves a draft to scheduled for at.
	ScheduleCampaign(ctx context.Context, restaurantID int64, id string, at time.Time) (*Campaign, error)
	// DueCampaigns lists scheduled campaigns due at now (any restaurant).
	DueCampaigns(ctx context.Context, now time.Time, limit int) ([]Campaign, error)

	// EnumerateRecipients creates send records (pending) for the next at
	// most limit customers of the audience after the campaign's cursor, in
	// customer id order, moves the cursor and adds them to Total, in one
	// transaction; when fewer than limit were found it sets Enumerated
	// (finishing the campaign if nothing remains). It does nothing unless
	// the cursor is still `after` (another enumerator got there first) and
	// returns the campaign as it is after.
	EnumerateRecipients(ctx context.Context, restaurantID int64, id string, after int64, limit int, now time.Time) (*Campaign, error)
	// SendIDs returns the customer ids after `after` (ascending, at most
	// limit) of the campaign's send records in the given statuses.
	SendIDs(ctx context.Context, restaurantID int64, id string, after, through int64, statuses []SendStatus, limit int) ([]int64, error)
	// ClaimSends marks up to Limit records of the range that are pending
	// and due, or sending under an expired lease, as sending under a new
	// lease, and returns them (ascending). Each claim counts an attempt.
	ClaimSends(ctx context.Context, c SendClaim) ([]Send, error)
	// NextDue returns when the earliest record of the range still pending
	// (or leased) becomes claimable, and whether there is one.
	NextDue(ctx context.Context, restaurantID int64, id string, from, to int64) (time.Time, bool, error)
	// FinishSends records results of claimed records (only records still
	// sending change), updates the campaign's counts and, when nothing is
	// left of an enumerated sending campaign, moves it to done — one
	// transaction.
	FinishSends(ctx context.Context, restaurantID int64, id string, results []SendResult, now time.Time) error
	// Durable returns once every write transaction the store has committed
	// so far is durable (on disk, surviving a power loss). Only the ones
	// run under WithLazyCommit may not be when they return.
	Durable(ctx context.Context) error
	// Sends lists the campaign's records in a status, by customer id after
	// `after`.
	Sends(ctx context.Context, restaurantID int64, id string, status SendStatus, after int64, limit int) ([]Send, error)
	// RetryFailed moves every failed record back to pending (attempts
	// reset) and the campaign to sending under a new generation (with its
	// EventCampaignWork, as MoveCampaign); it returns how many and the
	// campaign.
	RetryFailed(ctx context.Context, restaurantID int64, id string, now time.Time) (int64, *Campaign, error)

	// RequestCampaignTest asks for a test send of the campaign (in any
	// status) to the staff member userID, who must be a member of the
	// restaurant (else not_found): it writes EventCampaignTest to the
	// outbox and records the request under key, in one transaction, and
	// returns the event id. The same campaign, member and key again
	// returns the first request's event id and writes nothing (a double
	// click sends one email). Past CampaignTestsPerWindow requests of the
	// campaign within CampaignTestWindow it is rate_limited, with the
	// seconds until the oldest leaves the window. Test sends have no send
	// records: the campaign's counts never include them.
	RequestCampaignTest(ctx context.Context, restaurantID int64, campaignID string, userID int64, key string, now time.Time) (eventID string, err error)

	// CreateAPIToken stores a token by the SHA-256 hash of its secret.
	CreateAPIToken(ctx context.Context, t *APIToken, hash []byte) error
	// APITokenByHash returns an unrevoked token with the member's current
	// role (a member removed from the restaurant: not_found), and records
	// its use.
	APITokenByHash(ctx context.Context, hash []byte, now time.Time) (*APIToken, error)
	APITokens(ctx context.Context, restaurantID int64) ([]APIToken, error)
	RevokeAPIToken(ctx context.Context, restaurantID, id int64, now time.Time) error
}

// lazyCommitKey marks a context's write transactions as lazily committed.
type lazyCommitKey struct{}

// WithLazyCommit marks the write transactions run under ctx as ones whose
// durability the caller sees to itself: the store may return from them
// before they are on disk, and the caller calls Durable before anything
// outside the store depends on them (a message published that refers to
// them, a message acknowledged because of them). On SQLite they commit
// without an fsync: they survive the process dying, as every commit does,
// but a power loss may undo the last of them. Campaign sends are made this
// way (many small transactions, whose fsyncs the disk would otherwise
// serve between every order's and receipt's); PostgreSQL ignores it.
func WithLazyCommit(ctx context.Context) context.Context {
	return context.WithValue(ctx, lazyCommitKey{}, true)
}

// IsLazyCommit reports whether ctx was marked with WithLazyCommit.
func IsLazyCommit(ctx context.Context) bool {
	b, _ := ctx.Value(lazyCommitKey{}).(bool)
	return b
}
