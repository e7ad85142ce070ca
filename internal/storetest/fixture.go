package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/ladle-dev/ladle"
)

// Fixture is a seeded restaurant with a small menu, a coupon and an owner,
// plus a second restaurant (Other) with its own menu and coupon, for tests
// of any package that needs a realistic store. Build it with Seed.
//
// Restaurant's menu (USD, tax 8.25%, America/New_York):
//
//	Mains   Burger        10.99  Size (required, pick 1: Small +0, Large +1.50), Extras (optional, up to 3)
//	        Veggie Burger  9.99  sold out
//	Sides   Fries          3.99
//	Drinks  Soda           1.99
//	Extras: Cheese +1.00, Bacon +2.00, Avocado +2.50
//	Coupon SAVE10: 10 percent, no limits.
type Fixture struct {
	Store      ladle.Store
	Restaurant *ladle.Restaurant
	Owner      *ladle.User

	Mains, Sides, Drinks                 *ladle.Category
	Burger, VeggieBurger, Fries, Soda    *ladle.Item
	Size, Extras                         *ladle.ModifierGroup
	Small, Large, Cheese, Bacon, Avocado *ladle.Modifier
	Coupon                               *ladle.Coupon

	// Other is a second tenant: its ids must never work with Restaurant's.
	Other         *ladle.Restaurant
	OtherCategory *ladle.Category
	OtherItem     *ladle.Item
	OtherGroup    *ladle.ModifierGroup
	OtherModifier *ladle.Modifier
	OtherCoupon   *ladle.Coupon
}

// Seed creates the fixture in s. Slugs and emails carry a random suffix, so
// several fixtures can share one database.
func Seed(t testing.TB, s ladle.Store) *Fixture {
	t.Helper()
	ctx := context.Background()
	suffix := randomSuffix()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("storetest.Seed: %v", err)
		}
	}
	f := &Fixture{Store: s}

	f.Restaurant = &ladle.Restaurant{Slug: "bistro-" + suffix, Name: "Bistro " + suffix, Currency: "USD",
		TaxRateBP: 825, TimeZone: "America/New_York", Phone: "+15550100", Address: "1 Main St"}
	must(s.CreateRestaurant(ctx, f.Restaurant))
	rid := f.Restaurant.ID

	f.Owner = &ladle.User{Email: "owner-" + suffix + "@example.com", Name: "Olive Owner", PasswordHash: "$argon2id$v=19$m=65536,t=1,p=1$c2FsdA$aGFzaA"}
	must(s.CreateUser(ctx, f.Owner))
	must(s.AddMembership(ctx, ladle.Membership{UserID: f.Owner.ID, RestaurantID: rid, Role: ladle.RoleOwner}))

	f.Mains = &ladle.Category{RestaurantID: rid, Name: "Mains", Position: 0}
	f.Sides = &ladle.Category{RestaurantID: rid, Name: "Sides", Position: 1}
	f.Drinks = &ladle.Category{RestaurantID: rid, Name: "Drinks", Position: 2}
	for _, c := range []*ladle.Category{f.Mains, f.Sides, f.Drinks} {
		must(s.CreateCategory(ctx, c))
	}

	f.Size = &ladle.ModifierGroup{RestaurantID: rid, Name: "Size", Min: 1, Max: 1, Position: 0,
		Modifiers: []ladle.Modifier{{Name: "Small", Price: 0, Position: 0}, {Name: "Large", Price: 150, Position: 1}}}
	f.Extras = &ladle.ModifierGroup{RestaurantID: rid, Name: "Extras", Min: 0, Max: 3, Position: 1,
		Modifiers: []ladle.Modifier{{Name: "Cheese", Price: 100, Position: 0}, {Name: "Bacon", Price: 200, Position: 1},
			{Name: "Avocado", Price: 250, Position: 2}}}
	must(s.CreateModifierGroup(ctx, f.Size))
	must(s.CreateModifierGroup(ctx, f.Extras))
	f.Small, f.Large = &f.Size.Modifiers[0], &f.Size.Modifiers[1]
	f.Cheese, f.Bacon, f.Avocado = &f.Extras.Modifiers[0], &f.Extras.Modifiers[1], &f.Extras.Modifiers[2]

	f.Burger = &ladle.Item{RestaurantID: rid, CategoryID: f.Mains.ID, Name: "Burger", Description: "Beef, brioche",
		Price: 1099, Available: true, ImageKey: "images/burger.jpg", Position: 0}
	f.VeggieBurger = &ladle.Item{RestaurantID: rid, CategoryID: f.Mains.ID, Name: "Veggie Burger", Price: 999,
		Available: false, Position: 1}
	f.Fries = &ladle.Item{RestaurantID: rid, CategoryID: f.Sides.ID, Name: "Fries", Price: 399, Available: true}
	f.Soda = &ladle.Item{RestaurantID: rid, CategoryID: f.Drinks.ID, Name: "Soda", Price: 199, Available: true}
	for _, it := range []*ladle.Item{f.Burger, f.VeggieBurger, f.Fries, f.Soda} {
		must(s.CreateItem(ctx, it))
	}
	must(s.SetItemModifierGroups(ctx, rid, f.Burger.ID, []int64{f.Size.ID, f.Extras.ID}))
	must(s.SetItemModifierGroups(ctx, rid, f.VeggieBurger.ID, []int64{f.Size.ID}))

	f.Coupon = &ladle.Coupon{RestaurantID: rid, Code: "SAVE10", Kind: "percent", Value: 10, Active: true}
	must(s.CreateCoupon(ctx, f.Coupon))

	f.Other = &ladle.Restaurant{Slug: "other-" + suffix, Name: "Other " + suffix, Currency: "EUR",
		TaxRateBP: 2000, TimeZone: "Europe/Paris"}
	must(s.CreateRestaurant(ctx, f.Other))
	oid := f.Other.ID
	f.OtherCategory = &ladle.Category{RestaurantID: oid, Name: "Plats"}
	must(s.CreateCategory(ctx, f.OtherCategory))
	f.OtherGroup = &ladle.ModifierGroup{RestaurantID: oid, Name: "Cuisson", Min: 0, Max: 1,
		Modifiers: []ladle.Modifier{{Name: "Saignant", Price: 0}}}
	must(s.CreateModifierGroup(ctx, f.OtherGroup))
	f.OtherModifier = &f.OtherGroup.Modifiers[0]
	f.OtherItem = &ladle.Item{RestaurantID: oid, CategoryID: f.OtherCategory.ID, Name: "Steak frites", Price: 2200, Available: true}
	must(s.CreateItem(ctx, f.OtherItem))
	must(s.SetItemModifierGroups(ctx, oid, f.OtherItem.ID, []int64{f.OtherGroup.ID}))
	f.OtherCoupon = &ladle.Coupon{RestaurantID: oid, Code: "BIENVENUE", Kind: "fixed", Value: 500, Active: true}
	must(s.CreateCoupon(ctx, f.OtherCoupon))

	// Re-read so MenuVersion is current.
	r, err := s.RestaurantByID(ctx, rid)
	must(err)
	f.Restaurant = r
	return f
}

// Request returns a valid, normalized pay-at-pickup request for Restaurant:
// two large burgers with cheese and one fries, ASAP pickup, no coupon, no
// tip. Subtotal 30.97, tax 2.56, total 33.53. Each call returns a new value.
func (f *Fixture) Request() *ladle.OrderRequest {
	r := &ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: "Ada Lovelace", Email: "ada@example.com", Phone: "+1 (555) 010-0199"},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines: []ladle.LineRequest{
			{ItemID: f.Burger.ID, Quantity: 2, ModifierIDs: []int64{f.Cheese.ID, f.Large.ID}},
			{ItemID: f.Fries.ID, Quantity: 1},
		},
		Payment: ladle.PaymentInput{Method: "pay_at_pickup"},
	}
	r.Normalize()
	return r
}

// Request totals, for assertions.
const (
	RequestSubtotal ladle.Money = 2*(1099+150+100) + 399
	RequestTax      ladle.Money = (RequestSubtotal*825 + 5000) / 10000
	RequestTotal                = RequestSubtotal + RequestTax
)

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}
