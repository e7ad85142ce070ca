package storetest

import (
	"slices"
	"sync"
	"testing"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(
		testCase{name: "Menu/Document", fn: testMenuDocument},
		testCase{name: "Menu/VersionAndEvents", fn: testMenuVersionAndEvents},
		testCase{name: "Menu/Categories", fn: testCategories},
		testCase{name: "Menu/Items", fn: testItems},
		testCase{name: "Menu/ModifierGroups", fn: testModifierGroups},
		testCase{name: "Menu/Invalid", fn: testMenuInvalid},
		testCase{name: "Menu/TenantScoping", fn: testMenuTenantScoping},
		testCase{name: "Menu/ItemVersions", fn: testItemVersions},
	)
}

func testMenuDocument(t *testing.T, e *env) {
	s, f := e.seed()
	m, err := s.Menu(ctx, f.Restaurant.ID)
	ok(t, err)
	if m.RestaurantID != f.Restaurant.ID || m.Slug != f.Restaurant.Slug || m.Currency != "USD" || m.Version != f.Restaurant.MenuVersion {
		t.Fatalf("menu header = %+v, restaurant %+v", m, f.Restaurant)
	}
	var cats []string
	for _, c := range m.Categories {
		cats = append(cats, c.Name)
	}
	if want := []string{"Mains", "Sides", "Drinks"}; !equal(cats, want) {
		t.Fatalf("categories = %v, want %v", cats, want)
	}
	mains := m.Categories[0]
	if len(mains.Items) != 2 || mains.Items[0].Name != "Burger" || mains.Items[1].Name != "Veggie Burger" {
		t.Fatalf("mains = %+v", mains.Items)
	}
	burger := mains.Items[0]
	if burger.ID != f.Burger.ID || burger.Price != 1099 || !burger.Available || burger.ImageKey != "images/burger.jpg" ||
		burger.Image != "" || burger.Description != "Beef, brioche" || burger.CategoryID != f.Mains.ID {
		t.Fatalf("burger = %+v", burger)
	}
	if len(burger.ModifierGroups) != 2 || burger.ModifierGroups[0].Name != "Size" || burger.ModifierGroups[1].Name != "Extras" {
		t.Fatalf("burger groups = %+v", burger.ModifierGroups)
	}
	size := burger.ModifierGroups[0]
	if size.Min != 1 || size.Max != 1 || len(size.Modifiers) != 2 || size.Modifiers[0].Name != "Small" ||
		size.Modifiers[1].Name != "Large" || size.Modifiers[1].Price != 150 || size.Modifiers[1].ID != f.Large.ID {
		t.Fatalf("size group = %+v", size)
	}
	extras := burger.ModifierGroups[1]
	if names := modNames(extras); !equal(names, []string{"Cheese", "Bacon", "Avocado"}) {
		t.Fatalf("extras = %v", names)
	}
	if veg := mains.Items[1]; veg.Available {
		t.Fatalf("sold-out item listed as available: %+v", veg)
	}
	if fries := m.Categories[1].Items[0]; fries.ModifierGroups == nil || len(fries.ModifierGroups) != 0 {
		t.Fatalf("item without groups should have an empty list: %+v", fries)
	}
	if m.ItemByID(f.OtherItem.ID) != nil {
		t.Fatal("the other restaurant's item is on this menu")
	}

	// Reordering changes the document's order.
	f.Drinks.Position = -1
	ok(t, s.UpdateCategory(ctx, f.Drinks))
	ok(t, s.SetItemModifierGroups(ctx, f.Restaurant.ID, f.Burger.ID, []int64{f.Extras.ID, f.Size.ID}))
	f.Avocado.Position = -1
	ok(t, s.UpdateModifier(ctx, f.Restaurant.ID, f.Avocado))
	m, err = s.Menu(ctx, f.Restaurant.ID)
	ok(t, err)
	if m.Categories[0].Name != "Drinks" {
		t.Fatalf("categories not re-ordered: %s first", m.Categories[0].Name)
	}
	burger = *m.ItemByID(f.Burger.ID)
	if burger.ModifierGroups[0].Name != "Extras" {
		t.Fatalf("groups not re-ordered: %+v", burger.ModifierGroups)
	}
	if names := modNames(burger.ModifierGroups[0]); !equal(names, []string{"Avocado", "Cheese", "Bacon"}) {
		t.Fatalf("modifiers not re-ordered: %v", names)
	}

	_, err = s.Menu(ctx, f.Other.ID+1000)
	wantNotFound(t, err)
}

func modNames(g ladle.ModifierGroup) []string {
	var ns []string
	for _, m := range g.Modifiers {
		ns = append(ns, m.Name)
	}
	return ns
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testMenuVersionAndEvents checks that every kind of edit bumps the version
// by one and appends one menu.changed carrying it.
func testMenuVersionAndEvents(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	newItem := &ladle.Item{RestaurantID: rid, CategoryID: f.Sides.ID, Name: "Salad", Price: 500, Available: true}
	newGroup := &ladle.ModifierGroup{RestaurantID: rid, Name: "Dressing", Max: 1}
	newMod := &ladle.Modifier{Name: "Ranch"}
	newCat := &ladle.Category{RestaurantID: rid, Name: "Desserts"}
	edits := []struct {
		name string
		do   func() error
	}{
		{"CreateCategory", func() error { return s.CreateCategory(ctx, newCat) }},
		{"UpdateCategory", func() error { newCat.Name = "Sweets"; return s.UpdateCategory(ctx, newCat) }},
		{"CreateItem", func() error { return s.CreateItem(ctx, newItem) }},
		{"UpdateItem", func() error { newItem.Price = 550; return s.UpdateItem(ctx, newItem) }},
		{"SetItemAvailable", func() error { return s.SetItemAvailable(ctx, rid, newItem.ID, false) }},
		{"CreateModifierGroup", func() error { return s.CreateModifierGroup(ctx, newGroup) }},
		{"UpdateModifierGroup", func() error { newGroup.Min = 1; return s.UpdateModifierGroup(ctx, newGroup) }},
		{"CreateModifier", func() error { newMod.GroupID = newGroup.ID; return s.CreateModifier(ctx, rid, newMod) }},
		{"UpdateModifier", func() error { newMod.Price = 25; return s.UpdateModifier(ctx, rid, newMod) }},
		{"SetItemModifierGroups", func() error { return s.SetItemModifierGroups(ctx, rid, newItem.ID, []int64{newGroup.ID}) }},
		{"DeleteModifier", func() error { return s.DeleteModifier(ctx, rid, newMod.ID) }},
		{"DeleteModifierGroup", func() error { return s.DeleteModifierGroup(ctx, rid, newGroup.ID) }},
		{"DeleteItem", func() error { return s.DeleteItem(ctx, rid, newItem.ID) }},
		{"DeleteCategory", func() error { return s.DeleteCategory(ctx, rid, newCat.ID) }},
	}
	version, err := s.MenuVersion(ctx, rid)
	ok(t, err)
	if version != f.Restaurant.MenuVersion {
		t.Fatalf("MenuVersion = %d, restaurant says %d", version, f.Restaurant.MenuVersion)
	}
	before := len(eventsOf(events(t, s, rid), ladle.EventMenuChanged))
	otherVersion, err := s.MenuVersion(ctx, f.Other.ID)
	ok(t, err)
	for i, edit := range edits {
		if err := edit.do(); err != nil {
			t.Fatalf("%s: %v", edit.name, err)
		}
		v, err := s.MenuVersion(ctx, rid)
		ok(t, err)
		if v != version+1 {
			t.Fatalf("%s: menu version %d, want %d", edit.name, v, version+1)
		}
		version = v
		evs := eventsOf(events(t, s, rid), ladle.EventMenuChanged)
		if len(evs) != before+i+1 {
			t.Fatalf("%s: %d menu.changed events, want %d", edit.name, len(evs), before+i+1)
		}
		last := evs[len(evs)-1]
		change := decode[ladle.MenuChange](t, last)
		if change.RestaurantID != rid || change.Version != v || last.RestaurantID != rid || last.ID == "" {
			t.Fatalf("%s: event %+v payload %+v", edit.name, last, change)
		}
	}
	m, err := s.Menu(ctx, rid)
	ok(t, err)
	if m.Version != version {
		t.Fatalf("Menu().Version = %d, want %d", m.Version, version)
	}
	if v, _ := s.MenuVersion(ctx, f.Other.ID); v != otherVersion {
		t.Fatalf("edits of one restaurant bumped the other's version: %d → %d", otherVersion, v)
	}
	// A refused edit bumps nothing.
	wantCode(t, s.DeleteCategory(ctx, rid, f.Mains.ID), "category_not_empty")
	if v, _ := s.MenuVersion(ctx, rid); v != version {
		t.Fatalf("refused edit bumped the version to %d", v)
	}
	_, err = s.MenuVersion(ctx, f.Other.ID+1000)
	wantNotFound(t, err)
}

func testCategories(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	c := &ladle.Category{RestaurantID: rid, Name: "Specials", Position: 9}
	ok(t, s.CreateCategory(ctx, c))
	if c.ID == 0 {
		t.Fatal("CreateCategory did not set ID")
	}
	c.Name, c.Position = "Today's specials", 3
	ok(t, s.UpdateCategory(ctx, c))
	m, err := s.Menu(ctx, rid)
	ok(t, err)
	last := m.Categories[len(m.Categories)-1]
	if last.ID != c.ID || last.Name != "Today's specials" || last.Position != 3 || len(last.Items) != 0 {
		t.Fatalf("category = %+v", last)
	}
	wantCode(t, s.DeleteCategory(ctx, rid, f.Sides.ID), "category_not_empty")
	ok(t, s.DeleteCategory(ctx, rid, c.ID))
	wantNotFound(t, s.DeleteCategory(ctx, rid, c.ID))
	wantNotFound(t, s.UpdateCategory(ctx, c))
	// Emptying a category lets it go.
	ok(t, s.DeleteItem(ctx, rid, f.Soda.ID))
	ok(t, s.DeleteCategory(ctx, rid, f.Drinks.ID))
	m, err = s.Menu(ctx, rid)
	ok(t, err)
	if len(m.Categories) != 2 {
		t.Fatalf("categories after deletes: %+v", m.Categories)
	}
	wantNotFound(t, s.CreateCategory(ctx, &ladle.Category{RestaurantID: f.Other.ID + 1000, Name: "X"}))
}

func testItems(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	it := &ladle.Item{RestaurantID: rid, CategoryID: f.Sides.ID, Name: "Onion rings", Description: "Crispy",
		Price: 450, Available: true, ImageKey: "images/rings.jpg", Position: 5, Dietary: []string{"spicy", "vegan", "vegan"}}
	ok(t, s.CreateItem(ctx, it))
	if want := []string{"vegan", "spicy"}; !slices.Equal(it.Dietary, want) {
		t.Fatalf("dietary tags after create %q, want them in DietaryTags' order without repeats %q", it.Dietary, want)
	}
	if it.ID == 0 {
		t.Fatal("CreateItem did not set ID")
	}
	check := func(want ladle.Item) {
		t.Helper()
		m, err := s.Menu(ctx, rid)
		ok(t, err)
		got := m.ItemByID(want.ID)
		if got == nil {
			t.Fatalf("item %d not on the menu", want.ID)
		}
		if got.CategoryID != want.CategoryID || got.Name != want.Name || got.Description != want.Description ||
			got.Price != want.Price || got.Available != want.Available || got.ImageKey != want.ImageKey || got.Position != want.Position ||
			!slices.Equal(got.Dietary, want.Dietary) {
			t.Fatalf("item = %+v, want %+v", got, want)
		}
	}
	check(*it)
	it.CategoryID, it.Name, it.Description, it.Price, it.ImageKey, it.Position = f.Mains.ID, "Rings", "", 475, "", 2
	it.Available = false
	it.Dietary = []string{"gluten_free"}
	ok(t, s.UpdateItem(ctx, it))
	check(*it)
	// An unknown dietary tag is refused, and nothing of the edit is written.
	bad := *it
	bad.Name, bad.Dietary = "Rings (keto)", []string{"vegan", "keto"}
	wantCode(t, s.UpdateItem(ctx, &bad), ladle.CodeValidation)
	wantCode(t, s.CreateItem(ctx, &ladle.Item{RestaurantID: rid, CategoryID: f.Sides.ID, Name: "Keto", Price: 1, Dietary: []string{"Vegan"}}), ladle.CodeValidation)
	check(*it)
	it.Dietary = []string{}
	ok(t, s.UpdateItem(ctx, it))
	check(*it)
	ok(t, s.SetItemAvailable(ctx, rid, it.ID, true))
	it.Available = true
	check(*it)

	// Moving an item to another restaurant's category is refused.
	moved := *it
	moved.CategoryID = f.OtherCategory.ID
	wantNotFound(t, s.UpdateItem(ctx, &moved))
	wantNotFound(t, s.CreateItem(ctx, &ladle.Item{RestaurantID: rid, CategoryID: f.OtherCategory.ID, Name: "X", Price: 1}))
	check(*it)

	ok(t, s.SetItemModifierGroups(ctx, rid, it.ID, []int64{f.Extras.ID}))
	ok(t, s.SetItemModifierGroups(ctx, rid, it.ID, nil)) // replace with none
	m, _ := s.Menu(ctx, rid)
	if gs := m.ItemByID(it.ID).ModifierGroups; len(gs) != 0 {
		t.Fatalf("groups not replaced: %+v", gs)
	}
	wantCode(t, s.SetItemModifierGroups(ctx, rid, it.ID, []int64{f.Size.ID, f.Size.ID}), ladle.CodeValidation)

	ok(t, s.DeleteItem(ctx, rid, it.ID))
	wantNotFound(t, s.DeleteItem(ctx, rid, it.ID))
	wantNotFound(t, s.UpdateItem(ctx, it))
	wantNotFound(t, s.SetItemAvailable(ctx, rid, it.ID, false))
	wantNotFound(t, s.SetItemModifierGroups(ctx, rid, it.ID, nil))
	m, _ = s.Menu(ctx, rid)
	if m.ItemByID(it.ID) != nil {
		t.Fatal("deleted item still on the menu")
	}
}

func testModifierGroups(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	g := &ladle.ModifierGroup{RestaurantID: rid, Name: "Sauce", Min: 0, Max: 2, Position: 4,
		Modifiers: []ladle.Modifier{{Name: "Ketchup"}, {Name: "Aioli", Price: 50, Position: 1}}}
	ok(t, s.CreateModifierGroup(ctx, g))
	if g.ID == 0 || g.Modifiers[0].ID == 0 || g.Modifiers[1].ID == 0 || g.Modifiers[1].GroupID != g.ID {
		t.Fatalf("CreateModifierGroup did not set ids: %+v", g)
	}
	ok(t, s.SetItemModifierGroups(ctx, rid, f.Fries.ID, []int64{g.ID}))
	g.Name, g.Min, g.Max = "Sauces", 1, 0
	ok(t, s.UpdateModifierGroup(ctx, g))
	mayo := &ladle.Modifier{GroupID: g.ID, Name: "Mayo", Price: 25, Position: 2}
	ok(t, s.CreateModifier(ctx, rid, mayo))
	g.Modifiers[0].Name, g.Modifiers[0].Price = "Tomato ketchup", 10
	ok(t, s.UpdateModifier(ctx, rid, &g.Modifiers[0]))
	ok(t, s.DeleteModifier(ctx, rid, g.Modifiers[1].ID))

	m, err := s.Menu(ctx, rid)
	ok(t, err)
	fries := m.ItemByID(f.Fries.ID)
	if len(fries.ModifierGroups) != 1 {
		t.Fatalf("fries groups = %+v", fries.ModifierGroups)
	}
	got := fries.ModifierGroups[0]
	if got.Name != "Sauces" || got.Min != 1 || got.Max != 0 || len(got.Modifiers) != 2 ||
		got.Modifiers[0].Name != "Tomato ketchup" || got.Modifiers[0].Price != 10 || got.Modifiers[1].ID != mayo.ID {
		t.Fatalf("group = %+v", got)
	}
	wantNotFound(t, s.DeleteModifier(ctx, rid, g.Modifiers[1].ID))

	// Deleting a group detaches it from its items.
	ok(t, s.DeleteModifierGroup(ctx, rid, g.ID))
	m, err = s.Menu(ctx, rid)
	ok(t, err)
	if gs := m.ItemByID(f.Fries.ID).ModifierGroups; len(gs) != 0 {
		t.Fatalf("deleted group still attached: %+v", gs)
	}
	wantNotFound(t, s.DeleteModifierGroup(ctx, rid, g.ID))
	wantNotFound(t, s.UpdateModifierGroup(ctx, g))
	wantNotFound(t, s.CreateModifier(ctx, rid, &ladle.Modifier{GroupID: g.ID, Name: "X"}))
	wantNotFound(t, s.UpdateModifier(ctx, rid, mayo))
	wantNotFound(t, s.SetItemModifierGroups(ctx, rid, f.Fries.ID, []int64{g.ID}))
}

func testMenuInvalid(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	wantCode(t, s.CreateCategory(ctx, &ladle.Category{RestaurantID: rid, Name: ""}), ladle.CodeValidation)
	wantCode(t, s.CreateItem(ctx, &ladle.Item{RestaurantID: rid, CategoryID: f.Mains.ID, Name: "X", Price: -1}), ladle.CodeValidation)
	wantCode(t, s.CreateItem(ctx, &ladle.Item{RestaurantID: rid, CategoryID: f.Mains.ID, Name: " ", Price: 1}), ladle.CodeValidation)
	wantCode(t, s.CreateModifierGroup(ctx, &ladle.ModifierGroup{RestaurantID: rid, Name: "G", Min: 2, Max: 1}), ladle.CodeValidation)
	wantCode(t, s.CreateModifierGroup(ctx, &ladle.ModifierGroup{RestaurantID: rid, Name: "G", Min: -1}), ladle.CodeValidation)
	wantCode(t, s.CreateModifierGroup(ctx, &ladle.ModifierGroup{RestaurantID: rid, Name: "G",
		Modifiers: []ladle.Modifier{{Name: "M", Price: -5}}}), ladle.CodeValidation)
	wantCode(t, s.CreateModifier(ctx, rid, &ladle.Modifier{GroupID: f.Size.ID, Name: ""}), ladle.CodeValidation)
	// The input policy (ladle.CheckText): a NUL is an error on PostgreSQL
	// and would be stored on SQLite; invalid UTF-8, line breaks in names and
	// bidi controls are refused on both.
	for _, name := range []string{"Bur\x00ger", "Bur\xffger", "Bur\r\nger", "\u202eBurger", "\ufeffBurger"} {
		wantCode(t, s.CreateCategory(ctx, &ladle.Category{RestaurantID: rid, Name: name}), ladle.CodeValidation)
		wantCode(t, s.CreateItem(ctx, &ladle.Item{RestaurantID: rid, CategoryID: f.Mains.ID, Name: name, Price: 1}), ladle.CodeValidation)
		wantCode(t, s.CreateModifier(ctx, rid, &ladle.Modifier{GroupID: f.Size.ID, Name: name}), ladle.CodeValidation)
	}
	wantCode(t, s.CreateItem(ctx, &ladle.Item{RestaurantID: rid, CategoryID: f.Mains.ID, Name: "X", Description: "a\x00b", Price: 1}), ladle.CodeValidation)
	v, err := s.MenuVersion(ctx, rid)
	ok(t, err)
	if v != f.Restaurant.MenuVersion {
		t.Fatalf("invalid edits bumped the version: %d → %d", f.Restaurant.MenuVersion, v)
	}
}

// testMenuTenantScoping calls every scoped menu method with Restaurant's id
// and Other's rows: each must be not_found and change nothing.
func testMenuTenantScoping(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	otherMenu, err := s.Menu(ctx, f.Other.ID)
	ok(t, err)
	ownVersion := f.Restaurant.MenuVersion

	cat := *f.OtherCategory
	cat.RestaurantID, cat.Name = rid, "Stolen"
	wantNotFound(t, s.UpdateCategory(ctx, &cat))
	wantNotFound(t, s.DeleteCategory(ctx, rid, f.OtherCategory.ID))

	item := *f.OtherItem
	item.RestaurantID, item.Name = rid, "Stolen"
	wantNotFound(t, s.UpdateItem(ctx, &item))
	item.CategoryID = f.Mains.ID // even into one of our own categories
	wantNotFound(t, s.UpdateItem(ctx, &item))
	wantNotFound(t, s.DeleteItem(ctx, rid, f.OtherItem.ID))
	wantNotFound(t, s.SetItemAvailable(ctx, rid, f.OtherItem.ID, false))
	wantNotFound(t, s.SetItemModifierGroups(ctx, rid, f.OtherItem.ID, []int64{f.Size.ID}))
	// Our item, their group.
	wantNotFound(t, s.SetItemModifierGroups(ctx, rid, f.Burger.ID, []int64{f.Size.ID, f.OtherGroup.ID}))

	g := *f.OtherGroup
	g.RestaurantID, g.Name = rid, "Stolen"
	wantNotFound(t, s.UpdateModifierGroup(ctx, &g))
	wantNotFound(t, s.DeleteModifierGroup(ctx, rid, f.OtherGroup.ID))
	wantNotFound(t, s.CreateModifier(ctx, rid, &ladle.Modifier{GroupID: f.OtherGroup.ID, Name: "Injected"}))
	mod := *f.OtherModifier
	mod.Name = "Stolen"
	wantNotFound(t, s.UpdateModifier(ctx, rid, &mod))
	wantNotFound(t, s.DeleteModifier(ctx, rid, f.OtherModifier.ID))
	// A new item may not be put in their category, nor a new category be
	// created for a restaurant that does not exist.
	wantNotFound(t, s.CreateItem(ctx, &ladle.Item{RestaurantID: rid, CategoryID: f.OtherCategory.ID, Name: "X", Price: 1}))

	after, err := s.Menu(ctx, f.Other.ID)
	ok(t, err)
	if !sameMenu(otherMenu, after) {
		t.Fatalf("the other restaurant's menu changed:\nbefore %+v\nafter  %+v", otherMenu, after)
	}
	m, err := s.Menu(ctx, rid)
	ok(t, err)
	if m.Version != ownVersion {
		t.Fatalf("refused edits bumped our version: %d → %d", ownVersion, m.Version)
	}
	if gs := m.ItemByID(f.Burger.ID).ModifierGroups; len(gs) != 2 {
		t.Fatalf("a refused SetItemModifierGroups changed our item: %+v", gs)
	}
}

// sameMenu compares two menus field by field (through their JSON plus the
// fields JSON hides).
func sameMenu(a, b *ladle.Menu) bool {
	if a.Version != b.Version || len(a.Categories) != len(b.Categories) {
		return false
	}
	for i := range a.Categories {
		ca, cb := a.Categories[i], b.Categories[i]
		if ca.ID != cb.ID || ca.Name != cb.Name || len(ca.Items) != len(cb.Items) {
			return false
		}
		for j := range ca.Items {
			ia, ib := ca.Items[j], cb.Items[j]
			if ia.ID != ib.ID || ia.Name != ib.Name || ia.Price != ib.Price || ia.Available != ib.Available ||
				len(ia.ModifierGroups) != len(ib.ModifierGroups) {
				return false
			}
			for k := range ia.ModifierGroups {
				ga, gb := ia.ModifierGroups[k], ib.ModifierGroups[k]
				if ga.ID != gb.ID || ga.Name != gb.Name || !equal(modNames(ga), modNames(gb)) {
					return false
				}
			}
		}
	}
	return true
}

// testItemVersions: an item edit applies only to the version it was made
// from. Two staff editing the same item, an image upload and a form, or the
// sold-out toggle and a form never silently undo each other.
func testItemVersions(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	it := &ladle.Item{RestaurantID: rid, CategoryID: f.Sides.ID, Name: "Onion rings", Price: 450, Available: true}
	ok(t, s.CreateItem(ctx, it))
	read := func() ladle.Item {
		t.Helper()
		m, err := s.Menu(ctx, rid)
		ok(t, err)
		got := m.ItemByID(it.ID)
		if got == nil {
			t.Fatalf("item %d not on the menu", it.ID)
		}
		return *got
	}
	if it.Version != 1 || read().Version != 1 {
		t.Fatalf("new item version %d, read %d; want 1", it.Version, read().Version)
	}

	// Two editors open the same version; the second save is refused and
	// changes nothing.
	a, b := read(), read()
	a.Name = "Rings"
	ok(t, s.UpdateItem(ctx, &a))
	if a.Version != 2 {
		t.Fatalf("version after an update %d, want 2", a.Version)
	}
	b.Price = 999
	wantCode(t, s.UpdateItem(ctx, &b), ladle.CodeItemChanged)
	if ladle.ErrorKind(s.UpdateItem(ctx, &b)) != ladle.KindConflict || b.Version != 1 {
		t.Fatalf("a stale update is not a conflict, or moved the caller's version to %d", b.Version)
	}
	if got := read(); got.Name != "Rings" || got.Price != 450 || got.Version != 2 {
		t.Fatalf("after a refused update the item is %+v", got)
	}

	// The image alone: other fields stay as stored, not as the uploader
	// read them; a stale version is refused.
	_, err := s.SetItemImage(ctx, rid, it.ID, 1, "images/stale.jpg")
	wantCode(t, err, ladle.CodeItemChanged)
	v, err := s.SetItemImage(ctx, rid, it.ID, 2, "images/rings.jpg")
	ok(t, err)
	if got := read(); v != 3 || got.Version != 3 || got.ImageKey != "images/rings.jpg" || got.Name != "Rings" || got.Price != 450 {
		t.Fatalf("after SetItemImage (version %d) the item is %+v", v, got)
	}
	// A form opened before the upload cannot clear the image.
	a.ImageKey = ""
	wantCode(t, s.UpdateItem(ctx, &a), ladle.CodeItemChanged)

	// The sold-out toggle moves the version on too.
	ok(t, s.SetItemAvailable(ctx, rid, it.ID, false))
	c := read()
	if c.Version != 4 || c.Available {
		t.Fatalf("after the toggle: %+v", c)
	}
	stale := c
	stale.Version = 3
	stale.Available = true
	wantCode(t, s.UpdateItem(ctx, &stale), ladle.CodeItemChanged)

	// Another restaurant's item, or a missing one: not found, not a conflict.
	_, err = s.SetItemImage(ctx, f.Other.ID, it.ID, c.Version, "images/x.jpg")
	wantNotFound(t, err)
	_, err = s.SetItemImage(ctx, rid, it.ID+100000, 1, "images/x.jpg")
	wantNotFound(t, err)

	// Concurrent saves from one version: exactly one wins.
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := c
			x.Price = ladle.Money(500 + i)
			errs[i] = s.UpdateItem(ctx, &x)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case ladle.ErrorCode(err) != ladle.CodeItemChanged:
			t.Fatalf("a concurrent save failed with %v", err)
		}
	}
	if got := read(); won != 1 || got.Version != c.Version+1 {
		t.Fatalf("%d of %d concurrent saves from one version won; item %+v", won, n, got)
	}
}
