package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/ladle-dev/ladle"
)

// Menu implements ladle.MenuStore: five queries in one read snapshot, so
// the document never mixes two versions of the menu.
func (s *Store) Menu(ctx context.Context, restaurantID int64) (*ladle.Menu, error) {
	var m *ladle.Menu
	err := s.lagTx(ctx, func(ctx context.Context, tx *Tx) error {
		var err error
		m, err = loadMenu(ctx, tx, restaurantID)
		return err
	})
	return m, err
}

func loadMenu(ctx context.Context, tx *Tx, restaurantID int64) (*ladle.Menu, error) {
	r, err := restaurantByID(ctx, tx, restaurantID)
	if err != nil {
		return nil, err
	}
	m := &ladle.Menu{RestaurantID: r.ID, Slug: r.Slug, Name: r.Name, Currency: r.Currency, Version: r.MenuVersion,
		Categories: []ladle.Category{}}

	// Modifier groups with their modifiers, by id.
	groups := map[int64]*ladle.ModifierGroup{}
	rows, err := tx.QueryContext(ctx, `SELECT id, name, min_choices, max_choices, position
		FROM modifier_groups WHERE restaurant_id = $1`, restaurantID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		g := &ladle.ModifierGroup{RestaurantID: restaurantID, Modifiers: []ladle.Modifier{}}
		if err := rows.Scan(&g.ID, &g.Name, &g.Min, &g.Max, &g.Position); err != nil {
			rows.Close()
			return nil, err
		}
		groups[g.ID] = g
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT m.id, m.group_id, m.name, m.price, m.position
		FROM modifiers m JOIN modifier_groups g ON g.id = m.group_id
		WHERE g.restaurant_id = $1 ORDER BY m.position, m.id`, restaurantID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var mod ladle.Modifier
		if err := rows.Scan(&mod.ID, &mod.GroupID, &mod.Name, &mod.Price, &mod.Position); err != nil {
			rows.Close()
			return nil, err
		}
		if g := groups[mod.GroupID]; g != nil {
			g.Modifiers = append(g.Modifiers, mod)
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	// Every group, attached or not, for the menu editor.
	m.Groups = make([]ladle.ModifierGroup, 0, len(groups))
	for _, g := range groups {
		m.Groups = append(m.Groups, *g)
	}
	slices.SortFunc(m.Groups, func(a, b ladle.ModifierGroup) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})

	// Which groups hang off which item, in the item's order.
	attached := map[int64][]ladle.ModifierGroup{}
	rows, err = tx.QueryContext(ctx, `SELECT item_id, group_id FROM item_modifier_groups
		WHERE restaurant_id = $1 ORDER BY item_id, position`, restaurantID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var itemID, groupID int64
		if err := rows.Scan(&itemID, &groupID); err != nil {
			rows.Close()
			return nil, err
		}
		if g := groups[groupID]; g != nil {
			attached[itemID] = append(attached[itemID], *g)
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}

	rows, err = tx.QueryContext(ctx, `SELECT id, name, position FROM categories
		WHERE restaurant_id = $1 ORDER BY position, id`, restaurantID)
	if err != nil {
		return nil, err
	}
	catIndex := map[int64]int{}
	for rows.Next() {
		c := ladle.Category{RestaurantID: restaurantID, Items: []ladle.Item{}}
		if err := rows.Scan(&c.ID, &c.Name, &c.Position); err != nil {
			rows.Close()
			return nil, err
		}
		catIndex[c.ID] = len(m.Categories)
		m.Categories = append(m.Categories, c)
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}

	rows, err = tx.QueryContext(ctx, `SELECT `+itemColumns+` FROM items
		WHERE restaurant_id = $1 ORDER BY position, id`, restaurantID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var it ladle.Item
		if err := scanItem(rows, &it); err != nil {
			rows.Close()
			return nil, err
		}
		it.ModifierGroups = attached[it.ID]
		if it.ModifierGroups == nil {
			it.ModifierGroups = []ladle.ModifierGroup{}
		}
		if ci, ok := catIndex[it.CategoryID]; ok {
			m.Categories[ci].Items = append(m.Categories[ci].Items, it)
		}
	}
	return m, closeRows(rows)
}

// closeRows closes rows and returns the iteration error, if any.
func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	return errors.Join(err, rows.Close())
}

const itemColumns = `id, restaurant_id, category_id, name, description, price, available, image_key, position, version, dietary`

func scanItem(row interface{ Scan(...any) error }, it *ladle.Item) error {
	var dietary string
	if err := row.Scan(&it.ID, &it.RestaurantID, &it.CategoryID, &it.Name, &it.Description, &it.Price,
		&it.Available, &it.ImageKey, &it.Position, &it.Version, &dietary); err != nil {
		return err
	}
	it.Dietary = []string{}
	if dietary != "" {
		it.Dietary = strings.Split(dietary, ",")
	}
	return nil
}

// MenuVersion implements ladle.MenuStore.
func (s *Store) MenuVersion(ctx context.Context, restaurantID int64) (int64, error) {
	var v int64
	err := s.lag1(ctx, func(ctx context.Context, tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT menu_version FROM restaurants WHERE id = $1`, restaurantID).Scan(&v)
		return notFoundIfNoRows(err, "restaurant")
	})
	return v, err
}

// menuEdit runs fn in a transaction and then bumps the menu version and
// appends menu.changed, so no edit can forget to.
// The optional after functions run once it committed (they update the
// caller's copy, e.g. an item's version, only when the change is real).
func (s *Store) menuEdit(ctx context.Context, restaurantID int64, fn func(tx *Tx) error, after ...func()) error {
	err := s.withTx(ctx, func(tx *Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return menuChanged(ctx, tx, restaurantID)
	})
	if err == nil {
		for _, f := range after {
			f()
		}
	}
	return err
}

// requireName: present, and within the input policy for names (one line,
// no control or bidi characters, ladle.CheckText).
func requireName(field, name string) error {
	if strings.TrimSpace(name) == "" {
		return invalid(field, "is required")
	}
	if msg := ladle.CheckText(name, MenuNameText); msg != "" {
		return invalid(field, msg)
	}
	return nil
}

// Input policy for menu text (ladle.CheckText): names are one line, item
// descriptions may hold line breaks.
var (
	MenuNameText        = ladle.TextRule{Max: 120}
	MenuDescriptionText = ladle.TextRule{Max: 1000, Multiline: true}
)

func requirePrice(field string, p ladle.Money) error {
	if p < 0 {
		return invalid(field, "must not be negative")
	}
	return nil
}

// CreateCategory implements ladle.MenuStore.
func (s *Store) CreateCategory(ctx context.Context, c *ladle.Category) error {
	if err := requireName("name", c.Name); err != nil {
		return err
	}
	return s.menuEdit(ctx, c.RestaurantID, func(tx *Tx) error {
		if err := restaurantExists(ctx, tx, c.RestaurantID); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO categories (restaurant_id, name, position) VALUES ($1, $2, $3) RETURNING id`,
			c.RestaurantID, c.Name, c.Position).Scan(&c.ID)
	})
}

func restaurantExists(ctx context.Context, tx *Tx, id int64) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM restaurants WHERE id = $1`, id).Scan(&one)
	return notFoundIfNoRows(err, "restaurant")
}

// UpdateCategory implements ladle.MenuStore.
func (s *Store) UpdateCategory(ctx context.Context, c *ladle.Category) error {
	if err := requireName("name", c.Name); err != nil {
		return err
	}
	return s.menuEdit(ctx, c.RestaurantID, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE categories SET name = $3, position = $4 WHERE id = $1 AND restaurant_id = $2`,
			c.ID, c.RestaurantID, c.Name, c.Position)
		return mustAffect(res, err, "category")
	})
}

// DeleteCategory implements ladle.MenuStore.
func (s *Store) DeleteCategory(ctx context.Context, restaurantID, id int64) error {
	return s.menuEdit(ctx, restaurantID, func(tx *Tx) error {
		var items int
		err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM items WHERE restaurant_id = $1 AND category_id = $2)
			FROM categories WHERE id = $2 AND restaurant_id = $1`, restaurantID, id).Scan(&items)
		if err != nil {
			return notFoundIfNoRows(err, "category")
		}
		if items > 0 {
			return conflict("category_not_empty", "the category still has %d items: move or delete them first", items)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM categories WHERE id = $1 AND restaurant_id = $2`, id, restaurantID)
		return err
	})
}

func validateItem(it *ladle.Item) error {
	if err := requireName("name", it.Name); err != nil {
		return err
	}
	if msg := ladle.CheckText(it.Description, MenuDescriptionText); msg != "" {
		return invalid("description", msg)
	}
	dietary, bad := ladle.NormalizeDietary(it.Dietary)
	if bad != "" {
		return invalid("dietary", "has an unknown tag "+strconv.Quote(bad))
	}
	it.Dietary = dietary
	return requirePrice("price", it.Price)
}

// categoryExists checks that the category is the restaurant's.
func categoryExists(ctx context.Context, tx *Tx, restaurantID, id int64) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM categories WHERE id = $1 AND restaurant_id = $2`, id, restaurantID).Scan(&one)
	return notFoundIfNoRows(err, "category")
}

// CreateItem implements ladle.MenuStore.
func (s *Store) CreateItem(ctx context.Context, it *ladle.Item) error {
	if err := validateItem(it); err != nil {
		return err
	}
	return s.menuEdit(ctx, it.RestaurantID, func(tx *Tx) error {
		if err := categoryExists(ctx, tx, it.RestaurantID, it.CategoryID); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO items (restaurant_id, category_id, name, description, price, available, image_key, position, dietary)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			it.RestaurantID, it.CategoryID, it.Name, it.Description, int64(it.Price), it.Available, it.ImageKey, it.Position,
			strings.Join(it.Dietary, ",")).Scan(&it.ID)
	}, func() { it.Version = 1 })
}

// UpdateItem implements ladle.MenuStore.
func (s *Store) UpdateItem(ctx context.Context, it *ladle.Item) error {
	if err := validateItem(it); err != nil {
		return err
	}
	return s.menuEdit(ctx, it.RestaurantID, func(tx *Tx) error {
		if err := categoryExists(ctx, tx, it.RestaurantID, it.CategoryID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE items SET category_id = $3, name = $4, description = $5, price = $6,
			available = $7, image_key = $8, position = $9, dietary = $11, version = version + 1
			WHERE id = $1 AND restaurant_id = $2 AND version = $10`,
			it.ID, it.RestaurantID, it.CategoryID, it.Name, it.Description, int64(it.Price), it.Available, it.ImageKey,
			it.Position, it.Version, strings.Join(it.Dietary, ","))
		return itemVersionMatched(ctx, tx, res, err, it.RestaurantID, it.ID, it.Version)
	}, func() { it.Version++ })
}

// SetItemImage implements ladle.MenuStore: it writes the image key alone,
// so an upload never writes back other fields from an older read.
func (s *Store) SetItemImage(ctx context.Context, restaurantID, itemID, version int64, imageKey string) (int64, error) {
	err := s.menuEdit(ctx, restaurantID, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE items SET image_key = $3, version = version + 1
			WHERE id = $1 AND restaurant_id = $2 AND version = $4`, itemID, restaurantID, imageKey, version)
		return itemVersionMatched(ctx, tx, res, err, restaurantID, itemID, version)
	})
	if err != nil {
		return 0, err
	}
	return version + 1, nil
}

// itemVersionMatched turns an item update that changed no row into the
// reason: the item is not the restaurant's (not found), or its version moved
// on since the edit was made (item_changed).
func itemVersionMatched(ctx context.Context, tx *Tx, res sql.Result, err error, restaurantID, id, version int64) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 1 {
		return err
	}
	var have int64
	err = tx.QueryRowContext(ctx, `SELECT version FROM items WHERE id = $1 AND restaurant_id = $2`, id, restaurantID).Scan(&have)
	if err != nil {
		return notFoundIfNoRows(err, "item")
	}
	return conflict(ladle.CodeItemChanged, "someone else changed this item after you opened it (version %d, now %d)", version, have)
}

// DeleteItem implements ladle.MenuStore. Orders keep their line snapshots;
// the item's modifier group attachments go with it.
func (s *Store) DeleteItem(ctx context.Context, restaurantID, id int64) error {
	return s.menuEdit(ctx, restaurantID, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM items WHERE id = $1 AND restaurant_id = $2`, id, restaurantID)
		return mustAffect(res, err, "item")
	})
}

// SetItemAvailable implements ladle.MenuStore.
func (s *Store) SetItemAvailable(ctx context.Context, restaurantID, itemID int64, available bool) error {
	return s.menuEdit(ctx, restaurantID, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE items SET available = $3, version = version + 1 WHERE id = $1 AND restaurant_id = $2`,
			itemID, restaurantID, available)
		return mustAffect(res, err, "item")
	})
}

// SetItemModifierGroups implements ladle.MenuStore.
func (s *Store) SetItemModifierGroups(ctx context.Context, restaurantID, itemID int64, groupIDs []int64) error {
	seen := map[int64]bool{}
	for _, id := range groupIDs {
		if seen[id] {
			return invalid("group_ids", "must not repeat a group")
		}
		seen[id] = true
	}
	return s.menuEdit(ctx, restaurantID, func(tx *Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM items WHERE id = $1 AND restaurant_id = $2`, itemID, restaurantID).Scan(&one)
		if err != nil {
			return notFoundIfNoRows(err, "item")
		}
		if len(groupIDs) > 0 {
			var n int
			err := tx.QueryRowContext(ctx, `SELECT count(*) FROM modifier_groups
				WHERE restaurant_id = $1 AND id IN (`+tx.d.idsParam+`)`, restaurantID, encodeIDs(groupIDs)).Scan(&n)
			if err != nil {
				return err
			}
			if n != len(groupIDs) {
				return ladle.NotFound("modifier group")
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM item_modifier_groups WHERE item_id = $1 AND restaurant_id = $2`,
			itemID, restaurantID); err != nil {
			return err
		}
		for i, gid := range groupIDs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO item_modifier_groups (restaurant_id, item_id, group_id, position)
				VALUES ($1, $2, $3, $4)`, restaurantID, itemID, gid, i); err != nil {
				return err
			}
		}
		return nil
	})
}

func validateGroup(g *ladle.ModifierGroup) error {
	if err := requireName("name", g.Name); err != nil {
		return err
	}
	if g.Min < 0 {
		return invalid("min", "must not be negative")
	}
	if g.Max < 0 || (g.Max > 0 && g.Max < g.Min) {
		return invalid("max", "must be 0 (no limit) or at least min")
	}
	return nil
}

func validateModifier(m *ladle.Modifier) error {
	if err := requireName("name", m.Name); err != nil {
		return err
	}
	return requirePrice("price", m.Price)
}

// CreateModifierGroup implements ladle.MenuStore.
func (s *Store) CreateModifierGroup(ctx context.Context, g *ladle.ModifierGroup) error {
	if err := validateGroup(g); err != nil {
		return err
	}
	for i := range g.Modifiers {
		if err := validateModifier(&g.Modifiers[i]); err != nil {
			return err
		}
	}
	return s.menuEdit(ctx, g.RestaurantID, func(tx *Tx) error {
		if err := restaurantExists(ctx, tx, g.RestaurantID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO modifier_groups (restaurant_id, name, min_choices, max_choices, position)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, g.RestaurantID, g.Name, g.Min, g.Max, g.Position).Scan(&g.ID)
		if err != nil {
			return err
		}
		for i := range g.Modifiers {
			g.Modifiers[i].GroupID = g.ID
			if err := insertModifier(ctx, tx, &g.Modifiers[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

func insertModifier(ctx context.Context, tx *Tx, m *ladle.Modifier) error {
	return tx.QueryRowContext(ctx, `INSERT INTO modifiers (group_id, name, price, position) VALUES ($1, $2, $3, $4) RETURNING id`,
		m.GroupID, m.Name, int64(m.Price), m.Position).Scan(&m.ID)
}

// UpdateModifierGroup implements ladle.MenuStore.
func (s *Store) UpdateModifierGroup(ctx context.Context, g *ladle.ModifierGroup) error {
	if err := validateGroup(g); err != nil {
		return err
	}
	return s.menuEdit(ctx, g.RestaurantID, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE modifier_groups SET name = $3, min_choices = $4, max_choices = $5, position = $6
			WHERE id = $1 AND restaurant_id = $2`, g.ID, g.RestaurantID, g.Name, g.Min, g.Max, g.Position)
		return mustAffect(res, err, "modifier group")
	})
}

// DeleteModifierGroup implements ladle.MenuStore. The group's modifiers go
// with it and it is detached from every item.
func (s *Store) DeleteModifierGroup(ctx context.Context, restaurantID, id int64) error {
	return s.menuEdit(ctx, restaurantID, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM modifier_groups WHERE id = $1 AND restaurant_id = $2`, id, restaurantID)
		return mustAffect(res, err, "modifier group")
	})
}

// CreateModifier implements ladle.MenuStore.
func (s *Store) CreateModifier(ctx context.Context, restaurantID int64, m *ladle.Modifier) error {
	if err := validateModifier(m); err != nil {
		return err
	}
	return s.menuEdit(ctx, restaurantID, func(tx *Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM modifier_groups WHERE id = $1 AND restaurant_id = $2`,
			m.GroupID, restaurantID).Scan(&one)
		if err != nil {
			return notFoundIfNoRows(err, "modifier group")
		}
		return insertModifier(ctx, tx, m)
	})
}

// sqlModifierOfRestaurant restricts a statement on modifiers ($1 the
// modifier id) to those whose group is restaurant $2's.
const sqlModifierOfRestaurant = `id = $1 AND group_id IN (SELECT id FROM modifier_groups WHERE restaurant_id = $2)`

// UpdateModifier implements ladle.MenuStore: name, price and position (a
// modifier does not move between groups).
func (s *Store) UpdateModifier(ctx context.Context, restaurantID int64, m *ladle.Modifier) error {
	if err := validateModifier(m); err != nil {
		return err
	}
	return s.menuEdit(ctx, restaurantID, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE modifiers SET name = $3, price = $4, position = $5
			WHERE `+sqlModifierOfRestaurant+` RETURNING group_id`, m.ID, restaurantID, m.Name, int64(m.Price), m.Position).Scan(&m.GroupID)
		return notFoundIfNoRows(err, "modifier")
	})
}

// DeleteModifier implements ladle.MenuStore.
func (s *Store) DeleteModifier(ctx context.Context, restaurantID, id int64) error {
	return s.menuEdit(ctx, restaurantID, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM modifiers WHERE `+sqlModifierOfRestaurant, id, restaurantID)
		return mustAffect(res, err, "modifier")
	})
}

// encodeIDs encodes ids as the JSON array dialect.idsParam expects.
func encodeIDs(ids []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// uniqueIDs returns the distinct ids, sorted.
func uniqueIDs(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
