package menucache

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/httpcache"
	"github.com/ladle-dev/ladle/internal/readpos"
)

// loadTimeout bounds one database or Redis load. Loads run detached from
// the request that started them (otter shares them between callers, and
// background refreshes outlive requests), so they need their own bound.
const loadTimeout = 5 * time.Second

// Menu implements ladle.MenuReader: the current menu document. The result
// is shared and must not be modified.
func (c *Cache) Menu(ctx context.Context, restaurantID int64) (*ladle.Menu, error) {
	d, err := c.Document(ctx, restaurantID)
	if err != nil {
		return nil, err
	}
	return d.Menu, nil
}

// Document returns the current document of the restaurant's menu.
//
// Outcomes: the document; not_found if the restaurant does not exist; the
// store's error if the document is not cached and the store fails. Redis
// failures never surface: they only make the read go to the store.
func (c *Cache) Document(ctx context.Context, restaurantID int64) (*Document, error) {
	c.st.requests.Add(1)
	if readpos.From(ctx) != 0 {
		return c.freshDocument(ctx, restaurantID)
	}
	v, err := c.versions.Get(ctx, restaurantID, c.versionLoader)
	if err != nil {
		return nil, err
	}
	key := docKey{restaurantID, v}
	if d, ok := c.docs.GetIfPresent(key); ok {
		c.st.hits.Add(1)
		return d, nil
	}
	c.st.misses.Add(1)
	d, err := c.docs.Get(ctx, key, c.docLoader)
	var behind *behindError
	if errors.As(err, &behind) {
		// The store answered with an older version than it had just told us
		// is current (a lagging read replica): serve it this once, uncached.
		return behind.doc, nil
	}
	return d, err
}

// freshDocument serves a client that wrote to the database recently
// (readpos): the remembered version may predate its write (a version read
// from a read replica that had not replayed it yet), so the version is read
// again, where the store says the client's write is visible, and the
// document of that version comes from the cache or, under the same rule,
// from the store — never from a load another reader started.
func (c *Cache) freshDocument(ctx context.Context, restaurantID int64) (*Document, error) {
	lctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	c.st.versionLoads.Add(1)
	v, err := c.src.MenuVersion(lctx, restaurantID)
	if err != nil {
		return nil, err
	}
	if d, ok := c.docs.GetIfPresent(docKey{restaurantID, v}); ok {
		c.st.hits.Add(1)
		return d, nil
	}
	c.st.misses.Add(1)
	c.st.rebuilds.Add(1)
	m, err := c.src.Menu(lctx, restaurantID)
	if err != nil {
		return nil, err
	}
	d, err := c.build(m)
	if err != nil {
		return nil, err
	}
	c.docs.Set(docKey{restaurantID, d.Version}, d)
	return d, nil
}

// DocumentBySlug is Document for the restaurant with that URL name: the
// menu API's and the storefront's entry point. Slugs are remembered, so a
// cached read touches no database at all.
func (c *Cache) DocumentBySlug(ctx context.Context, slug string) (*Document, error) {
	id, err := c.RestaurantID(ctx, slug)
	if err != nil {
		return nil, err
	}
	return c.Document(ctx, id)
}

// RestaurantID resolves a slug through the cache: not_found for an unknown
// slug (remembered for a few seconds).
func (c *Cache) RestaurantID(ctx context.Context, slug string) (int64, error) {
	id, err := c.slugs.Get(ctx, slug, c.slugLoader)
	if err != nil {
		return 0, err
	}
	if id == 0 {
		return 0, ladle.NotFound("restaurant")
	}
	return id, nil
}

func (c *Cache) loadSlug(ctx context.Context, slug string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	r, err := c.src.RestaurantBySlug(ctx, slug)
	if ladle.ErrorKind(err) == ladle.KindNotFound {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return r.ID, nil
}

func (c *Cache) loadVersion(ctx context.Context, restaurantID int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	c.st.versionLoads.Add(1)
	return c.src.MenuVersion(ctx, restaurantID)
}

// behindError carries a document older than the version asked for.
type behindError struct{ doc *Document }

func (e *behindError) Error() string { return "menucache: the store returned an older menu version" }

// loadDocument is the single-flight loader of a document: Redis, else the
// store (a rebuild), writing Redis after a rebuild.
func (c *Cache) loadDocument(ctx context.Context, key docKey) (*Document, error) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	if d := c.redisGet(ctx, key); d != nil {
		return d, nil
	}
	c.st.rebuilds.Add(1)
	m, err := c.src.Menu(ctx, key.restaurantID)
	if err != nil {
		return nil, err
	}
	d, err := c.build(m)
	if err != nil {
		return nil, err
	}
	if d.Version < key.version {
		return nil, &behindError{d}
	}
	// A newer version than asked (an edit landed between the two reads) is
	// fine to serve under the older key: it is never stale for it, and its
	// ETag names what it holds. Redis files it under its own version.
	c.redisSet(ctx, d)
	return d, nil
}

// build encodes a menu read from the store into a Document. The menu was
// loaded for us alone, so filling Image in place is safe.
func (c *Cache) build(m *ladle.Menu) (*Document, error) {
	for ci := range m.Categories {
		for ii := range m.Categories[ci].Items {
			it := &m.Categories[ci].Items[ii]
			it.Image = c.imageURLOf(it.ImageKey)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &Document{
		RestaurantID: m.RestaurantID,
		Version:      m.Version,
		ETag:         httpcache.VersionETag("menu", m.RestaurantID, m.Version),
		JSON:         b,
		Menu:         m,
	}, nil
}
