package events_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/events"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// childEmbedded is `ladle serve --role api` on the embedded NATS with a
// sync interval (LADLE_DATA_DIR, LADLE_DATABASE_URL) until it is killed.
func childEmbedded() int {
	return runChild("api ready", func(ctx context.Context, store *sqlstore.Store) (*events.System, error) {
		return events.Start(ctx, events.Config{Role: "api", DataDir: os.Getenv("LADLE_DATA_DIR"), NATSSync: time.Second,
			Logger: quiet}, store, func(id string) string { return "/orders/" + id })
	})
}

// TestUnsyncedIntervalIsRepublished plays a machine crash on the embedded
// NATS with a sync interval: a process publishes events and starts a
// campaign, is killed, and its store comes back as it was at its last
// sync, without them (the kernel's copy is what a power loss takes). The
// next start must publish them again: every guest gets a receipt, exactly
// one, and the sending campaign starts a new generation. Without the
// republishing the receipts never come.
func TestUnsyncedIntervalIsRepublished(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "process test")
	dir := t.TempDir()
	url := "sqlite:" + filepath.Join(dir, "ladle.db")
	store := openStore(t, url)
	f := storetest.Seed(t, store)
	smtp := smtptest.Start(t)
	path := func(id string) string { return "/orders/" + id }
	ctx := context.Background()
	marker := filepath.Join(dir, "jetstream.unsynced")
	worker := events.Config{Role: "worker", DataDir: dir, NATSSync: time.Second, SMTPURL: smtp.URL(),
		MailFrom: "Ladle <orders@ladle.test>", PublicURL: "https://ladle.test", Logger: quiet}

	// A clean run: the stream and the receipt consumer exist, on disk.
	sys, err := events.Start(ctx, worker, store, path)
	if err != nil {
		t.Fatal(err)
	}
	sys.Stop()
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a clean stop left the marker (%v)", err)
	}
	synced := filepath.Join(t.TempDir(), "jetstream")
	if err := os.CopyFS(synced, os.DirFS(filepath.Join(dir, "jetstream"))); err != nil {
		t.Fatal(err)
	}

	// A run that publishes, then dies.
	cmd, err := spawnChild("embedded", "api ready", "LADLE_DATABASE_URL="+url, "LADLE_DATA_DIR="+dir)
	if cmd != nil {
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	}
	if err != nil {
		t.Fatal(err)
	}
	const orders = 3
	for i := range orders {
		place(t, store, f, i)
	}
	c := &ladle.Campaign{ID: "c-unsynced", RestaurantID: f.Restaurant.ID, Name: "News", Subject: "Hi", HTML: "<p>Hi</p>", Text: "Hi"}
	if err := store.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := store.MoveCampaign(ctx, c.RestaurantID, c.ID, ladle.CampaignSending, ladle.Now()); err != nil {
		t.Fatal(err)
	}
	// The process's relay finds this process's commits by polling (1 s).
	eventually(t, 30*time.Second, "the api process to publish everything", func() bool {
		n, _, err := store.OutboxBacklog(ctx)
		return err == nil && n == 0
	})
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the killed run left no marker: %v", err)
	}

	// The machine went down with it: the store is what was last synced.
	if err := os.RemoveAll(filepath.Join(dir, "jetstream")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(synced, filepath.Join(dir, "jetstream")); err != nil {
		t.Fatal(err)
	}

	sys, err = events.Start(ctx, worker, store, path)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a receipt for every order", func() bool { return smtp.Count() >= orders })
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show
	to := map[string]int{}
	for _, m := range smtp.Messages() {
		to[m.To]++
	}
	for i := range orders {
		if n := to[fmt.Sprintf("guest%d@example.com", i)]; n != 1 {
			t.Errorf("guest%d got %d receipts, want 1 (all: %v)", i, n, to)
		}
	}
	got, err := store.Campaign(ctx, c.RestaurantID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != 2 {
		t.Errorf("the sending campaign is at generation %d, want 2 (restarted)", got.Generation)
	}
	sys.Stop()
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the clean stop after the recovery left the marker (%v)", err)
	}
}
