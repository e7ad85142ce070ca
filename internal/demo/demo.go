// Package demo seeds a demo restaurant with a realistic menu, a staff login
// and a coupon, for `ladle serve --demo`. Seeding is idempotent: an existing
// demo restaurant is left as it is (staff may have edited it).
package demo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/blob"
)

// Slug is the demo restaurant's URL name.
const Slug = "demo-kitchen"

// Staff login of the demo restaurant. It is a fixed, published password: the
// demo is for trying Ladle locally, never for a server others can reach.
const (
	StaffEmail    = "owner@demo.ladle.dev"
	StaffPassword = "ladle-demo"
	CouponCode    = "WELCOME10"
)

// Option changes how Seed seeds.
type Option func(*options)

type options struct {
	photos blob.Store
}

// WithPhotos gives the demo items photos, drawn at seed time and stored in
// blobs (photos.go).
func WithPhotos(blobs blob.Store) Option { return func(o *options) { o.photos = blobs } }

// Hasher hashes a staff password (internal/auth's argon2id in production).
type Hasher func(password string) (string, error)

// Seed creates the demo restaurant unless it exists. It reports whether it
// created anything.
func Seed(ctx context.Context, s ladle.Store, hash Hasher, opts ...Option) (created bool, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := s.RestaurantBySlug(ctx, Slug); err == nil {
		return false, nil
	} else if ladle.ErrorKind(err) != ladle.KindNotFound {
		return false, err
	}
	r := &ladle.Restaurant{Slug: Slug, Name: "Ladle Demo Kitchen", Currency: "USD", TaxRateBP: 875,
		TimeZone: "America/New_York", Phone: "+1 212 555 0142", Address: "12 Broth Street, New York, NY"}
	if err := s.CreateRestaurant(ctx, r); err != nil {
		return false, fmt.Errorf("demo: restaurant: %w", err)
	}

	group := func(name string, min, max int, mods ...ladle.Modifier) int64 {
		if err != nil {
			return 0
		}
		for i := range mods {
			mods[i].Position = i
		}
		g := &ladle.ModifierGroup{RestaurantID: r.ID, Name: name, Min: min, Max: max, Modifiers: mods}
		err = s.CreateModifierGroup(ctx, g)
		return g.ID
	}
	mod := func(name string, price ladle.Money) ladle.Modifier { return ladle.Modifier{Name: name, Price: price} }

	size := group("Size", 1, 1, mod("Cup", 0), mod("Bowl", 250))
	bread := group("Bread", 0, 1, mod("Sourdough", 0), mod("Gluten-free roll", 150))
	toppings := group("Toppings", 0, 3, mod("Croutons", 50), mod("Parmesan", 75), mod("Chili oil", 50), mod("Fresh herbs", 0))
	protein := group("Add protein", 0, 1, mod("Grilled chicken", 350), mod("Tofu", 250), mod("Soft egg", 150))
	drinkSize := group("Drink size", 1, 1, mod("Regular", 0), mod("Large", 100))
	if err != nil {
		return false, fmt.Errorf("demo: modifier groups: %w", err)
	}

	type item struct {
		name, desc string
		price      ladle.Money
		soldOut    bool
		groups     []int64
		dietary    []string
	}
	const (
		veg, vegan, gf, df, spicy = "vegetarian", "vegan", "gluten_free", "dairy_free", "spicy"
	)
	menu := []struct {
		name  string
		items []item
	}{
		{"Soups", []item{
			{"Tomato Basil", "Roasted tomatoes, basil, a swirl of cream.", 650, false, []int64{size, bread, toppings}, []string{veg, gf}},
			{"Chicken Noodle", "Slow-simmered broth, hand-cut noodles, carrots, celery.", 750, false, []int64{size, bread}, []string{df}},
			{"Miso Ramen", "White miso broth, ramen noodles, corn, scallions, nori, a kick of chili.", 1150, false, []int64{protein, toppings}, []string{veg, spicy}},
			{"Lobster Bisque", "Rich and silky, finished with sherry. Today's batch is gone.", 1400, true, []int64{size, bread}, []string{gf}},
			{"Lentil & Spinach", "Red lentils, cumin, lemon.", 600, false, []int64{size, bread, toppings}, []string{vegan, gf, df}},
		}},
		{"Bowls", []item{
			{"Harvest Grain Bowl", "Farro, roasted squash, kale, tahini dressing.", 1250, false, []int64{protein}, []string{vegan, df}},
			{"Pho Bowl", "Beef broth with star anise, rice noodles, herbs, lime.", 1300, false, []int64{protein}, []string{gf, df}},
		}},
		{"Sides", []item{
			{"Grilled Cheese", "Sourdough, aged cheddar, butter.", 700, false, nil, []string{veg}},
			{"Garlic Focaccia", "Baked this morning with olive oil, garlic and rosemary.", 450, false, nil, []string{vegan}},
		}},
		{"Drinks", []item{
			{"Lemonade", "Fresh-squeezed, lightly sweet.", 350, false, []int64{drinkSize}, []string{vegan, gf}},
			{"Iced Tea", "Unsweetened black tea, lemon on the side.", 300, false, []int64{drinkSize}, []string{vegan, gf}},
		}},
		{"Desserts", []item{
			{"Chocolate Pot de Crème", "Dark chocolate custard, whipped cream, a raspberry.", 550, false, nil, []string{veg, gf}},
		}},
	}
	for ci, c := range menu {
		cat := &ladle.Category{RestaurantID: r.ID, Name: c.name, Position: ci}
		if err := s.CreateCategory(ctx, cat); err != nil {
			return false, fmt.Errorf("demo: category: %w", err)
		}
		for ii, it := range c.items {
			row := &ladle.Item{RestaurantID: r.ID, CategoryID: cat.ID, Name: it.name, Description: it.desc,
				Price: it.price, Available: !it.soldOut, Position: ii, Dietary: it.dietary}
			if o.photos != nil {
				if row.ImageKey, err = savePhoto(ctx, o.photos, it.name, uint64(ci*100+ii)); err != nil {
					return false, err
				}
			}
			if err := s.CreateItem(ctx, row); err != nil {
				return false, fmt.Errorf("demo: item: %w", err)
			}
			if len(it.groups) > 0 {
				if err := s.SetItemModifierGroups(ctx, r.ID, row.ID, it.groups); err != nil {
					return false, fmt.Errorf("demo: item groups: %w", err)
				}
			}
		}
	}

	until := time.Now().UTC().AddDate(1, 0, 0).Truncate(time.Second)
	if err := s.CreateCoupon(ctx, &ladle.Coupon{RestaurantID: r.ID, Code: CouponCode, Kind: "percent", Value: 10,
		MinSubtotal: 1000, ValidUntil: &until, MaxUses: 500, PerCustomerLimit: 1, Active: true}); err != nil {
		return false, fmt.Errorf("demo: coupon: %w", err)
	}

	if err := s.SetHours(ctx, r.ID, Hours(), time.Now()); err != nil {
		return false, fmt.Errorf("demo: hours: %w", err)
	}

	hashed, err := hash(StaffPassword)
	if err != nil {
		return false, err
	}
	u := &ladle.User{Email: StaffEmail, Name: "Demo Owner", PasswordHash: hashed}
	if err := s.CreateUser(ctx, u); err != nil {
		if ladle.ErrorCode(err) != "email_taken" {
			return false, fmt.Errorf("demo: user: %w", err)
		}
		if u, err = s.UserByEmail(ctx, StaffEmail); err != nil {
			return false, errors.Join(errors.New("demo: user"), err)
		}
	}
	if err := s.AddMembership(ctx, ladle.Membership{UserID: u.ID, RestaurantID: r.ID, Role: ladle.RoleOwner}); err != nil {
		return false, fmt.Errorf("demo: membership: %w", err)
	}
	return true, nil
}

// Hours is the demo's schedule: every day 00:00–24:00, 15-minute pickup
// slots without caps, 15 minutes' preparation. Open around the clock on
// purpose: whoever runs the demo, whenever, can order ASAP, and the
// benchmarks that order from it are not refused by the hour or by a slot's
// cap. Staff change it on the Hours page (a real kitchen's hours, a cap of
// orders per slot) to see closed storefronts and full slots.
func Hours() *ladle.Hours {
	h := ladle.DefaultHours()
	for d := time.Sunday; d <= time.Saturday; d++ {
		h.Weekly = append(h.Weekly, ladle.OpenRange{Day: d, Open: 0, Close: 24 * 60})
	}
	return h
}
