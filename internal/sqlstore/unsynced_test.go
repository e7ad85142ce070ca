package sqlstore_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
)

// relayAll marks every unpublished event published at `at` and returns
// their ids.
func relayAll(t *testing.T, s *sqlstore.Store, at time.Time) []string {
	t.Helper()
	var ids []string
	for {
		n, err := s.RelayOutbox(context.Background(), 100, at, func(_ context.Context, evs []ladle.Event) ([]string, error) {
			var acked []string
			for _, ev := range evs {
				acked = append(acked, ev.ID)
			}
			ids = append(ids, acked...)
			return acked, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return ids
		}
	}
}

// TestRepublishRecent: after a broker lost its last interval, the events
// published within the window of the latest publication go out again, and
// none older (however long ago the broker stopped).
func TestRepublishRecent(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		if n, err := s.RepublishRecent(ctx, time.Minute); n != 0 || err != nil {
			t.Fatalf("empty outbox: republished %d, %v", n, err)
		}
		f := storetest.Seed(t, s)
		// Long ago: its menu events and two orders. Then, hours later,
		// three orders published within seconds of each other.
		past := time.Now().Add(-3 * time.Hour)
		placeOrder(t, s, f)
		placeOrder(t, s, f)
		old := relayAll(t, s, past)
		for range 3 {
			placeOrder(t, s, f)
		}
		last := past.Add(2 * time.Hour)
		recent := relayAll(t, s, last.Add(-5*time.Second))
		recent = append(recent, relayAll(t, s, last)...) // nothing new: an idle round
		if len(old) < 2 || len(recent) != 3 {
			t.Fatalf("published %d long ago and %d recently, want ≥2 and 3", len(old), len(recent))
		}
		n, err := s.RepublishRecent(ctx, 10*time.Second)
		if err != nil || n != 3 {
			t.Fatalf("republished %d (%v), want the 3 recent events", n, err)
		}
		again := relayAll(t, s, time.Now())
		if len(again) != 3 {
			t.Fatalf("relayed %v again, want the recent %v", again, recent)
		}
		for _, id := range recent {
			if !slices.Contains(again, id) {
				t.Errorf("event %s published within the window was not republished", id)
			}
		}
	})
}

// TestRestartSending: every sending campaign, of every restaurant, gets a
// new generation whose fan-out step is in the outbox; others are left be.
func TestRestartSending(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		f := storetest.Seed(t, s)
		rid := f.Restaurant.ID
		now := time.Now().UTC().Truncate(time.Second)
		mk := func(id string, to ...ladle.CampaignStatus) {
			t.Helper()
			c := &ladle.Campaign{ID: id, RestaurantID: rid, Name: id, Subject: "Hi", HTML: "<p>Hi</p>", Text: "Hi"}
			if err := s.CreateCampaign(ctx, c); err != nil {
				t.Fatal(err)
			}
			for _, st := range to {
				if _, err := s.MoveCampaign(ctx, rid, id, st, now); err != nil {
					t.Fatal(err)
				}
			}
		}
		mk("c-sending", ladle.CampaignSending)
		mk("c-paused", ladle.CampaignSending, ladle.CampaignPaused)
		mk("c-draft")
		relayAll(t, s, now)

		n, err := s.RestartSending(ctx, now)
		if err != nil || n != 1 {
			t.Fatalf("restarted %d (%v), want the one sending campaign", n, err)
		}
		for id, gen := range map[string]int64{"c-sending": 2, "c-paused": 1, "c-draft": 0} {
			c, err := s.Campaign(ctx, rid, id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Generation != gen {
				t.Errorf("%s: generation %d, want %d", id, c.Generation, gen)
			}
		}
		var starts []ladle.CampaignStart
		if _, err := s.RelayOutbox(ctx, 100, now, func(_ context.Context, evs []ladle.Event) ([]string, error) {
			var ids []string
			for _, ev := range evs {
				var w ladle.CampaignStart
				if ev.Type == ladle.EventCampaignWork && json.Unmarshal(ev.Payload, &w) == nil {
					starts = append(starts, w)
				}
				ids = append(ids, ev.ID)
			}
			return ids, nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(starts) != 1 || starts[0].Campaign != "c-sending" || starts[0].Generation != 2 || starts[0].Kind != "fanout" {
			t.Fatalf("outbox after the restart: %+v, want one fan-out of c-sending, generation 2", starts)
		}
	})
}
