package web

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ladle-dev/ladle"
)

// The edits behind the menu editor's forms. Each reads what it needs from
// the store (scoped to the restaurant), validates the form, writes, and
// says where to go back to. Nothing is written unless everything checked.

// Bounds on what the editor accepts.
const (
	maxMenuNameLen = 100
	maxDescLen     = 1000
	maxGroupChoice = 50
	// maxPrice is 1,000,000 in major units: a price over it is a typo.
	maxPriceMajor = 1_000_000
)

func invalidField(field, msg string) error {
	return &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation, Message: field + " " + msg,
		Fields: map[string]string{field: msg}}
}

func formName(f url.Values, field string) (string, error) {
	v := strings.TrimSpace(f.Get(field))
	switch {
	case v == "":
		return "", invalidField(field, "is required")
	case utf8.RuneCountInString(v) > maxMenuNameLen:
		return "", invalidField(field, "must be at most "+strconv.Itoa(maxMenuNameLen)+" characters")
	case ladle.CheckText(v, ladle.NameText) != "": // the input policy: one line, no control or bidi characters
		return "", invalidField(field, ladle.CheckText(v, ladle.NameText))
	}
	return v, nil
}

func formInt(f url.Values, field string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(f.Get(field)))
	if err != nil || n < lo || n > hi {
		return 0, invalidField(field, "must be a whole number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
	}
	return n, nil
}

func formID(f url.Values, field string) (int64, error) {
	id, err := strconv.ParseInt(f.Get(field), 10, 64)
	if err != nil || id <= 0 {
		return 0, invalidField(field, "is required")
	}
	return id, nil
}

// parsePrice reads an amount as people type it ("12", "12.5", "1,299.00",
// "$4.50") into minor units of the currency; more decimals than the
// currency has, negatives and absurd amounts are refused.
func parsePrice(s, code string) (ladle.Money, error) {
	digits := currencyInfo(code).Digits
	bad := invalidField("price", "must be an amount like "+amountText(1250, code))
	s = strings.TrimSpace(s)
	s = strings.TrimLeft(s, "$€£¥₹₩₪ ")
	s = strings.ReplaceAll(s, ",", "")
	if s == "" {
		return 0, bad
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	if hasDot && (frac == "" || len(frac) > digits) {
		return 0, bad
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return 0, bad
			}
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > maxPriceMajor {
		return 0, invalidField("price", "is too large")
	}
	frac += strings.Repeat("0", digits-len(frac))
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac, 10, 64)
	}
	mult := int64(1)
	for range digits {
		mult *= 10
	}
	return ladle.Money(w*mult + f), nil
}

// amountText writes minor units as a plain decimal for a form field
// ("12.50", "1250" for yen): formatMoney without symbol or separators.
func amountText(m ladle.Money, code string) string {
	digits := currencyInfo(code).Digits
	if digits == 0 {
		return strconv.FormatInt(int64(m), 10)
	}
	div := int64(1)
	for range digits {
		div *= 10
	}
	v := int64(m)
	fs := strconv.FormatInt(v%div, 10)
	return strconv.FormatInt(v/div, 10) + "." + strings.Repeat("0", digits-len(fs)) + fs
}

// Amount is amountText for templates: the value of a price input.
func (p menuEditorPage) Amount(m ladle.Money) string { return amountText(m, p.Restaurant.Currency) }

// moved returns ids with id moved one place "up" or "down" (unchanged at an
// end); an id not among them is not found.
func moved(ids []int64, id int64, dir string) ([]int64, error) {
	if dir != "up" && dir != "down" {
		return nil, invalidField("direction", `must be "up" or "down"`)
	}
	for i, x := range ids {
		if x != id {
			continue
		}
		out := append([]int64(nil), ids...)
		switch {
		case dir == "up" && i > 0:
			out[i-1], out[i] = out[i], out[i-1]
		case dir == "down" && i < len(out)-1:
			out[i+1], out[i] = out[i], out[i+1]
		}
		return out, nil
	}
	return nil, ladle.NotFound("menu entry")
}

// renumber gives each entry its index in order as its position, writing
// only those whose position changes.
func renumber[T any](list []T, order []int64, idOf func(*T) int64, posOf func(*T) *int, save func(*T) error) error {
	byID := map[int64]*T{}
	for i := range list {
		byID[idOf(&list[i])] = &list[i]
	}
	for i, id := range order {
		e := byID[id]
		if p := posOf(e); *p != i {
			*p = i
			if err := save(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *server) editorMenu(ctx context.Context, st *staffView) (*ladle.Menu, error) {
	return s.Store.Menu(ctx, st.Restaurant.ID)
}

func findCategory(m *ladle.Menu, id int64) (*ladle.Category, error) {
	for i := range m.Categories {
		if m.Categories[i].ID == id {
			return &m.Categories[i], nil
		}
	}
	return nil, ladle.NotFound("category")
}

func findGroup(groups []ladle.ModifierGroup, id int64) (*ladle.ModifierGroup, error) {
	for i := range groups {
		if groups[i].ID == id {
			return &groups[i], nil
		}
	}
	return nil, ladle.NotFound("modifier group")
}

func findModifier(groups []ladle.ModifierGroup, id int64) (*ladle.ModifierGroup, *ladle.Modifier, error) {
	for gi := range groups {
		for mi := range groups[gi].Modifiers {
			if groups[gi].Modifiers[mi].ID == id {
				return &groups[gi], &groups[gi].Modifiers[mi], nil
			}
		}
	}
	return nil, nil, ladle.NotFound("modifier")
}

// Categories.

func (s *server) categoryCreate(ctx context.Context, st *staffView, _ int64, f url.Values) (string, error) {
	name, err := formName(f, "name")
	if err != nil {
		return "", err
	}
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	c := &ladle.Category{RestaurantID: st.Restaurant.ID, Name: name, Position: len(m.Categories)}
	if err := s.Store.CreateCategory(ctx, c); err != nil {
		return "", err
	}
	return menuURL(c.RestaurantID) + "#category-" + itoa(c.ID), nil
}

func (s *server) categoryUpdate(ctx context.Context, st *staffView, id int64, f url.Values) (string, error) {
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	c, err := findCategory(m, id)
	if err != nil {
		return "", err
	}
	if c.Name, err = formName(f, "name"); err != nil {
		return "", err
	}
	if err := s.Store.UpdateCategory(ctx, c); err != nil {
		return "", err
	}
	return menuURL(c.RestaurantID) + "#category-" + itoa(id), nil
}

func (s *server) categoryMove(ctx context.Context, st *staffView, id int64, f url.Values) (string, error) {
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	ids := make([]int64, len(m.Categories))
	for i, c := range m.Categories {
		ids[i] = c.ID
	}
	order, err := moved(ids, id, f.Get("direction"))
	if err != nil {
		return "", err
	}
	err = renumber(m.Categories, order, func(c *ladle.Category) int64 { return c.ID },
		func(c *ladle.Category) *int { return &c.Position },
		func(c *ladle.Category) error { return s.Store.UpdateCategory(ctx, c) })
	return menuURL(st.Restaurant.ID) + "#category-" + itoa(id), err
}

func (s *server) categoryDelete(ctx context.Context, st *staffView, id int64, _ url.Values) (string, error) {
	return menuURL(st.Restaurant.ID), s.Store.DeleteCategory(ctx, st.Restaurant.ID, id)
}

// Items.

func (s *server) itemCreate(ctx context.Context, st *staffView, _ int64, f url.Values) (string, error) {
	rid := st.Restaurant.ID
	catID, err := formID(f, "category_id")
	if err != nil {
		return "", err
	}
	name, err := formName(f, "name")
	if err != nil {
		return "", err
	}
	price, err := parsePrice(f.Get("price"), st.Restaurant.Currency)
	if err != nil {
		return "", err
	}
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	c, err := findCategory(m, catID)
	if err != nil {
		return "", err
	}
	it := &ladle.Item{RestaurantID: rid, CategoryID: c.ID, Name: name, Price: price, Available: true, Position: len(c.Items)}
	if err := s.Store.CreateItem(ctx, it); err != nil {
		return "", err
	}
	return itemURL(rid, it.ID), nil
}

// itemUpdate saves the item page's form: fields, category and groups. The
// groups are checked before anything is written, so a bad one changes
// nothing.
func (s *server) itemUpdate(ctx context.Context, st *staffView, id int64, f url.Values) (string, error) {
	rid := st.Restaurant.ID
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	cur := m.ItemByID(id)
	if cur == nil {
		return "", ladle.NotFound("item")
	}
	it := *cur
	// The version the form was opened at, not the one just read: a save
	// made from an older page is refused instead of undoing what was
	// saved since.
	if it.Version, err = formVersion(f); err != nil {
		return "", err
	}
	if it.Name, err = formName(f, "name"); err != nil {
		return "", err
	}
	it.Description = strings.TrimSpace(strings.ReplaceAll(f.Get("description"), "\r\n", "\n"))
	if utf8.RuneCountInString(it.Description) > maxDescLen {
		return "", invalidField("description", "must be at most "+strconv.Itoa(maxDescLen)+" characters")
	}
	if msg := ladle.CheckText(it.Description, ladle.TextRule{Multiline: true}); msg != "" { // the input policy
		return "", invalidField("description", msg)
	}
	if it.Price, err = parsePrice(f.Get("price"), st.Restaurant.Currency); err != nil {
		return "", err
	}
	it.Available = f.Get("available") != ""
	it.Dietary = f["dietary"] // the store checks each tag
	if it.Dietary == nil {
		it.Dietary = []string{}
	}
	catID, err := formID(f, "category_id")
	if err != nil {
		return "", err
	}
	target, err := findCategory(m, catID)
	if err != nil {
		return "", err
	}
	if target.ID != it.CategoryID {
		it.CategoryID, it.Position = target.ID, len(target.Items)
	}
	groups := allGroups(m)
	var groupIDs []int64
	for _, v := range f["group"] {
		gid, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", ladle.NotFound("modifier group")
		}
		if _, err := findGroup(groups, gid); err != nil {
			return "", err
		}
		groupIDs = append(groupIDs, gid)
	}
	if err := s.Store.UpdateItem(ctx, &it); err != nil {
		return "", err
	}
	if !sameGroups(cur.ModifierGroups, groupIDs) {
		if err := s.Store.SetItemModifierGroups(ctx, rid, id, groupIDs); err != nil {
			return "", err
		}
	}
	return itemURL(rid, id), nil
}

// formVersion is the item version a form was rendered with.
func formVersion(f url.Values) (int64, error) {
	v, err := strconv.ParseInt(f.Get("version"), 10, 64)
	if err != nil || v < 1 {
		return 0, invalidField("version", "is missing: reload the page and try again")
	}
	return v, nil
}

func sameGroups(gs []ladle.ModifierGroup, ids []int64) bool {
	if len(gs) != len(ids) {
		return false
	}
	for i := range gs {
		if gs[i].ID != ids[i] {
			return false
		}
	}
	return true
}

// itemAvailable is the sold-out toggle.
func (s *server) itemAvailable(ctx context.Context, st *staffView, id int64, f url.Values) (string, error) {
	var available bool
	switch f.Get("available") {
	case "true":
		available = true
	case "false":
	default:
		return "", invalidField("available", `must be "true" or "false"`)
	}
	if err := s.Store.SetItemAvailable(ctx, st.Restaurant.ID, id, available); err != nil {
		return "", err
	}
	return backTo(st.Restaurant.ID, id, f), nil
}

// backTo is the item page when the form came from it, else the item's row
// on the overview.
func backTo(rid, id int64, f url.Values) string {
	if f.Get("back") == "item" {
		return itemURL(rid, id)
	}
	return menuURL(rid) + "#item-" + itoa(id)
}

func (s *server) itemMove(ctx context.Context, st *staffView, id int64, f url.Values) (string, error) {
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	it := m.ItemByID(id)
	if it == nil {
		return "", ladle.NotFound("item")
	}
	c, err := findCategory(m, it.CategoryID)
	if err != nil {
		return "", err
	}
	ids := make([]int64, len(c.Items))
	for i, x := range c.Items {
		ids[i] = x.ID
	}
	order, err := moved(ids, id, f.Get("direction"))
	if err != nil {
		return "", err
	}
	err = renumber(c.Items, order, func(x *ladle.Item) int64 { return x.ID },
		func(x *ladle.Item) *int { return &x.Position },
		func(x *ladle.Item) error { return s.Store.UpdateItem(ctx, x) })
	return menuURL(st.Restaurant.ID) + "#item-" + itoa(id), err
}

func (s *server) itemDelete(ctx context.Context, st *staffView, id int64, _ url.Values) (string, error) {
	return menuURL(st.Restaurant.ID), s.Store.DeleteItem(ctx, st.Restaurant.ID, id)
}

// Modifier groups and modifiers.

func groupForm(f url.Values, g *ladle.ModifierGroup) error {
	var err error
	if g.Name, err = formName(f, "name"); err != nil {
		return err
	}
	if g.Min, err = formInt(f, "min", 0, maxGroupChoice); err != nil {
		return err
	}
	if g.Max, err = formInt(f, "max", 0, maxGroupChoice); err != nil {
		return err
	}
	if g.Max > 0 && g.Max < g.Min {
		return invalidField("max", "must be 0 (no limit) or at least min")
	}
	return nil
}

func (s *server) groupCreate(ctx context.Context, st *staffView, _ int64, f url.Values) (string, error) {
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	g := &ladle.ModifierGroup{RestaurantID: st.Restaurant.ID, Position: len(allGroups(m))}
	if err := groupForm(f, g); err != nil {
		return "", err
	}
	if err := s.Store.CreateModifierGroup(ctx, g); err != nil {
		return "", err
	}
	return menuURL(g.RestaurantID) + "#group-" + itoa(g.ID), nil
}

func (s *server) groupUpdate(ctx context.Context, st *staffView, id int64, f url.Values) (string, error) {
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	g, err := findGroup(allGroups(m), id)
	if err != nil {
		return "", err
	}
	if err := groupForm(f, g); err != nil {
		return "", err
	}
	if err := s.Store.UpdateModifierGroup(ctx, g); err != nil {
		return "", err
	}
	return menuURL(st.Restaurant.ID) + "#group-" + itoa(id), nil
}

func (s *server) groupMove(ctx context.Context, st *staffView, id int64, f url.Values) (string, error) {
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	groups := allGroups(m)
	ids := make([]int64, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
	}
	order, err := moved(ids, id, f.Get("direction"))
	if err != nil {
		return "", err
	}
	err = renumber(groups, order, func(g *ladle.ModifierGroup) int64 { return g.ID },
		func(g *ladle.ModifierGroup) *int { return &g.Position },
		func(g *ladle.ModifierGroup) error { return s.Store.UpdateModifierGroup(ctx, g) })
	return menuURL(st.Restaurant.ID) + "#group-" + itoa(id), err
}

func (s *server) groupDelete(ctx context.Context, st *staffView, id int64, _ url.Values) (string, error) {
	return menuURL(st.Restaurant.ID) + "#groups", s.Store.DeleteModifierGroup(ctx, st.Restaurant.ID, id)
}

func (s *server) modifierCreate(ctx context.Context, st *staffView, groupID int64, f url.Values) (string, error) {
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	g, err := findGroup(allGroups(m), groupID)
	if err != nil {
		return "", err
	}
	mod := &ladle.Modifier{GroupID: g.ID, Position: len(g.Modifiers)}
	if mod.Name, err = formName(f, "name"); err != nil {
		return "", err
	}
	if mod.Price, err = parsePrice(f.Get("price"), st.Restaurant.Currency); err != nil {
		return "", err
	}
	if err := s.Store.CreateModifier(ctx, st.Restaurant.ID, mod); err != nil {
		return "", err
	}
	return menuURL(st.Restaurant.ID) + "#group-" + itoa(g.ID), nil
}

func (s *server) modifierUpdate(ctx context.Context, st *staffView, id int64, f url.Values) (string, error) {
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	g, mod, err := findModifier(allGroups(m), id)
	if err != nil {
		return "", err
	}
	if mod.Name, err = formName(f, "name"); err != nil {
		return "", err
	}
	if mod.Price, err = parsePrice(f.Get("price"), st.Restaurant.Currency); err != nil {
		return "", err
	}
	if err := s.Store.UpdateModifier(ctx, st.Restaurant.ID, mod); err != nil {
		return "", err
	}
	return menuURL(st.Restaurant.ID) + "#group-" + itoa(g.ID), nil
}

func (s *server) modifierMove(ctx context.Context, st *staffView, id int64, f url.Values) (string, error) {
	m, err := s.editorMenu(ctx, st)
	if err != nil {
		return "", err
	}
	g, _, err := findModifier(allGroups(m), id)
	if err != nil {
		return "", err
	}
	ids := make([]int64, len(g.Modifiers))
	for i, x := range g.Modifiers {
		ids[i] = x.ID
	}
	order, err := moved(ids, id, f.Get("direction"))
	if err != nil {
		return "", err
	}
	err = renumber(g.Modifiers, order, func(x *ladle.Modifier) int64 { return x.ID },
		func(x *ladle.Modifier) *int { return &x.Position },
		func(x *ladle.Modifier) error { return s.Store.UpdateModifier(ctx, st.Restaurant.ID, x) })
	return menuURL(st.Restaurant.ID) + "#group-" + itoa(g.ID), err
}

func (s *server) modifierDelete(ctx context.Context, st *staffView, id int64, _ url.Values) (string, error) {
	return menuURL(st.Restaurant.ID) + "#groups", s.Store.DeleteModifier(ctx, st.Restaurant.ID, id)
}
