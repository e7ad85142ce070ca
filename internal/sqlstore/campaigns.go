package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ladle-dev/ladle"
)

const campaignCols = `id, restaurant_id, name, subject, html_body, text_body, audience, status, generation,
	enumerated, cursor, total,
	sent + (SELECT COALESCE(sum(k.sent), 0) FROM campaign_counts k WHERE k.restaurant_id = campaigns.restaurant_id AND k.campaign_id = campaigns.id),
	failed + (SELECT COALESCE(sum(k.failed), 0) FROM campaign_counts k WHERE k.restaurant_id = campaigns.restaurant_id AND k.campaign_id = campaigns.id),
	skipped + (SELECT COALESCE(sum(k.skipped), 0) FROM campaign_counts k WHERE k.restaurant_id = campaigns.restaurant_id AND k.campaign_id = campaigns.id),
	scheduled_at, started_at, finished_at, created_at, updated_at`

func scanCampaign(row interface{ Scan(...any) error }) (*ladle.Campaign, error) {
	c := &ladle.Campaign{}
	var audience []byte
	var status string
	if err := row.Scan(&c.ID, &c.RestaurantID, &c.Name, &c.Subject, &c.HTML, &c.Text, &audience, &status,
		&c.Generation, &c.Enumerated, &c.Cursor, &c.Total, &c.Sent, &c.Failed, &c.Skipped,
		nullTimeCol{&c.ScheduledAt}, nullTimeCol{&c.StartedAt}, nullTimeCol{&c.FinishedAt},
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt}); err != nil {
		return nil, err
	}
	c.Status = ladle.CampaignStatus(status)
	if err := json.Unmarshal(audience, &c.Audience); err != nil {
		return nil, fmt.Errorf("sqlstore: campaign %s audience: %w", c.ID, err)
	}
	return c, nil
}

// CreateCampaign implements ladle.CampaignStore.
func (s *Store) CreateCampaign(ctx context.Context, c *ladle.Campaign) error {
	if c.ID == "" {
		return errors.New("sqlstore: CreateCampaign needs an id")
	}
	audience, err := json.Marshal(c.Audience)
	if err != nil {
		return err
	}
	now := ts(s.now())
	c.Status, c.CreatedAt, c.UpdatedAt = ladle.CampaignDraft, now, now
	return s.withTx(ctx, func(tx *Tx) error {
		if err := restaurantExists(ctx, tx, c.RestaurantID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO campaigns (restaurant_id, id, name, subject, html_body, text_body,
			audience, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
			c.RestaurantID, c.ID, c.Name, c.Subject, c.HTML, c.Text, string(audience), string(c.Status), now)
		if tx.d.isUniqueViolation(err) {
			return conflict("campaign_exists", "campaign %s exists", c.ID)
		}
		return err
	})
}

// Campaign implements ladle.CampaignStore.
func (s *Store) Campaign(ctx context.Context, restaurantID int64, id string) (*ladle.Campaign, error) {
	var c *ladle.Campaign
	err := s.read1(ctx, func(tx *Tx) error {
		var err error
		c, err = scanCampaign(tx.QueryRowContext(ctx, `SELECT `+campaignCols+` FROM campaigns
			WHERE restaurant_id = $1 AND id = $2`, restaurantID, id))
		return notFoundIfNoRows(err, "campaign")
	})
	return c, err
}

func campaignTx(ctx context.Context, tx *Tx, restaurantID int64, id string, lock bool) (*ladle.Campaign, error) {
	q := `SELECT ` + campaignCols + ` FROM campaigns WHERE restaurant_id = $1 AND id = $2`
	if lock {
		q += tx.d.forUpdate
	}
	c, err := scanCampaign(tx.QueryRowContext(ctx, q, restaurantID, id))
	return c, notFoundIfNoRows(err, "campaign")
}

// Campaigns implements ladle.CampaignStore.
func (s *Store) Campaigns(ctx context.Context, restaurantID int64, limit int) ([]ladle.Campaign, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	return queryAll(ctx, s, scanCampaign, `SELECT `+campaignCols+` FROM campaigns WHERE restaurant_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`, restaurantID, limit)
}

// MoveCampaign implements ladle.CampaignStore.
func (s *Store) MoveCampaign(ctx context.Context, restaurantID int64, id string, to ladle.CampaignStatus, now time.Time) (*ladle.Campaign, error) {
	return s.moveCampaign(ctx, restaurantID, id, to, nil, now)
}

// ScheduleCampaign implements ladle.CampaignStore.
func (s *Store) ScheduleCampaign(ctx context.Context, restaurantID int64, id string, at time.Time) (*ladle.Campaign, error) {
	return s.moveCampaign(ctx, restaurantID, id, ladle.CampaignScheduled, &at, s.now())
}

func (s *Store) moveCampaign(ctx context.Context, restaurantID int64, id string, to ladle.CampaignStatus, at *time.Time, now time.Time) (*ladle.Campaign, error) {
	now = ts(now)
	var c *ladle.Campaign
	err := s.withTx(ctx, func(tx *Tx) error {
		var err error
		if c, err = campaignTx(ctx, tx, restaurantID, id, true); err != nil {
			return err
		}
		if !ladle.CampaignCanMove(c.Status, to) {
			return conflict(ladle.CodeInvalidTransition, "a %s campaign cannot be %s", c.Status, to)
		}
		gen := c.Generation
		if to == ladle.CampaignSending {
			gen++
			if c.StartedAt == nil {
				c.StartedAt = &now
			}
		}
		var finished *time.Time
		if to == ladle.CampaignCancelled {
			finished = &now
		}
		if at != nil {
			t := ts(*at)
			c.ScheduledAt = &t
		}
		res, err := tx.ExecContext(ctx, `UPDATE campaigns SET status = $3, generation = $4, started_at = $5,
			finished_at = $6, scheduled_at = $7, updated_at = $8 WHERE restaurant_id = $1 AND id = $2 AND status = $9`,
			restaurantID, id, string(to), gen, tsPtr(c.StartedAt), tsPtr(finished), tsPtr(c.ScheduledAt), now, string(c.Status))
		if err := mustAffect(res, err, "campaign"); err != nil {
			if ladle.ErrorKind(err) == ladle.KindNotFound {
				return conflict(ladle.CodeInvalidTransition, "the campaign changed meanwhile; retry")
			}
			return err
		}
		c.Status, c.Generation, c.FinishedAt, c.UpdatedAt = to, gen, finished, now
		if to == ladle.CampaignSending {
			return startGeneration(ctx, tx, c, now)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// startGeneration writes the first fan-out step of c's (new) generation to
// the outbox, in the transaction that moved c to sending: the start is as
// durable as the move (see internal/campaign's package comment).
func startGeneration(ctx context.Context, tx *Tx, c *ladle.Campaign, now time.Time) error {
	_, err := appendEvent(ctx, tx, ladle.EventCampaignWork, c.RestaurantID, c.ID,
		ladle.CampaignStart{Kind: "fanout", Restaurant: c.RestaurantID, Campaign: c.ID, Generation: c.Generation}, now)
	return err
}

// RestartSending starts a new generation of every sending campaign, of
// every restaurant, as a resume does: its first fan-out step goes to the
// outbox and publishes again the records still pending. It is for a broker
// that may have lost campaign work (broker.Broker.Unsynced): batch and
// fan-out messages are published straight to the stream, not through the
// outbox, so republishing the outbox alone would not bring them back. It
// returns how many campaigns it restarted.
func (s *Store) RestartSending(ctx context.Context, now time.Time) (int, error) {
	now = ts(now)
	var n int
	err := s.withTx(ctx, func(tx *Tx) error {
		cs, err := scanRows(scanCampaign)(tx.QueryContext(ctx, `SELECT `+campaignCols+` FROM campaigns WHERE status = 'sending'`+tx.d.forUpdate))
		if err != nil {
			return err
		}
		for _, c := range cs {
			c.Generation++
			if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET generation = $3, updated_at = $4
				WHERE restaurant_id = $1 AND id = $2`, c.RestaurantID, c.ID, c.Generation, now); err != nil {
				return err
			}
			if err := startGeneration(ctx, tx, &c, now); err != nil {
				return err
			}
		}
		n = len(cs)
		return nil
	})
	return n, err
}

// DueCampaigns implements ladle.CampaignStore.
func (s *Store) DueCampaigns(ctx context.Context, now time.Time, limit int) ([]ladle.Campaign, error) {
	return queryAll(ctx, s, scanCampaign, `SELECT `+campaignCols+` FROM campaigns
		WHERE status = 'scheduled' AND scheduled_at <= $1 ORDER BY scheduled_at LIMIT $2`, ts(now), limit)
}

// EnumerateRecipients implements ladle.CampaignStore.
func (s *Store) EnumerateRecipients(ctx context.Context, restaurantID int64, id string, after int64, limit int, now time.Time) (*ladle.Campaign, error) {
	now = ts(now)
	var c *ladle.Campaign
	err := s.withTx(ctx, func(tx *Tx) error {
		var err error
		if c, err = campaignTx(ctx, tx, restaurantID, id, true); err != nil {
			return err
		}
		if c.Enumerated || c.Cursor != after {
			return nil // done already, or another enumerator moved on
		}
		where, args := audienceWhere(c.Audience, now, 5)
		rows, err := tx.QueryContext(ctx, `INSERT INTO campaign_sends (restaurant_id, campaign_id, customer_id, email, name, status)
			SELECT c.restaurant_id, $2, c.id, c.email, c.name, 'pending' FROM customers c
			WHERE c.restaurant_id = $1 AND c.id > $3`+where+` ORDER BY c.id LIMIT $4
			RETURNING customer_id`,
			append([]any{restaurantID, id, after, limit}, args...)...)
		if err != nil {
			return err
		}
		var n, last int64
		for rows.Next() {
			var cid int64
			if err := rows.Scan(&cid); err != nil {
				rows.Close()
				return err
			}
			n++
			last = max(last, cid)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		c.Total += n
		if last > c.Cursor {
			c.Cursor = last
		}
		c.Enumerated = n < int64(limit)
		status := c.Status
		if c.Enumerated && status == ladle.CampaignSending && c.Sent+c.Failed+c.Skipped >= c.Total {
			status = ladle.CampaignDone
			c.FinishedAt = &now
		}
		c.Status, c.UpdatedAt = status, now
		_, err = tx.ExecContext(ctx, `UPDATE campaigns SET total = $3, cursor = $4, enumerated = $5, status = $6,
			finished_at = $7, updated_at = $8 WHERE restaurant_id = $1 AND id = $2`,
			restaurantID, id, c.Total, c.Cursor, c.Enumerated, string(status), tsPtr(c.FinishedAt), now)
		return err
	})
	if err == nil && c.Enumerated && c.Status == ladle.CampaignSending {
		err = s.finishIfComplete(ctx, restaurantID, id, now)
	}
	return c, err
}

// SendIDs implements ladle.CampaignStore.
func (s *Store) SendIDs(ctx context.Context, restaurantID int64, id string, after, through int64, statuses []ladle.SendStatus, limit int) ([]int64, error) {
	st := make([]string, len(statuses))
	for i, v := range statuses {
		st[i] = "'" + strings.ReplaceAll(string(v), "'", "") + "'"
	}
	var out []int64
	err := s.read1(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT customer_id FROM campaign_sends
			WHERE restaurant_id = $1 AND campaign_id = $2 AND customer_id > $3 AND customer_id <= $4
			AND status IN (`+strings.Join(st, ", ")+`) ORDER BY customer_id LIMIT $5`, restaurantID, id, after, through, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var cid int64
			if err := rows.Scan(&cid); err != nil {
				return err
			}
			out = append(out, cid)
		}
		return rows.Err()
	})
	return out, err
}

// ClaimSends implements ladle.CampaignStore.
//
// One transaction of two statements (on PostgreSQL sent as one pgx batch:
// BEGIN, the batch, COMMIT): the range's suppressed records are skipped,
// then up to Limit claimable ones are claimed. Both statements bound the
// range by customer id on the primary key, so their cost is the range's,
// never the campaign's (a hash semi-join over every record of a million
// recipient campaign was the PostgreSQL plan without the bounds).
func (s *Store) ClaimSends(ctx context.Context, c ladle.SendClaim) ([]ladle.Send, error) {
	now := ts(c.Now)
	lease := ts(c.Now.Add(c.Lease))
	var out []ladle.Send
	skippedAny := false
	err := s.withTx(ctx, func(tx *Tx) error {
		out = out[:0]
		skipArgs := []any{c.RestaurantID, c.CampaignID, c.From, c.To, now}
		claim := `WITH picked AS MATERIALIZED (
				SELECT customer_id FROM campaign_sends WHERE restaurant_id = $1 AND campaign_id = $2
				AND customer_id >= $3 AND customer_id <= $4 AND status IN ('pending', 'sending') AND due_at <= $5
				ORDER BY customer_id LIMIT $7` + tx.d.skipLocked + `)
			UPDATE campaign_sends SET status = 'sending', due_at = $6, attempts = attempts + 1
			WHERE restaurant_id = $1 AND campaign_id = $2 AND customer_id >= $3 AND customer_id <= $4
			AND customer_id IN (SELECT customer_id FROM picked)
			AND status IN ('pending', 'sending') AND due_at <= $5
			RETURNING customer_id, email, name, attempts`
		claimArgs := []any{c.RestaurantID, c.CampaignID, c.From, c.To, now, lease, c.Limit}
		scan := func(rows interface {
			Next() bool
			Scan(...any) error
		}) error {
			for rows.Next() {
				sd := ladle.Send{CampaignID: c.CampaignID, Status: ladle.SendSending}
				if err := rows.Scan(&sd.CustomerID, &sd.Email, &sd.Name, &sd.Attempts); err != nil {
					return err
				}
				out = append(out, sd)
			}
			return nil
		}
		var skipped int64
		if tx.batches() {
			b := &pgx.Batch{}
			b.Queue(sqlSkipSuppressed, skipArgs...)
			b.Queue(claim, claimArgs...)
			err := tx.sendBatch(ctx, b, func(br pgx.BatchResults) error {
				res, err := batchExec(br)
				if err != nil {
					return err
				}
				skipped, _ = res.RowsAffected()
				rows, err := br.Query()
				if err != nil {
					return err
				}
				defer rows.Close()
				if err := scan(rows); err != nil {
					return err
				}
				return rows.Err()
			})
			if err != nil {
				return err
			}
		} else {
			res, err := tx.ExecContext(ctx, sqlSkipSuppressed, skipArgs...)
			if err != nil {
				return err
			}
			skipped, _ = res.RowsAffected()
			rows, err := tx.QueryContext(ctx, claim, claimArgs...)
			if err != nil {
				return err
			}
			defer rows.Close()
			if err := scan(rows); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		if skipped > 0 {
			skippedAny = true
			if err := countSends(ctx, tx, c.RestaurantID, c.CampaignID, 0, 0, skipped, now); err != nil {
				return err
			}
			if tx.d == dialectSQLite {
				return finishIfCompleteTx(ctx, tx, c.RestaurantID, c.CampaignID, now)
			}
		}
		return nil
	})
	if err == nil && skippedAny && s.d == dialectPostgres {
		err = s.finishIfComplete(ctx, c.RestaurantID, c.CampaignID, now)
	}
	slices.SortFunc(out, func(a, b ladle.Send) int { return cmp.Compare(a.CustomerID, b.CustomerID) })
	return out, err
}

// sqlSkipSuppressed skips the claimable records of a range whose address
// is suppressed now: every send checks the suppression list, so someone
// who unsubscribes while the campaign is in flight is not mailed.
const sqlSkipSuppressed = `UPDATE campaign_sends SET status = 'skipped', reason = 'suppressed'
	WHERE restaurant_id = $1 AND campaign_id = $2 AND customer_id >= $3 AND customer_id <= $4
	AND status IN ('pending', 'sending') AND due_at <= $5
	AND EXISTS (SELECT 1 FROM suppressions s WHERE s.restaurant_id = campaign_sends.restaurant_id AND s.email = campaign_sends.email)`

// NextDue implements ladle.CampaignStore.
func (s *Store) NextDue(ctx context.Context, restaurantID int64, id string, from, to int64) (time.Time, bool, error) {
	var due time.Time
	found := false
	err := s.read1(ctx, func(tx *Tx) error {
		var v any
		err := tx.QueryRowContext(ctx, `SELECT min(due_at) FROM campaign_sends WHERE restaurant_id = $1 AND campaign_id = $2
			AND customer_id >= $3 AND customer_id <= $4 AND status IN ('pending', 'sending')`,
			restaurantID, id, from, to).Scan(&v)
		if err != nil || v == nil {
			return err
		}
		found = true
		return timeCol{&due}.Scan(v)
	})
	return due, found, err
}

// FinishSends implements ladle.CampaignStore.
//
// The sent records of a chunk are marked in one statement, bounded by the
// chunk's lowest and highest customer id on the primary key. On PostgreSQL
// a chunk that was all sent is one statement in all (mark and count,
// atomic on its own, no BEGIN/COMMIT), then the completion check; on SQLite
// the check runs inside the transaction (one writer: it sees every count
// before it).
func (s *Store) FinishSends(ctx context.Context, restaurantID int64, id string, results []ladle.SendResult, now time.Time) error {
	now = ts(now)
	var sentIDs []int64
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, r := range results {
		if r.Status == ladle.SendSent {
			sentIDs = append(sentIDs, r.CustomerID)
			lo, hi = min(lo, r.CustomerID), max(hi, r.CustomerID)
		}
	}
	if s.d == dialectPostgres && len(sentIDs) == len(results) {
		if len(sentIDs) == 0 {
			return nil
		}
		var n int64
		err := s.write.QueryRowContext(ctx, sqlMarkSentCountedPG, restaurantID, id, now, encodeIDs(sentIDs), lo, hi,
			rand.IntN(countShards)).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // none was still sending (a lease taken over)
		}
		if err != nil {
			return unavailable(err)
		}
		return s.finishIfComplete(ctx, restaurantID, id, now)
	}
	counted := false
	err := s.withTx(ctx, func(tx *Tx) error {
		var sent, failed, skipped int64
		if len(sentIDs) > 0 {
			res, err := tx.ExecContext(ctx, `UPDATE campaign_sends SET status = 'sent', sent_at = $3, reason = ''
				WHERE restaurant_id = $1 AND campaign_id = $2 AND customer_id >= $5 AND customer_id <= $6
				AND status = 'sending' AND customer_id IN (`+idsAt(tx.d, 4)+`)`,
				restaurantID, id, now, encodeIDs(sentIDs), lo, hi)
			if err != nil {
				return err
			}
			sent, _ = res.RowsAffected()
		}
		for _, r := range results {
			if r.Status == ladle.SendSent {
				continue
			}
			due := now
			if r.Status == ladle.SendPending {
				due = ts(r.RetryAt)
			}
			res, err := tx.ExecContext(ctx, `UPDATE campaign_sends SET status = $4, reason = $5, due_at = $6
				WHERE restaurant_id = $1 AND campaign_id = $2 AND customer_id = $3 AND status = 'sending'`, restaurantID, id, r.CustomerID, string(r.Status), truncate(r.Reason, 500), due)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			switch r.Status {
			case ladle.SendFailed:
				failed += n
			case ladle.SendSkipped:
				skipped += n
			}
			if r.Suppress != "" && n > 0 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO suppressions (restaurant_id, email, reason, created_at)
					SELECT restaurant_id, email, $4, $5 FROM campaign_sends
					WHERE restaurant_id = $1 AND campaign_id = $2 AND customer_id = $3
					ON CONFLICT (restaurant_id, email) DO NOTHING`,
					restaurantID, id, r.CustomerID, string(r.Suppress), now); err != nil {
					return err
				}
			}
		}
		if sent+failed+skipped == 0 {
			return nil
		}
		counted = true
		if err := countSends(ctx, tx, restaurantID, id, sent, failed, skipped, now); err != nil {
			return err
		}
		if tx.d == dialectSQLite {
			counted = false
			return finishIfCompleteTx(ctx, tx, restaurantID, id, now)
		}
		return nil
	})
	if err == nil && counted {
		err = s.finishIfComplete(ctx, restaurantID, id, now)
	}
	return err
}

// sqlMarkSentCountedPG marks a chunk's records sent and adds them to a
// count shard, in one statement; it returns a row only if some record was
// still sending (and so counted).
const sqlMarkSentCountedPG = `WITH upd AS (
		UPDATE campaign_sends SET status = 'sent', sent_at = $3, reason = ''
		WHERE restaurant_id = $1 AND campaign_id = $2 AND customer_id >= $5 AND customer_id <= $6
		AND status = 'sending' AND customer_id IN (SELECT jsonb_array_elements_text($4::jsonb)::bigint)
		RETURNING 1)
	INSERT INTO campaign_counts (restaurant_id, campaign_id, shard, sent, failed, skipped)
	SELECT $1::bigint, $2::text, $7::smallint, count(*), 0, 0 FROM upd HAVING count(*) > 0
	ON CONFLICT (restaurant_id, campaign_id, shard) DO UPDATE SET sent = campaign_counts.sent + excluded.sent
	RETURNING sent`

// countShards is how many count rows a campaign's outcomes spread over.
const countShards = 16

// countSends adds to a campaign's counts, in a random one of its count
// shards, so concurrent chunks do not queue on one row.
func countSends(ctx context.Context, tx *Tx, restaurantID int64, id string, sent, failed, skipped int64, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO campaign_counts (restaurant_id, campaign_id, shard, sent, failed, skipped)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (restaurant_id, campaign_id, shard) DO UPDATE SET
		sent = campaign_counts.sent + excluded.sent, failed = campaign_counts.failed + excluded.failed,
		skipped = campaign_counts.skipped + excluded.skipped`,
		restaurantID, id, rand.IntN(countShards), sent, failed, skipped)
	return err
}

// sqlFinishIfComplete moves an enumerated sending campaign whose counts
// reach its total to done.
const sqlFinishIfComplete = `UPDATE campaigns SET status = 'done', finished_at = $3, updated_at = $3
	WHERE restaurant_id = $1 AND id = $2 AND status = 'sending' AND enumerated = $4
	AND sent + failed + skipped + (SELECT COALESCE(sum(k.sent + k.failed + k.skipped), 0) FROM campaign_counts k
		WHERE k.restaurant_id = $1 AND k.campaign_id = $2) >= total`

// finishIfComplete runs sqlFinishIfComplete after the counting transaction
// committed, as a statement of its own (PostgreSQL): two chunks finishing
// at once each see the other's count once it is committed, so the later
// one always sees both.
func (s *Store) finishIfComplete(ctx context.Context, restaurantID int64, id string, now time.Time) error {
	if s.d == dialectSQLite {
		return s.withTx(ctx, func(tx *Tx) error { return finishIfCompleteTx(ctx, tx, restaurantID, id, now) })
	}
	_, err := s.write.ExecContext(ctx, sqlFinishIfComplete, restaurantID, id, ts(now), true)
	return unavailable(err)
}

// finishIfCompleteTx runs sqlFinishIfComplete inside a SQLite write
// transaction: the one writer sees every count committed or written
// before it in its group.
func finishIfCompleteTx(ctx context.Context, tx *Tx, restaurantID int64, id string, now time.Time) error {
	_, err := tx.ExecContext(ctx, sqlFinishIfComplete, restaurantID, id, ts(now), true)
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// idsAt is dialect.idsParam for parameter $n.
func idsAt(d *dialect, n int) string {
	if d == dialectSQLite {
		return fmt.Sprintf(`SELECT value FROM json_each($%d)`, n)
	}
	return fmt.Sprintf(`SELECT jsonb_array_elements_text($%d::jsonb)::bigint`, n)
}

// Sends implements ladle.CampaignStore.
func (s *Store) Sends(ctx context.Context, restaurantID int64, id string, status ladle.SendStatus, after int64, limit int) ([]ladle.Send, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var out []ladle.Send
	err := s.read1(ctx, func(tx *Tx) error {
		q := `SELECT customer_id, email, name, status, reason, attempts, sent_at FROM campaign_sends
			WHERE restaurant_id = $1 AND campaign_id = $2 AND status = $3 AND customer_id > $4`
		if status == ladle.SendFailed {
			q += ` AND failed` // the failed ones' partial index (migration 0065)
		}
		rows, err := tx.QueryContext(ctx, q+` ORDER BY customer_id LIMIT $5`, restaurantID, id, string(status), after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			sd := ladle.Send{CampaignID: id}
			var st string
			if err := rows.Scan(&sd.CustomerID, &sd.Email, &sd.Name, &st, &sd.Reason, &sd.Attempts, nullTimeCol{&sd.SentAt}); err != nil {
				return err
			}
			sd.Status = ladle.SendStatus(st)
			out = append(out, sd)
		}
		return rows.Err()
	})
	return out, err
}

// RetryFailed implements ladle.CampaignStore.
func (s *Store) RetryFailed(ctx context.Context, restaurantID int64, id string, now time.Time) (int64, *ladle.Campaign, error) {
	now = ts(now)
	var n int64
	var c *ladle.Campaign
	err := s.withTx(ctx, func(tx *Tx) error {
		var err error
		if c, err = campaignTx(ctx, tx, restaurantID, id, true); err != nil {
			return err
		}
		if c.Status == ladle.CampaignCancelled || c.Status == ladle.CampaignDraft {
			return conflict(ladle.CodeInvalidTransition, "a %s campaign has nothing to retry", c.Status)
		}
		res, err := tx.ExecContext(ctx, `UPDATE campaign_sends SET status = 'pending', reason = '', attempts = 0, due_at = $3
			WHERE restaurant_id = $1 AND campaign_id = $2 AND failed`, restaurantID, id, ts(time.Unix(0, 0)))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		if n == 0 {
			return nil
		}
		c.Failed -= n
		if c.Status == ladle.CampaignDone || c.Status == ladle.CampaignSending {
			c.Status = ladle.CampaignSending
			c.Generation++
			c.FinishedAt = nil
		}
		c.UpdatedAt = now
		_, err = tx.ExecContext(ctx, `UPDATE campaigns SET failed = failed - $3, status = $4, generation = $5, finished_at = $6, updated_at = $7
			WHERE restaurant_id = $1 AND id = $2`, restaurantID, id, n, string(c.Status), c.Generation, tsPtr(c.FinishedAt), now)
		if err != nil || c.Status != ladle.CampaignSending {
			return err
		}
		return startGeneration(ctx, tx, c, now)
	})
	if err != nil {
		return 0, nil, err
	}
	return n, c, nil
}

// CreateAPIToken implements ladle.CampaignStore.
func (s *Store) CreateAPIToken(ctx context.Context, t *ladle.APIToken, hash []byte) error {
	now := ts(s.now())
	return s.withTx(ctx, func(tx *Tx) error {
		var role string
		err := tx.QueryRowContext(ctx, `SELECT role FROM memberships WHERE user_id = $1 AND restaurant_id = $2`,
			t.UserID, t.RestaurantID).Scan(&role)
		if err != nil {
			return notFoundIfNoRows(err, "membership")
		}
		t.Role, t.CreatedAt = ladle.Role(role), now
		return tx.QueryRowContext(ctx, `INSERT INTO api_tokens (restaurant_id, user_id, name, token_hash, created_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, t.RestaurantID, t.UserID, t.Name, hash, now).Scan(&t.ID)
	})
}

const apiTokenSelect = `SELECT t.id, t.restaurant_id, t.user_id, u.email, m.role, t.name, t.created_at, t.last_used_at, t.revoked_at
	FROM api_tokens t JOIN users u ON u.id = t.user_id
	JOIN memberships m ON m.user_id = t.user_id AND m.restaurant_id = t.restaurant_id`

func scanAPIToken(row interface{ Scan(...any) error }) (*ladle.APIToken, error) {
	t := &ladle.APIToken{}
	var role string
	err := row.Scan(&t.ID, &t.RestaurantID, &t.UserID, &t.Email, &role, &t.Name, timeCol{&t.CreatedAt},
		nullTimeCol{&t.LastUsedAt}, nullTimeCol{&t.RevokedAt})
	t.Role = ladle.Role(role)
	return t, err
}

// APITokenByHash implements ladle.CampaignStore.
func (s *Store) APITokenByHash(ctx context.Context, hash []byte, now time.Time) (*ladle.APIToken, error) {
	var t *ladle.APIToken
	err := s.read1(ctx, func(tx *Tx) error {
		var err error
		t, err = scanAPIToken(tx.QueryRowContext(ctx, apiTokenSelect+` WHERE t.token_hash = $1 AND t.revoked_at IS NULL`, hash))
		return notFoundIfNoRows(err, "token")
	})
	if err != nil {
		return nil, err
	}
	// Last use is kept to the minute: a token used in a loop writes once a
	// minute, not once a request.
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
		_ = s.withTx(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1`, t.ID, ts(now))
			return err
		})
	}
	return t, nil
}

// APITokens implements ladle.CampaignStore.
func (s *Store) APITokens(ctx context.Context, restaurantID int64) ([]ladle.APIToken, error) {
	return queryAll(ctx, s, scanAPIToken, apiTokenSelect+` WHERE t.restaurant_id = $1 ORDER BY t.id DESC`, restaurantID)
}

// RevokeAPIToken implements ladle.CampaignStore.
func (s *Store) RevokeAPIToken(ctx context.Context, restaurantID, id int64, now time.Time) error {
	return s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $3 WHERE restaurant_id = $1 AND id = $2 AND revoked_at IS NULL`,
			restaurantID, id, ts(now))
		return mustAffect(res, err, "token")
	})
}

// queryAll runs a read of one statement and scans every row with scan.
func queryAll[T any](ctx context.Context, s *Store, scan func(interface{ Scan(...any) error }) (*T, error), query string, args ...any) ([]T, error) {
	var out []T
	err := s.read1(ctx, func(tx *Tx) error {
		var err error
		out, err = scanRows(scan)(tx.QueryContext(ctx, query, args...))
		return err
	})
	return out, err
}

// scanRows returns a func that scans every row of a query's result with
// scan and closes it: scanRows(scanX)(tx.QueryContext(…)).
func scanRows[T any](scan func(interface{ Scan(...any) error }) (*T, error)) func(*sql.Rows, error) ([]T, error) {
	return func(rows *sql.Rows, err error) ([]T, error) {
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []T
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, *v)
		}
		return out, rows.Err()
	}
}
