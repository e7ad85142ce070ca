// Package blob stores files (menu images, for now) behind one small,
// portable interface, Store, with two implementations: a local folder (the
// embedded default) and any S3-compatible bucket (AWS S3, MinIO, R2, GCS's
// XML API, Ceph…), chosen by a URL at start-up (Open).
//
// Keys are slash-separated paths of safe characters ("img/ab12….jpg"); the
// same key names the same blob in every implementation, so moving from a
// folder to a bucket is a copy, not a migration.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
)

// Store keeps blobs under keys. Every method is safe for concurrent use.
// Errors are *ladle.Error values (wrapped with the operation, the key and,
// for outages, the cause), so they classify with ladle.ErrorKind.
type Store interface {
	// Put stores the first size bytes read from r under key, with the given
	// content type, replacing any blob already there.
	//
	// Outcomes:
	//   - nil: the whole blob is stored; a Get from now on sees it. A reader
	//     never sees part of a blob: it sees the old one or the new one.
	//   - invalid_blob_key (KindInvalid): key is not a valid key (ValidKey).
	//   - blob_size_mismatch (KindInvalid): r ended before size bytes;
	//     nothing is stored. Bytes after the first size are not read.
	//   - blob_unavailable (KindUnavailable): the folder or bucket could not
	//     be written (disk full, network, credentials); nothing is stored.
	//   - an error of r itself, wrapped; nothing is stored.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error

	// Get opens the blob under key for reading; the caller closes it.
	//
	// Outcomes:
	//   - a reader of the whole blob and its Info.
	//   - not_found (KindNotFound): no blob has that key.
	//   - invalid_blob_key (KindInvalid): key is not a valid key.
	//   - blob_unavailable (KindUnavailable): the store could not be read.
	// A failure while reading surfaces from the reader's Read.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)

	// Stat returns the Info of the blob under key, with the same outcomes
	// as Get but without opening it.
	Stat(ctx context.Context, key string) (Info, error)

	// Delete removes the blob under key.
	//
	// Outcomes:
	//   - nil: no blob has that key any more, including when none had it
	//     before (deleting is idempotent).
	//   - invalid_blob_key (KindInvalid), blob_unavailable (KindUnavailable).
	Delete(ctx context.Context, key string) error
}

// Info describes a stored blob.
type Info struct {
	Key  string
	Size int64
	// ContentType is what Put was given. The local folder keeps no metadata
	// and derives it from the key's extension instead, which is why keys of
	// typed content should have one.
	ContentType string
	ModTime     time.Time
}

// Error codes of this package.
const (
	CodeInvalidKey   = "invalid_blob_key"
	CodeSizeMismatch = "blob_size_mismatch"
	CodeUnavailable  = "blob_unavailable"
)

// MaxKeyLen bounds keys; S3 allows 1024 bytes.
const MaxKeyLen = 512

// ValidKey reports whether key may name a blob: 1–512 bytes of
// [A-Za-z0-9._-] in "/"-separated segments, no empty segment and no segment
// starting with "." (so no "..", no hidden or temporary files), no leading
// or trailing "/". The rule keeps a key a safe relative path on every file
// system and a plain object name in every bucket.
func ValidKey(key string) bool {
	if key == "" || len(key) > MaxKeyLen {
		return false
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg[0] == '.' {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

func checkKey(op, key string) error {
	if ValidKey(key) {
		return nil
	}
	return fmt.Errorf("%s: %w", op, &ladle.Error{Kind: ladle.KindInvalid, Code: CodeInvalidKey,
		Message: fmt.Sprintf("%q is not a valid blob key", key)})
}

func notFound(op, key string) error {
	return fmt.Errorf("%s %s: %w", op, key, ladle.NotFound("blob"))
}

// unavailable wraps an outage: the *ladle.Error classifies it, the cause
// stays in the chain for logs.
func unavailable(op, key string, cause error) error {
	return fmt.Errorf("%s %s: %w: %w", op, key,
		&ladle.Error{Kind: ladle.KindUnavailable, Code: CodeUnavailable, Message: "file storage is unavailable"}, cause)
}

func sizeMismatch(op, key string, want, got int64) error {
	return fmt.Errorf("%s %s: %w", op, key, &ladle.Error{Kind: ladle.KindInvalid, Code: CodeSizeMismatch,
		Message: fmt.Sprintf("expected %d bytes, read %d", want, got)})
}

// IsNotFound reports whether err says the blob does not exist.
func IsNotFound(err error) bool {
	var e *ladle.Error
	return errors.As(err, &e) && e.Kind == ladle.KindNotFound
}
