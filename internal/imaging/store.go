package imaging

import (
	"bytes"
	"context"
	"regexp"
	"strings"

	"github.com/ladle-dev/ladle/internal/blob"
)

// Save stores img in s under img.Key. The key is the hash of the bytes, so
// an image already stored (the same photo uploaded twice, or by two
// restaurants) is not written again.
func Save(ctx context.Context, s blob.Store, img *Image) error {
	if _, err := s.Stat(ctx, img.Key); err == nil {
		return nil
	} else if !blob.IsNotFound(err) {
		return err
	}
	return s.Put(ctx, img.Key, bytes.NewReader(img.Data), int64(len(img.Data)), img.ContentType)
}

// keyPattern is the only shape of key Save writes, and so the only one the
// media route serves: nothing else in the blob store is reachable by URL.
var keyPattern = regexp.MustCompile(`^img/[0-9a-f]{64}\.(jpg|png)$`)

// ValidKey reports whether key is an image key as Save writes them.
func ValidKey(key string) bool { return keyPattern.MatchString(key) }

// MediaPrefix is the path the origin serves images under (Handler).
const MediaPrefix = "/media/"

// URL returns the address clients load the image key from: through the CDN
// when cdnBase is set ("https://cdn.example.com/media" + "/" + key; the CDN
// must map that to the origin's /media/ or to the bucket, keys being the
// same), otherwise from this server's /media/ route. An empty key has no
// URL ("").
func URL(cdnBase, key string) string {
	if key == "" {
		return ""
	}
	if cdnBase == "" {
		return MediaPrefix + key
	}
	return strings.TrimSuffix(cdnBase, "/") + "/" + key
}

// URLFunc returns URL bound to cdnBase, for menucache.Config.ImageURL.
func URLFunc(cdnBase string) func(key string) string {
	return func(key string) string { return URL(cdnBase, key) }
}
