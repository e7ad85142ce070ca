package worker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/mail"
)

// handleCampaignTest sends a campaign.test event's email: the campaign
// rendered by the campaign sender's own renderer, for the staff member who
// asked (their name and address, read from the database: a member of the
// event's restaurant, or nobody is mailed), subject prefixed "[Test] ",
// its unsubscribe link (in the body and the List-Unsubscribe header, as a
// campaign email) the test one (campaign.TestUnsubscribePath), which
// unsubscribes nobody. It goes out once per event like a receipt (the
// inbox and the email row; the dev mailbox shows it) and is no send
// record: the campaign's counts never see it.
func (e *emailer) handleCampaignTest(ctx context.Context, ev ladle.Event) error {
	if done, err := e.processed(ctx, ConsumerCampaignTest, ev); err != nil || done {
		return err
	}
	var t ladle.CampaignTest
	if err := json.Unmarshal(ev.Payload, &t); err != nil || t.CampaignID == "" || t.UserID <= 0 || ev.RestaurantID <= 0 {
		return Permanent(fmt.Errorf("campaign.test event %s names no campaign and staff member", ev.ID))
	}
	c, err := e.Store.Campaign(ctx, ev.RestaurantID, t.CampaignID)
	if err != nil {
		return permanentIfNotFound(err)
	}
	if _, err := e.Store.Membership(ctx, t.UserID, ev.RestaurantID); err != nil {
		return permanentIfNotFound(err) // no longer (or never) a member: nobody is mailed
	}
	u, err := e.Store.UserByID(ctx, t.UserID)
	if err != nil {
		return permanentIfNotFound(err)
	}
	r, err := e.restaurant(ctx, ev.RestaurantID)
	if err != nil {
		return permanentIfNotFound(err)
	}
	m, err := campaign.TestMessage(c, r.Name, u.Name, u.Email, e.PublicURL)
	if err != nil {
		return Permanent(err)
	}
	em := &ladle.Email{
		RestaurantID: r.ID, Consumer: ConsumerCampaignTest, EventID: ev.ID, Kind: ConsumerCampaignTest,
		From: e.From, To: mail.Address(u.Name, u.Email), Subject: m.Subject, Text: m.Text, HTML: m.HTML, ListUnsubscribe: m.ListUnsubscribe,
		MessageID: ev.ID + "." + ConsumerCampaignTest + "@" + e.domain, Transport: e.Transport.Name(), CreatedAt: e.Clock(),
	}
	return e.deliver(ctx, ev, em)
}

func permanentIfNotFound(err error) error {
	if ladle.ErrorKind(err) == ladle.KindNotFound {
		return Permanent(err)
	}
	return err
}
