package ladle

// The menu is stored relationally (categories, items, modifier groups,
// modifiers, and the item↔group many-to-many) and served as one document:
// Menu. The same document is what checkout prices from (loaded inside the
// order's transaction, never from a cache) and what caches hold (keyed by
// Restaurant.MenuVersion).

// Menu is the menu as served: categories in order, each with its items.
type Menu struct {
	RestaurantID int64      `json:"restaurant_id"`
	Slug         string     `json:"slug"`
	Name         string     `json:"name"`
	Currency     string     `json:"currency"`
	Version      int64      `json:"version"`
	Categories   []Category `json:"categories"`
	// Groups is every modifier group of the restaurant, attached to items
	// or not, in position order: what the staff menu editor lists. Guests
	// see groups through their items, so it is not served.
	Groups []ModifierGroup `json:"-"`
}

// Category is a menu section.
type Category struct {
	ID           int64  `json:"id"`
	RestaurantID int64  `json:"-"`
	Name         string `json:"name"`
	Position     int    `json:"position"`
	Items        []Item `json:"items"`
}

// Item is something a guest can order.
type Item struct {
	ID           int64  `json:"id"`
	RestaurantID int64  `json:"-"`
	CategoryID   int64  `json:"category_id"`
	Name         string `json:"name"`
	Description  string `json:"description"`
	Price        Money  `json:"price"`
	// Available is false when the item is sold out: still listed, not orderable.
	Available bool `json:"available"`
	// ImageKey is the blob key of the item's image ("" for none); Image is the
	// URL served to clients, derived from it by the HTTP layer.
	ImageKey string `json:"-"`
	Image    string `json:"image"`
	Position int    `json:"position"`
	// Dietary is what the item is, for guests who must know ("vegan",
	// "gluten_free", …: DietaryTags), each at most once, in DietaryTags'
	// order. The store refuses unknown ones.
	Dietary        []string        `json:"dietary"`
	ModifierGroups []ModifierGroup `json:"modifier_groups"`
	// Version counts changes to the item's row (1 when created). An edit
	// names the version it was made from: UpdateItem and SetItemImage
	// refuse it with CodeItemChanged if the item changed since.
	Version int64 `json:"-"`
}

// ModifierGroup is a choice attached to items ("Size", "Extra toppings").
// A guest picks between Min and Max of its modifiers. Groups are shared:
// one "Size" group may hang off many items (many-to-many).
type ModifierGroup struct {
	ID           int64      `json:"id"`
	RestaurantID int64      `json:"-"`
	Name         string     `json:"name"`
	Min          int        `json:"min"`
	Max          int        `json:"max"`
	Position     int        `json:"position"`
	Modifiers    []Modifier `json:"modifiers"`
}

// Modifier is one option in a group, with the price it adds (may be 0).
type Modifier struct {
	ID       int64  `json:"id"`
	GroupID  int64  `json:"-"`
	Name     string `json:"name"`
	Price    Money  `json:"price"`
	Position int    `json:"position"`
}

// ItemByID returns the item with the given id, or nil.
func (m *Menu) ItemByID(id int64) *Item {
	for ci := range m.Categories {
		for ii := range m.Categories[ci].Items {
			if m.Categories[ci].Items[ii].ID == id {
				return &m.Categories[ci].Items[ii]
			}
		}
	}
	return nil
}

// CodeItemChanged is the conflict code of an item edit made from an older
// version of the item (see Item.Version).
const CodeItemChanged = "item_changed"

// DietaryTag is one thing an item can be labelled as, with the words a
// guest reads.
type DietaryTag struct {
	Code  string // stored and served: "gluten_free"
	Label string // shown: "Gluten-free"
}

// DietaryTags is every dietary tag, in the order items list them.
var DietaryTags = []DietaryTag{
	{"vegetarian", "Vegetarian"},
	{"vegan", "Vegan"},
	{"gluten_free", "Gluten-free"},
	{"dairy_free", "Dairy-free"},
	{"nut_free", "Nut-free"},
	{"spicy", "Spicy"},
}

// DietaryLabel is the label of a dietary tag code ("" if unknown).
func DietaryLabel(code string) string {
	for _, t := range DietaryTags {
		if t.Code == code {
			return t.Label
		}
	}
	return ""
}

// NormalizeDietary puts dietary tag codes in DietaryTags' order without
// repeats; bad is the first unknown code ("" when all are known).
func NormalizeDietary(codes []string) (out []string, bad string) {
	seen := map[string]bool{}
	for _, c := range codes {
		if DietaryLabel(c) == "" {
			return nil, c
		}
		seen[c] = true
	}
	out = []string{}
	for _, t := range DietaryTags {
		if seen[t.Code] {
			out = append(out, t.Code)
		}
	}
	return out, ""
}
