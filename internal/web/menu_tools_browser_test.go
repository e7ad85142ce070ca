package web

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ladle-dev/ladle/internal/testenv"
)

// TestBrowserMenuSearchFiltersAndNav: search narrows the items (sections
// left empty hide, with their links), a dietary filter keeps only items
// with the tag, nothing matching says so, and the section nav marks the
// section scrolled to.
func TestBrowserMenuSearchFiltersAndNav(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "browser test")
	ctx := browser(t)
	e := newEnv(t, "sqlite", func(d *Deps) { d.ImageURL = nil })
	f := e.fx
	fries := *f.Fries
	fries.Dietary = []string{"vegan", "gluten_free"}
	if err := e.store.UpdateItem(context.Background(), &fries); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, chromedp.EmulateViewport(1280, 700), chromedp.Navigate(e.srv.URL+"/r/"+f.Restaurant.Slug),
		chromedp.WaitVisible(chromedp.CSS(`[data-menu-search]`)))
	visible := func() string {
		t.Helper()
		return eval[string](t, ctx, `[...document.querySelectorAll('[data-item]')].filter(li => !li.hidden)
			.map(li => li.querySelector('.item-name').textContent).join(',')`)
	}
	all := visible()
	if all != "Burger,Veggie Burger,Fries,Soda" {
		t.Fatalf("items shown %q", all)
	}
	if got := eval[string](t, ctx, `[...document.querySelectorAll('[data-diet]')].map(b => b.textContent).join(',')`); got != "Vegan,Gluten-free" {
		t.Errorf("filters offered %q, want only the tags on this menu", got)
	}

	run(t, ctx, chromedp.SendKeys(chromedp.CSS(`[data-menu-search]`), "BURG"))
	if got := visible(); got != "Burger,Veggie Burger" {
		t.Errorf("search 'BURG' shows %q", got)
	}
	if hidden := eval[bool](t, ctx, `document.querySelector('#cat-`+itoa(f.Sides.ID)+`').hidden && document.querySelector('[data-nav-for="cat-`+itoa(f.Sides.ID)+`"]').hidden`); !hidden {
		t.Error("the section with no match, or its link, is still shown")
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`[data-diet="vegan"]`)))
	if got := visible(); got != "" || eval[bool](t, ctx, `document.querySelector('[data-no-match]').hidden`) {
		t.Errorf("'BURG' and vegan: shows %q, or no 'No dishes match'", got)
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`[data-clear-filters]`)))
	if got := visible(); got != all || eval[string](t, ctx, `document.querySelector('[data-diet="vegan"]').getAttribute('aria-pressed')`) != "false" {
		t.Errorf("after clearing: %q", got)
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`[data-diet="vegan"]`)))
	if got := visible(); got != "Fries" {
		t.Errorf("vegan shows %q", got)
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`[data-diet="vegan"]`)))

	// The nav follows the scroll.
	current := func() string {
		return eval[string](t, ctx, `(document.querySelector('[data-category-nav] [aria-current]') || {textContent: ''}).textContent`)
	}
	// The filters' changes reach the nav on the next animation frame, so
	// wait for it rather than read it at once.
	eval[bool](t, ctx, `window.scrollTo(0, 0), true`)
	waitFor(t, func() bool { return current() == f.Mains.Name })
	run(t, ctx, chromedp.EmulateViewport(1280, 400))
	eval[bool](t, ctx, `document.querySelector('#cat-`+itoa(f.Sides.ID)+`').scrollIntoView(), true`)
	waitFor(t, func() bool { return current() == f.Sides.Name })
}
