package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ladle-dev/ladle"
)

// The menu editor: staff pages where owners and managers change the menu —
// categories, items, prices, modifier groups and modifiers, the sold-out
// toggle, the order of everything, and item photos. Plain HTML forms that
// post and redirect back (POST/redirect/GET), so they work without JS.
//
// Every route is a staffRoute: requireMember has already checked that the
// signed-in user belongs to {rid}, and every store call below is scoped to
// that restaurant, so another restaurant's ids are "not found" and change
// nothing. The editor reads the menu from the store, never from a cache:
// an edit is on the editor's screen the moment it commits. After each edit
// MenuChanged tells the caches (this process's and, by broadcast, every
// other's) to drop the old menu.

// MenuChangedFunc is told that a restaurant's menu changed.
type MenuChangedFunc func(ctx context.Context, restaurantID int64)

// menuEditorRoutes are the editor's routes; routes.go registers them with
// the other staff routes. {id} is the id of the thing the path names.
var menuEditorRoutes = []staffRoute{
	{"GET /admin/r/{rid}/menu", func(s *server) staffHandler { return s.handleMenuEditor }},
	{"GET /admin/r/{rid}/menu/items/{id}", func(s *server) staffHandler { return s.handleItemEditor }},

	{"POST /admin/r/{rid}/menu/categories", func(s *server) staffHandler { return s.menuAction(false, s.categoryCreate) }},
	{"POST /admin/r/{rid}/menu/categories/{id}", func(s *server) staffHandler { return s.menuAction(true, s.categoryUpdate) }},
	{"POST /admin/r/{rid}/menu/categories/{id}/move", func(s *server) staffHandler { return s.menuAction(true, s.categoryMove) }},
	{"POST /admin/r/{rid}/menu/categories/{id}/delete", func(s *server) staffHandler { return s.menuAction(true, s.categoryDelete) }},

	{"POST /admin/r/{rid}/menu/items", func(s *server) staffHandler { return s.menuAction(false, s.itemCreate) }},
	{"POST /admin/r/{rid}/menu/items/{id}", func(s *server) staffHandler { return s.menuAction(true, s.itemUpdate) }},
	{"POST /admin/r/{rid}/menu/items/{id}/available", func(s *server) staffHandler { return s.menuAction(true, s.itemAvailable) }},
	{"POST /admin/r/{rid}/menu/items/{id}/move", func(s *server) staffHandler { return s.menuAction(true, s.itemMove) }},
	{"POST /admin/r/{rid}/menu/items/{id}/delete", func(s *server) staffHandler { return s.menuAction(true, s.itemDelete) }},
	{"POST /admin/r/{rid}/menu/items/{id}/image", func(s *server) staffHandler { return s.handleItemImage }},

	{"POST /admin/r/{rid}/menu/groups", func(s *server) staffHandler { return s.menuAction(false, s.groupCreate) }},
	{"POST /admin/r/{rid}/menu/groups/{id}", func(s *server) staffHandler { return s.menuAction(true, s.groupUpdate) }},
	{"POST /admin/r/{rid}/menu/groups/{id}/move", func(s *server) staffHandler { return s.menuAction(true, s.groupMove) }},
	{"POST /admin/r/{rid}/menu/groups/{id}/delete", func(s *server) staffHandler { return s.menuAction(true, s.groupDelete) }},
	{"POST /admin/r/{rid}/menu/groups/{id}/modifiers", func(s *server) staffHandler { return s.menuAction(true, s.modifierCreate) }},

	{"POST /admin/r/{rid}/menu/modifiers/{id}", func(s *server) staffHandler { return s.menuAction(true, s.modifierUpdate) }},
	{"POST /admin/r/{rid}/menu/modifiers/{id}/move", func(s *server) staffHandler { return s.menuAction(true, s.modifierMove) }},
	{"POST /admin/r/{rid}/menu/modifiers/{id}/delete", func(s *server) staffHandler { return s.menuAction(true, s.modifierDelete) }},
}

// menuEditorPage is the editor's overview.
type menuEditorPage struct {
	page
	Restaurant *ladle.Restaurant
	Menu       *ladle.Menu
	Groups     []ladle.ModifierGroup
	Saved      bool
	Error      string
	Uploads    bool // image upload is configured
	// NewItem is what was typed in a category's "new item" form that was
	// refused, shown again in that form.
	NewItem struct {
		CategoryID  int64
		Name, Price string
	}
}

// itemEditorPage edits one item.
type itemEditorPage struct {
	menuEditorPage
	Item     *ladle.Item
	Form     itemForm       // what the item form shows: the item, or what was posted
	Attached map[int64]bool // group id → ticked in the form
}

// itemForm is the item form's fields. A refused save shows the editor's own
// input again, not the stored item: nothing typed is lost.
type itemForm struct {
	Name, Description, Price string
	CategoryID               int64
	Available                bool
	Dietary                  map[string]bool // tag code → ticked
	// Version is the item version the form edits. After a conflict it is
	// the current one: the message says someone else saved meanwhile, and
	// saving again replaces their change knowingly.
	Version int64
}

func menuURL(rid int64) string { return "/admin/r/" + itoa(rid) + "/menu" }

func itemURL(rid, id int64) string { return menuURL(rid) + "/items/" + itoa(id) }

// canEditMenu answers a staff member whose role may not edit the menu with
// 403 and reports false.
func (s *server) canEditMenu(w http.ResponseWriter, r *http.Request, st *staffView) bool {
	if st.Role.CanEditMenu() {
		return true
	}
	s.errorPage(w, r, http.StatusForbidden, "Not allowed",
		"Only the restaurant's owners and managers can edit the menu.")
	return false
}

// pathID parses {id}: anything but a positive integer names nothing (404).
func pathID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

// loadEditor reads the menu from the store (never a cache) and lists every
// modifier group, attached or not.
func (s *server) loadEditor(ctx context.Context, st *staffView) (menuEditorPage, error) {
	m, err := s.Store.Menu(ctx, st.Restaurant.ID)
	if err != nil {
		return menuEditorPage{}, err
	}
	return menuEditorPage{
		page:       page{Title: "Menu · " + st.Restaurant.Name, Staff: st},
		Restaurant: st.Restaurant,
		Menu:       m,
		Groups:     allGroups(m),
		Uploads:    s.Images != nil,
	}, nil
}

// allGroups is Menu.Groups, or for a store that does not fill it, the
// groups attached to items (unattached ones are then not listed).
func allGroups(m *ladle.Menu) []ladle.ModifierGroup {
	if m.Groups != nil {
		return m.Groups
	}
	var out []ladle.ModifierGroup
	seen := map[int64]bool{}
	for _, c := range m.Categories {
		for _, it := range c.Items {
			for _, g := range it.ModifierGroups {
				if !seen[g.ID] {
					seen[g.ID] = true
					out = append(out, g)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b ladle.ModifierGroup) int { return a.Position - b.Position })
	return out
}

// handleMenuEditor shows the whole menu with its forms.
func (s *server) handleMenuEditor(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !s.canEditMenu(w, r, st) {
		return
	}
	p, err := s.loadEditor(r.Context(), st)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Saved = r.URL.Query().Get("saved") != ""
	s.render(w, r, http.StatusOK, "admin_menu.html", p)
}

// handleItemEditor shows one item: every field, its groups, its photo.
func (s *server) handleItemEditor(w http.ResponseWriter, r *http.Request, st *staffView) {
	id, ok := pathID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if !s.canEditMenu(w, r, st) {
		return
	}
	s.renderItemEditor(w, r, st, id, http.StatusOK, "")
}

func (s *server) renderItemEditor(w http.ResponseWriter, r *http.Request, st *staffView, id int64, status int, msg string) {
	p, err := s.loadEditor(r.Context(), st)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	it := p.Menu.ItemByID(id)
	if it == nil {
		s.notFound(w, r)
		return
	}
	p.Title = it.Name + " · Menu"
	p.Saved = r.URL.Query().Get("saved") != "" && msg == ""
	p.Error = msg
	ip := itemEditorPage{menuEditorPage: p, Item: it, Attached: map[int64]bool{},
		Form: itemForm{Name: it.Name, Description: it.Description, Price: p.Amount(it.Price),
			CategoryID: it.CategoryID, Available: it.Available, Version: it.Version, Dietary: tickSet(it.Dietary)}}
	for _, g := range it.ModifierGroups {
		ip.Attached[g.ID] = true
	}
	if r.Method == http.MethodPost && r.URL.Path == itemURL(st.Restaurant.ID, id) && r.PostForm != nil {
		// The item form was refused: show what was typed.
		f := r.PostForm
		ip.Form.Name, ip.Form.Description, ip.Form.Price = f.Get("name"), f.Get("description"), f.Get("price")
		ip.Form.Available = f.Get("available") != ""
		ip.Form.Dietary = tickSet(f["dietary"])
		if c, err := strconv.ParseInt(f.Get("category_id"), 10, 64); err == nil {
			ip.Form.CategoryID = c
		}
		if v, err := strconv.ParseInt(f.Get("version"), 10, 64); err == nil && status != http.StatusConflict {
			ip.Form.Version = v
		}
		ip.Attached = map[int64]bool{}
		for _, v := range f["group"] {
			if gid, err := strconv.ParseInt(v, 10, 64); err == nil {
				ip.Attached[gid] = true
			}
		}
	}
	s.render(w, r, status, "admin_menu_item.html", ip)
}

// tickSet is a set of strings, for the ticked boxes of a form.
func tickSet(vs []string) map[string]bool {
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// editFunc performs one edit of the restaurant's menu with the posted form
// and returns where to send the browser afterwards.
type editFunc func(ctx context.Context, st *staffView, id int64, f url.Values) (back string, err error)

// menuAction wraps an edit: it checks {id} (when the route has one) and the
// role, reads a bounded form, runs the edit, tells the caches, and
// redirects back with "saved". An edit refused for its input re-renders the
// editor with the reason (422 invalid, 409 conflict); a missing or foreign
// id is the plain 404.
func (s *server) menuAction(hasID bool, fn editFunc) staffHandler {
	return func(w http.ResponseWriter, r *http.Request, st *staffView) {
		var id int64
		if hasID {
			var ok bool
			if id, ok = pathID(r); !ok {
				s.notFound(w, r)
				return
			}
		}
		if !s.canEditMenu(w, r, st) {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
			return
		}
		back, err := fn(r.Context(), st, id, r.PostForm)
		if err != nil {
			s.menuFail(w, r, st, err)
			return
		}
		s.menuChanged(r.Context(), st.Restaurant.ID)
		http.Redirect(w, r, withSaved(back), http.StatusSeeOther)
	}
}

func (s *server) menuChanged(ctx context.Context, rid int64) {
	if s.MenuChanged != nil {
		s.MenuChanged(ctx, rid)
	}
}

// withSaved adds saved=1 to a local URL, before its fragment.
func withSaved(back string) string {
	path, frag, _ := strings.Cut(back, "#")
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	out := path + sep + "saved=1"
	if frag != "" {
		out += "#" + frag
	}
	return out
}

// menuFail shows why an edit was refused, on the page the form was on.
func (s *server) menuFail(w http.ResponseWriter, r *http.Request, st *staffView, err error) {
	var status int
	switch ladle.ErrorKind(err) {
	case ladle.KindInvalid, ladle.KindUnprocessable:
		status = http.StatusUnprocessableEntity
	case ladle.KindConflict:
		status = http.StatusConflict
	case ladle.KindTooLarge:
		status = http.StatusRequestEntityTooLarge
	default:
		s.fail(w, r, err) // not found (404), outages, bugs
		return
	}
	msg := editMessage(err)
	if strings.Contains(r.URL.Path, "/menu/items/") {
		if id, ok := pathID(r); ok {
			s.renderItemEditor(w, r, st, id, status, msg)
			return
		}
	}
	p, lerr := s.loadEditor(r.Context(), st)
	if lerr != nil {
		s.fail(w, r, lerr)
		return
	}
	p.Error = msg
	if r.URL.Path == menuURL(st.Restaurant.ID)+"/items" {
		p.NewItem.CategoryID, _ = strconv.ParseInt(r.PostForm.Get("category_id"), 10, 64)
		p.NewItem.Name, p.NewItem.Price = r.PostForm.Get("name"), r.PostForm.Get("price")
	}
	s.render(w, r, status, "admin_menu.html", p)
}

// editMessage turns a refusal into one sentence for the editor.
func editMessage(err error) string {
	var e *ladle.Error
	if !errors.As(err, &e) {
		return "The change was not saved."
	}
	if e.Code == ladle.CodeItemChanged {
		return "Not saved: someone else changed this item after you opened it. Your changes are still in the form; " +
			"the photo and fields beside it show what is saved now. Save again to replace their change with yours."
	}
	msg := sentence(e.Message)
	if e.Code == ladle.CodeValidation && len(e.Fields) > 0 {
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fieldLabel(k)+" "+e.Fields[k])
		}
		msg = sentence(strings.Join(parts, "; "))
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return "Not saved: " + msg
}

func fieldLabel(k string) string {
	switch k {
	case "category_id":
		return "the category"
	}
	return strings.ReplaceAll(k, "_", " ")
}
