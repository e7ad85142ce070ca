package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// What the embedded server can lose, and how Ladle finds out.
//
// With a sync interval (--nats-sync 1s; the default is "always") the
// embedded server acknowledges a publish once it has written it, and fsyncs
// its store in the background every interval. A process crash loses nothing: the kernel still
// has the writes. A machine crash (power loss, kernel panic) can lose what
// was acknowledged in the last interval: events the relay has already marked
// published, campaign work, consumers' acks. Ladle turns that loss into a
// delay. From the server's start until a clean stop has fsynced the whole
// store, the data dir holds a marker file naming the interval; a start that
// finds it reports that interval (Broker.Unsynced), and the event system
// publishes again what was published in it (internal/events). Everything it
// republishes is deduplicated downstream (the stream's duplicate window,
// each consumer's inbox, the campaign send claims), so a marker left by a
// mere process crash costs a little repeated work and nothing else.
//
// A server that fsyncs every write (SyncAlways) loses nothing and writes no
// marker of its own; it keeps one it found until the loss is dealt with.

// markerName is the marker's file name in the data dir.
const markerName = "jetstream.unsynced"

func markerPath(dataDir string) string { return filepath.Join(dataDir, markerName) }

// readMarker returns the interval a previous run left in dir's marker, or
// 0 when there is none (it stopped cleanly, or never ran).
func readMarker(dataDir string) (time.Duration, error) {
	b, err := os.ReadFile(markerPath(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("broker: %w", err)
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil || d <= 0 {
		// Unreadable (edited by hand, or a file system that tore the
		// rename): the interval is unknown, so replay generously.
		return UnknownUnsynced, nil
	}
	return d, nil
}

// UnknownUnsynced is what Unsynced reports for a marker whose interval
// cannot be read: a minute, far longer than any sensible sync interval.
const UnknownUnsynced = time.Minute

// writeMarker records iv durably (file and directory fsynced) before the
// server acknowledges anything.
func writeMarker(dataDir string, iv time.Duration) error {
	path := markerPath(dataDir)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	_, werr := f.WriteString(iv.String() + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("broker: marker: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("broker: marker: %w", err)
	}
	return syncDir(dataDir)
}

// clearMarker removes the marker once the store is on disk.
func clearMarker(dataDir string) error {
	if err := os.Remove(markerPath(dataDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(dataDir)
}

// syncTree fsyncs every file and directory under dir: a stopped server's
// store, whose last interval may still be only in the page cache (the
// server's own shutdown closes its files without syncing them).
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return syncDir(path)
		case d.Type().IsRegular():
			return syncPath(path)
		}
		return nil
	})
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(serr, cerr)
}

// syncDir fsyncs a directory so a file created, renamed or removed in it
// stays so. A file system that cannot sync a directory (EINVAL) is not an
// error.
func syncDir(dir string) error {
	if err := syncPath(dir); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
