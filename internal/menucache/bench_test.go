package menucache_test

import (
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/menucache"
)

// BenchmarkDocumentBySlugHit is the cost of a warm read: what the menu API
// adds to a request on top of writing the bytes.
func BenchmarkDocumentBySlugHit(b *testing.B) {
	s, f := seededB(b)
	c, err := menucache.New(menucache.Config{Source: s, VersionTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := b.Context()
	if _, err := c.DocumentBySlug(ctx, f.Restaurant.Slug); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.DocumentBySlug(ctx, f.Restaurant.Slug); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
