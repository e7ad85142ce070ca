package web

import (
	"net/http"
	"strconv"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/httpcache"
)

type menuPage struct {
	page
	Restaurant *ladle.Restaurant
	Menu       *ladle.Menu
	Data       clientMenu
	// Dietary is the dietary tags some item on this menu has: the filter
	// offers only those.
	Dietary []ladle.DietaryTag
}

// menuDietary is the dietary tags used on m, in ladle.DietaryTags' order.
func menuDietary(m *ladle.Menu) []ladle.DietaryTag {
	used := map[string]bool{}
	for _, c := range m.Categories {
		for _, it := range c.Items {
			for _, d := range it.Dietary {
				used[d] = true
			}
		}
	}
	var out []ladle.DietaryTag
	for _, t := range ladle.DietaryTags {
		if used[t.Code] {
			out = append(out, t)
		}
	}
	return out
}

// clientMenu is the menu as the cart's JS needs it (prices, modifiers,
// availability, how to write money), embedded in the page as a JSON data
// block. The cart stores only ids and quantities; names and prices always
// come from the page the guest is looking at.
type clientMenu struct {
	Slug      string                `json:"slug"`
	Currency  currency              `json:"currency"`
	TaxRateBP int                   `json:"tax_rate_bp"`
	Items     map[string]clientItem `json:"items"`
}

type clientItem struct {
	Name      string        `json:"name"`
	Price     ladle.Money   `json:"price"`
	Available bool          `json:"available"`
	Groups    []clientGroup `json:"groups"`
}

type clientGroup struct {
	ID        int64       `json:"id"`
	Name      string      `json:"name"`
	Min       int         `json:"min"`
	Max       int         `json:"max"`
	Modifiers []clientMod `json:"modifiers"`
}

type clientMod struct {
	ID    int64       `json:"id"`
	Name  string      `json:"name"`
	Price ladle.Money `json:"price"`
}

func newClientMenu(r *ladle.Restaurant, m *ladle.Menu) clientMenu {
	cm := clientMenu{Slug: r.Slug, Currency: currencyInfo(r.Currency), TaxRateBP: r.TaxRateBP, Items: map[string]clientItem{}}
	for _, c := range m.Categories {
		for _, it := range c.Items {
			ci := clientItem{Name: it.Name, Price: it.Price, Available: it.Available, Groups: []clientGroup{}}
			for _, g := range it.ModifierGroups {
				cg := clientGroup{ID: g.ID, Name: g.Name, Min: g.Min, Max: g.Max, Modifiers: []clientMod{}}
				for _, md := range g.Modifiers {
					cg.Modifiers = append(cg.Modifiers, clientMod{ID: md.ID, Name: md.Name, Price: md.Price})
				}
				ci.Groups = append(ci.Groups, cg)
			}
			cm.Items[strconv.FormatInt(it.ID, 10)] = ci
		}
	}
	return cm
}

// handleMenu shows a restaurant's menu with the cart. The page is public and
// versioned by the menu: its ETag is the menu version plus the build (the
// page names fingerprinted assets), so a guest's reload is a 304 until the
// menu or the code changes.
func (s *server) handleMenu(w http.ResponseWriter, r *http.Request) {
	rest, err := s.Store.RestaurantBySlug(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	menu, err := s.Menus.Menu(r.Context(), rest.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	etag := httpcache.ETag("menu-page", strconv.FormatInt(rest.ID, 10), "v"+strconv.FormatInt(menu.Version, 10), buildID)
	if httpcache.NotModified(w, r, etag, httpcache.MenuPolicy) {
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", string(httpcache.MenuPolicy))
	s.render(w, r, http.StatusOK, "menu.html", menuPage{
		page:       page{Title: rest.Name},
		Restaurant: rest, Menu: menu, Data: newClientMenu(rest, menu), Dietary: menuDietary(menu),
	})
}
