package demo

import (
	"bytes"
	"context"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/ladle-dev/ladle/internal/blob"
	"github.com/ladle-dev/ladle/internal/imaging"
)

// TestPhotos: every dish has a drawing that decodes at the photo size,
// stays small, and goes through the upload pipeline to a content-addressed
// key; drawing is deterministic (the same bytes every seed).
func TestPhotos(t *testing.T) {
	t.Parallel()
	blobs, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for name := range dishes {
		data, ok, err := photo(name, 7)
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", name, ok, err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width != photoW || cfg.Height != photoH {
			t.Fatalf("%s: %+v %v", name, cfg, err)
		}
		if len(data) > 40<<10 {
			t.Errorf("%s: %d bytes, want under 40 KB", name, len(data))
		}
		total += len(data)
		again, _, _ := photo(name, 7)
		if !bytes.Equal(data, again) {
			t.Errorf("%s: drawn twice, different bytes", name)
		}
		key, err := savePhoto(context.Background(), blobs, name, 7)
		if err != nil || !imaging.ValidKey(key) {
			t.Fatalf("%s: key %q, %v", name, key, err)
		}
		if dir := os.Getenv("LADLE_DEMO_PHOTO_DIR"); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, name+".jpg"), data, 0o644)
		}
	}
	t.Logf("%d photos, %d KB in all", len(dishes), total>>10)
	if _, ok, _ := photo("No such dish", 1); ok {
		t.Error("a dish without a drawing has a photo")
	}
}
