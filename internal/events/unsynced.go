package events

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

// republishUnsynced makes good what an embedded broker may have lost in
// its previous run's last sync interval iv (broker.Broker.Unsynced; the
// broker package says when that happens). Two things travel through the
// stream without a copy elsewhere being marked as pending:
//   - events the relay marked published: the outbox keeps them (for
//     outbox.Config.Retention), so those published within 2·iv + 10 s of
//     the latest publication are marked unpublished and the relay sends
//     them again (twice the interval: the server syncs every iv, and a sync
//     takes time; the margin covers the relay marking rows after the ack);
//   - campaign work, published straight to the stream: every sending
//     campaign starts a new generation, whose fan-out publishes again the
//     records still pending.
//
// What survived comes back as a duplicate, which the stream's duplicate
// window, the consumers' inboxes and the send claims drop. It runs before
// the relay starts.
func republishUnsynced(ctx context.Context, store *sqlstore.Store, iv time.Duration, log *slog.Logger) error {
	window := 2*iv + 10*time.Second
	events, err := store.RepublishRecent(ctx, window)
	if err != nil {
		return fmt.Errorf("events: republish after an unclean stop: %w", err)
	}
	campaigns, err := store.RestartSending(ctx, ladle.Now())
	if err != nil {
		return fmt.Errorf("events: restart campaigns after an unclean stop: %w", err)
	}
	log.Warn("publishing again what the embedded nats may have lost", "events", events,
		"campaigns_restarted", campaigns, "window", window)
	return nil
}
