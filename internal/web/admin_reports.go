package web

import (
	"fmt"
	"html"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
)

// reportRoutes: the sales report, for owners and managers.
var reportRoutes = []staffRoute{
	{"GET /admin/r/{rid}/reports", func(s *server) staffHandler { return s.handleReports }},
}

func init() { staffRoutes = append(staffRoutes, reportRoutes...) }

type reportsPage struct {
	page
	Restaurant *ladle.Restaurant
	Loc        *time.Location
	Form       rangeForm
	Errors     map[string]string
	Report     *ladle.Report
	Currency   string
	Export     string
}

// handleReports shows the sales of a date range (default: the last 30
// days) in the restaurant's time zone: gross, refunded and net revenue
// (ladle.Report: refunds count on the day they succeeded), orders and net
// revenue per day and per hour of the day as charts (server-side SVG, each with its table), the
// average ticket, the top items and the coupons used.
func (s *server) handleReports(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !st.Role.CanEditMenu() {
		s.errorPage(w, r, http.StatusForbidden, "Not allowed", "Reports need the owner or manager role.")
		return
	}
	rest := st.Restaurant
	loc := rest.Location()
	f, from, to, errs := parseRange(r.URL.Query(), loc, s.Now(), 30)
	delete(errs, "status") // the report has no status filter
	f.Q, f.Status = "", ""
	p := reportsPage{page: page{Title: "Reports · " + rest.Name, Staff: st}, Restaurant: rest, Loc: loc, Form: f,
		Errors: errs, Currency: rest.Currency}
	if len(errs) > 0 {
		s.render(w, r, http.StatusBadRequest, "admin_reports.html", p)
		return
	}
	slots, items, coupons, err := s.Store.SalesReport(r.Context(), rest.ID, from, to, 10)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Report = ladle.BuildReport(loc, from, to, slots, items, coupons)
	p.Export = "/admin/r/" + itoa(rest.ID) + "/history.csv?" + f.values().Encode()
	s.render(w, r, http.StatusOK, "admin_reports.html", p)
}

// chart geometry (SVG user units; the SVG scales to its container).
const (
	chartW, chartH          = 720, 240
	chartLeft, chartBottom  = 56, 28
	chartTop, chartMaxLabel = 12, 12
)

// svgChart draws buckets as a bar chart of "orders", "revenue" (gross) or
// "net" (in currency; a net below zero draws no bar), as inline SVG: no script, no external service. Labels are
// thinned to at most a dozen; the page shows the same numbers as a table
// for screen readers and for exact values.
func svgChart(buckets []ladle.ReportBucket, metric, currency, title string) template.HTML {
	val := func(b ladle.ReportBucket) int64 {
		switch metric {
		case "revenue":
			return int64(b.Revenue)
		case "net":
			return max(int64(b.Net), 0)
		}
		return int64(b.Orders)
	}
	label := func(v int64) string {
		if metric != "orders" {
			return formatMoney(ladle.Money(v), currency)
		}
		return fmt.Sprint(v)
	}
	var peak int64
	for _, b := range buckets {
		peak = max(peak, val(b))
	}
	top := int64(niceCeil(float64(peak))) // admin_system.go
	if peak == 0 {
		top = 0
	}
	plotW, plotH := float64(chartW-chartLeft-8), float64(chartH-chartTop-chartBottom)
	var b strings.Builder
	id := "chart-" + strings.ToLower(strings.NewReplacer(" ", "-", "·", "").Replace(title))
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="%s" preserveAspectRatio="xMidYMid meet">`,
		chartW, chartH, html.EscapeString(id))
	fmt.Fprintf(&b, `<title id="%s">%s</title>`, html.EscapeString(id), html.EscapeString(title))
	// Axis and gridlines at 0, half and top.
	for _, frac := range []float64{0, .5, 1} {
		y := float64(chartTop) + plotH*(1-frac)
		fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, chartLeft, y, chartW-8, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, chartLeft-6, y+4,
			html.EscapeString(label(int64(float64(top)*frac))))
	}
	n := len(buckets)
	if n > 0 && top > 0 {
		slot := plotW / float64(n)
		barW := max(slot*0.72, 1)
		every := (n + chartMaxLabel - 1) / chartMaxLabel
		for i, bk := range buckets {
			h := plotH * float64(val(bk)) / float64(top)
			x := float64(chartLeft) + slot*float64(i) + (slot-barW)/2
			cls := "bar"
			if i%2 == 1 && n <= 31 {
				cls = "bar bar-alt"
			}
			fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s</title></rect>`,
				cls, x, float64(chartTop)+plotH-h, barW, h, html.EscapeString(bk.Label), html.EscapeString(label(val(bk))))
			if i%every == 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x+barW/2, chartH-8,
					html.EscapeString(shortLabel(bk.Label)))
			}
		}
	} else {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">No sales in this range</text>`, chartW/2, chartH/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every interpolated string above is escaped
}

// shortLabel shortens a day label ("2030-05-17") to "05-17"; hours stay.
func shortLabel(l string) string {
	if len(l) == len("2006-01-02") {
		return l[5:]
	}
	return l
}
