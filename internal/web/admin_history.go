package web

import (
	"html/template"
	"time"

	"github.com/ladle-dev/ladle"
)

// backofficeFuncs are the template functions of the history, order,
// report and coupon pages.
var backofficeFuncs = template.FuncMap{
	// at formats t in loc with its date: "Tue Dec 1 2026, 3:04 PM".
	"at": func(t time.Time, loc *time.Location) string { return t.In(loc).Format("Mon Jan 2 2006, 3:04 PM") },
	// atPtr is at for an optional time; "" for nil.
	"atPtr": func(t *time.Time, loc *time.Location) string {
		if t == nil {
			return ""
		}
		return t.In(loc).Format("Mon Jan 2 2006, 3:04 PM")
	},
	"orderTitle": orderTitle,
	"orderURL":   orderURL,
	"statusOf":   func(s string) ladle.OrderStatus { return ladle.OrderStatus(s) },
}
