package web

import (
	"net/url"
	"testing"
)

// TestMenuEditorHostileText: staff forms go through the input policy too. A
// NUL, invalid UTF-8, a line break in a name or a bidi control is a 4xx
// page, never a 5xx (a NUL was a 500 on PostgreSQL), and nothing changes.
func TestMenuEditorHostileText(t *testing.T) {
	t.Parallel()
	editorBackends(t, func(t *testing.T, e *editorEnv) {
		c := e.client()
		c.login(e.manager)
		base, rid := e.base(), e.fx.Restaurant.ID
		before := e.menu(rid)
		fries := e.fx.Fries
		for _, bad := range []string{"Fr\x00ies", "Fr\xffies", "Fr\xed\xa0\x80ies", "Fr\r\nies", "\u202eseirF", "Fries\ufeff"} {
			posts := []struct {
				path string
				form url.Values
			}{
				{base + "/categories", url.Values{"name": {bad}}},
				{base + "/items", url.Values{"category_id": {itoa(fries.CategoryID)}, "name": {bad}, "price": {"1"}}},
				{base + "/items/" + itoa(fries.ID), url.Values{"name": {bad}, "description": {""}, "price": {"3.99"},
					"category_id": {itoa(fries.CategoryID)}, "available": {"1"}, "version": {e.ver(fries.ID)}}},
				{base + "/items/" + itoa(fries.ID), url.Values{"name": {"Fries"}, "description": {bad + "\x00"}, "price": {"3.99"},
					"category_id": {itoa(fries.CategoryID)}, "available": {"1"}, "version": {e.ver(fries.ID)}}},
				{base + "/groups/" + itoa(e.fx.Extras.ID) + "/modifiers", url.Values{"name": {bad}, "price": {"0.50"}}},
			}
			for _, p := range posts {
				res := c.post(p.path, p.form)
				if res.status < 400 || res.status >= 500 {
					t.Errorf("POST %s name %q: %d", p.path, bad, res.status)
				}
			}
		}
		after := e.menu(rid)
		if len(after.Categories) != len(before.Categories) || e.item(fries.ID).Name != "Fries" || e.item(fries.ID).Description != fries.Description {
			t.Fatalf("hostile text changed the menu")
		}
		if g := findGroupNamed(t, after, "Extras"); len(g.Modifiers) != len(e.fx.Extras.Modifiers) {
			t.Fatalf("a modifier was added: %+v", g.Modifiers)
		}
	})
}
