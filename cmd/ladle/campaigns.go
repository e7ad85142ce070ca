package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"

	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/httpapi"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/priority"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/web"
	"github.com/ladle-dev/ladle/internal/worker"
)

// campaigns is the campaign side of one server: the service behind the
// staff API and pages (every role that serves HTTP) and the sender (the
// worker and all roles), with a transport and a connection pool of its
// own, so campaign sends never take the connections receipts need.
type campaigns struct {
	svc    *campaign.Service
	signer *campaign.Signer
	sender *campaign.Sender
	tr     mail.Transport
	redis  io.Closer // the limiter's Redis client, if any
}

func startCampaigns(ctx context.Context, cfg *config, store *sqlstore.Store, b *broker.Broker, secret []byte,
	instance string, urgent *priority.Gate, log *slog.Logger) (*campaigns, error) {
	c := &campaigns{svc: campaign.NewService(store, log), signer: campaign.NewSigner(secret)}
	if cfg.Role == "api" {
		return c, nil
	}
	var lim campaign.Limiter = campaign.NewLocalLimiter(cfg.CampaignRate)
	if cfg.RedisURL != "" {
		rc, err := menucache.OpenRedis(cfg.RedisURL)
		if err != nil {
			return nil, err
		}
		c.redis = rc
		lim = campaign.NewRedisLimiter(rc, cfg.RedisPrefix+instance[:12]+":ratelimit:", cfg.CampaignRate)
	}
	tr, err := mail.Open(cfg.SMTPURL)
	if err != nil {
		c.stop()
		return nil, err
	}
	c.tr = tr
	c.sender, err = campaign.NewSender(campaign.SenderConfig{Store: store, Broker: b, Transport: tr, Limiter: lim,
		From: cfg.MailFrom, PublicURL: cfg.PublicURL, Signer: c.signer, Logger: log,
		Concurrency: cfg.CampaignWorkers, AckWait: cfg.AckWait, SendTimeout: cfg.SMTPTimeout, Yield: urgent, Lease: cfg.CampaignLease})
	if err != nil {
		c.sender = nil
		c.stop()
		return nil, err
	}
	if err := c.sender.Start(ctx); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// routes adds the staff API (its refunds made by orders), the unsubscribe
// page and the double opt-in confirmation page.
func (c *campaigns) routes(mux *http.ServeMux, cfg *config, store *sqlstore.Store, orders *ordering.Service, log *slog.Logger) {
	httpapi.RegisterAdmin(mux, httpapi.AdminDeps{Store: store, Campaigns: c.svc, Ordering: orders, Logger: log, RequestTimeout: cfg.RequestTimeout})
	mux.Handle("/unsubscribe/{token}", web.Unsubscribe(store, c.signer, log))
	mux.Handle("/confirm-email/{token}", web.ConfirmEmail(store, c.signer, log))
}

// confirmLinker makes the double opt-in links of the confirmation emails
// (the worker) that the confirmation page (the API) checks: both sign with
// the server secret, which every process of a deployment shares.
func confirmLinker(publicURL string, secret []byte) worker.ConfirmLinker {
	signer := campaign.NewSigner(secret)
	base := strings.TrimRight(publicURL, "/")
	return func(restaurantID int64, email string, now time.Time) string {
		return base + "/confirm-email/" + signer.ConfirmToken(restaurantID, email, now.Add(ladle.ConfirmTokenTTL))
	}
}

// stop stops the sender (it records what it sent), then closes its pool
// and the limiter's Redis client.
func (c *campaigns) stop() {
	if c.sender != nil {
		c.sender.Stop()
	}
	if c.tr != nil {
		c.tr.Close()
	}
	if c.redis != nil {
		_ = c.redis.Close()
	}
}
