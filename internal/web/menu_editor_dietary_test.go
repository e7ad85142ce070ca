package web

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// TestMenuEditorDietaryAndTypedInput: dietary tags are edited on the item
// page and shown to guests as labelled badges; a save refused for one bad
// field shows everything typed again (the item page and the menu page's
// "new item" form alike) and writes nothing.
func TestMenuEditorDietaryAndTypedInput(t *testing.T) {
	t.Parallel()
	editorBackends(t, func(t *testing.T, e *editorEnv) {
		c := e.client()
		c.login(e.manager)
		base, slug := e.base(), "/r/"+e.fx.Restaurant.Slug
		fries := e.fx.Fries
		path := base + "/items/" + itoa(fries.ID)

		form := url.Values{"name": {"Fries"}, "description": {"Hand-cut"}, "price": {"3.99"},
			"category_id": {itoa(fries.CategoryID)}, "available": {"1"}, "version": {e.ver(fries.ID)},
			"dietary": {"vegan", "gluten_free", "vegetarian"}}
		wantRedirect(t, c.post(path, form))
		if got := e.item(fries.ID).Dietary; !slices.Equal(got, []string{"vegetarian", "vegan", "gluten_free"}) {
			t.Fatalf("dietary after saving %q", got)
		}
		c.get(path).want(t, http.StatusOK, `name="dietary" value="vegan" checked`, `name="dietary" value="gluten_free" checked`)
		c.get(path).wantNot(t, `name="dietary" value="spicy" checked`)
		guest := e.client().get(slug)
		guest.want(t, http.StatusOK, `data-dietary="vegetarian vegan gluten_free"`, ">Vegan<", ">Gluten-free<")

		// One bad field (the price): refused, nothing written, every typed
		// value and ticked box back in the form.
		before := *e.item(fries.ID)
		form = url.Values{"name": {"Curly fries"}, "description": {"Seasoned, extra crispy"}, "price": {"4.2.5"},
			"category_id": {itoa(fries.CategoryID)}, "version": {e.ver(fries.ID)}, "dietary": {"spicy"}}
		res := c.post(path, form)
		res.want(t, http.StatusUnprocessableEntity, "Not saved", `value="Curly fries"`, "Seasoned, extra crispy</textarea>",
			`value="4.2.5"`, `name="dietary" value="spicy" checked`)
		res.wantNot(t, `name="dietary" value="vegan" checked`, `name="available" value="1" checked`)
		if after := e.item(fries.ID); after.Name != before.Name || after.Version != before.Version || !slices.Equal(after.Dietary, before.Dietary) {
			t.Fatalf("a refused save wrote %+v", after)
		}
		// An unknown tag is refused by name.
		form.Set("price", "4.25")
		form["dietary"] = []string{"keto"}
		c.post(path, form).want(t, http.StatusUnprocessableEntity, "Not saved", "keto")

		// The menu page's "new item" form keeps its input too.
		res = c.post(base+"/items", url.Values{"category_id": {itoa(fries.CategoryID)}, "name": {"Onion rings"}, "price": {"lots"}})
		res.want(t, http.StatusUnprocessableEntity, "Not saved", `id="new-item-`+itoa(fries.CategoryID)+`" name="name" required maxlength="100" placeholder="e.g. Tomato soup" value="Onion rings"`, `value="lots"`)
	})
}
