package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"

	"github.com/ladle-dev/ladle"
)

// RequestCampaignTest implements ladle.CampaignStore. The campaign's row
// is locked for the transaction, so concurrent requests count each other
// (the bound holds across processes).
func (s *Store) RequestCampaignTest(ctx context.Context, restaurantID int64, campaignID string, userID int64, key string, now time.Time) (string, error) {
	now = ts(now)
	var eventID string
	err := s.withTx(ctx, func(tx *Tx) error {
		if _, err := campaignTx(ctx, tx, restaurantID, campaignID, true); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT event_id FROM campaign_tests WHERE campaign_id = $1 AND user_id = $2 AND request_key = $3`,
			campaignID, userID, key).Scan(&eventID)
		if err == nil {
			return nil // a double click: the first request's test
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var role string
		if err := tx.QueryRowContext(ctx, `SELECT role FROM memberships WHERE user_id = $1 AND restaurant_id = $2`,
			userID, restaurantID).Scan(&role); err != nil {
			return notFoundIfNoRows(err, "membership")
		}
		rows, err := tx.QueryContext(ctx, `SELECT created_at FROM campaign_tests WHERE campaign_id = $1 AND created_at > $2
			ORDER BY created_at LIMIT $3`, campaignID, now.Add(-ladle.CampaignTestWindow), ladle.CampaignTestsPerWindow)
		if err != nil {
			return err
		}
		var recent []time.Time
		for rows.Next() {
			var at time.Time
			if err := rows.Scan(timeCol{&at}); err != nil {
				rows.Close()
				return err
			}
			recent = append(recent, at)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(recent) >= ladle.CampaignTestsPerWindow {
			wait := recent[0].Add(ladle.CampaignTestWindow).Sub(now)
			return ladle.RateLimited(int(math.Ceil(wait.Seconds())), "at most %d test sends of a campaign per %v; try again in a moment",
				ladle.CampaignTestsPerWindow, ladle.CampaignTestWindow)
		}
		ev, err := appendEvent(ctx, tx, ladle.EventCampaignTest, restaurantID, campaignID,
			ladle.CampaignTest{CampaignID: campaignID, UserID: userID}, now)
		if err != nil {
			return err
		}
		eventID = ev.ID
		_, err = tx.ExecContext(ctx, `INSERT INTO campaign_tests (restaurant_id, campaign_id, user_id, request_key, event_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, restaurantID, campaignID, userID, key, eventID, now)
		return err
	})
	if err != nil {
		return "", err
	}
	return eventID, nil
}
