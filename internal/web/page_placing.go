package web

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/ladle-dev/ladle"
)

// placingView is what the "still placing" page says.
type placingView struct {
	Heading, Message string
	// Retry is the delay in seconds before the page re-posts by itself;
	// 0 leaves it to the guest's button.
	Retry int
}

// placingPage re-posts the very same checkout form (same Idempotency-Key,
// same fields), so the retry joins the first attempt instead of starting a
// new one.
type placingPage struct {
	page
	placingView
	Restaurant *ladle.Restaurant
	Action     string
	Fields     []hiddenField
	Attempt    int
}

type hiddenField struct{ Name, Value string }

func (s *server) renderPlacing(w http.ResponseWriter, r *http.Request, status int, rest *ladle.Restaurant, v placingView) {
	attempt, _ := strconv.Atoi(r.PostFormValue("attempt"))
	attempt++
	if attempt > maxAutoRetries {
		v.Retry = 0
		v.Message += " If this keeps happening, open the restaurant's page again: your order will not be placed twice."
	}
	var fields []hiddenField
	names := make([]string, 0, len(r.PostForm))
	for k := range r.PostForm {
		if k != "attempt" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range r.PostForm[k] {
			fields = append(fields, hiddenField{k, v})
		}
	}
	s.render(w, r, status, "placing.html", placingPage{
		page:        page{Title: v.Heading},
		placingView: v,
		Restaurant:  rest,
		Action:      "/r/" + rest.Slug + "/checkout",
		Fields:      fields,
		Attempt:     attempt,
	})
}
