package web

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/sysstats"
)

// SystemBoard is the history behind the System page (sysstats.Board).
type SystemBoard interface {
	Points() []sysstats.Point
}

// systemRoutes are the owners' System page and the fragment it polls.
//
// What an owner may see: the consumers, their lag and the outbox are shared
// by every restaurant of the deployment, so the page shows deployment-wide
// counts only (events waiting, handlers, rates, ages), never a restaurant,
// an order or an address. Owners only: managers and staff get 403.
var systemRoutes = []staffRoute{
	{"GET /admin/r/{rid}/system", func(s *server) staffHandler { return s.handleSystem }},
	{"GET /admin/r/{rid}/system/charts", func(s *server) staffHandler { return s.handleSystemCharts }},
}

// systemWindow is how much history the charts show.
const systemWindow = 5 * time.Minute

type systemPage struct {
	page
	Restaurant *ladle.Restaurant
	Charts     template.HTML
}

func (s *server) systemAllowed(w http.ResponseWriter, r *http.Request, st *staffView) bool {
	if s.System == nil {
		s.notFound(w, r)
		return false
	}
	if st.Role != ladle.RoleOwner {
		s.errorPage(w, r, http.StatusForbidden, "Owners only", "The System page is for the restaurant's owners.")
		return false
	}
	return true
}

func (s *server) handleSystem(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !s.systemAllowed(w, r, st) {
		return
	}
	s.render(w, r, http.StatusOK, "admin_system.html", systemPage{
		page: page{Title: "System", Staff: st}, Restaurant: st.Restaurant, Charts: systemCharts(s.System.Points(), s.Now()),
	})
}

// handleSystemCharts is the charts alone, which system.js fetches every
// two seconds and swaps in.
func (s *server) handleSystemCharts(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !s.systemAllowed(w, r, st) {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(systemCharts(s.System.Points(), s.Now())))
}

// series is one line of a chart.
type series struct {
	Name   string
	Color  string
	Values []float64 // NaN: no value at that point
}

var seriesColors = []string{"#c2410c", "#1d4ed8", "#15803d", "#7c3aed", "#be185d", "#0f766e"}

// systemCharts renders the current figures and five charts as HTML with
// inline SVG (no script, no external chart library).
func systemCharts(points []sysstats.Point, now time.Time) template.HTML {
	// The consumers seen in the window, in name order.
	var names []string
	seen := map[string]bool{}
	for _, p := range points {
		for _, c := range p.Consumers {
			if !seen[c.Name] {
				seen[c.Name] = true
				names = append(names, c.Name)
			}
		}
	}
	per := func(f func(sysstats.Consumer) float64) []series {
		var out []series
		for i, n := range names {
			sr := series{Name: n, Color: seriesColors[i%len(seriesColors)], Values: make([]float64, len(points))}
			for j, p := range points {
				sr.Values[j] = math.NaN()
				for _, c := range p.Consumers {
					if c.Name == n {
						sr.Values[j] = f(c)
					}
				}
			}
			out = append(out, sr)
		}
		return out
	}
	outbox := func(f func(sysstats.Point) float64) []series {
		sr := series{Name: "outbox", Color: seriesColors[0], Values: make([]float64, len(points))}
		for j, p := range points {
			sr.Values[j] = math.NaN()
			if p.OutboxKnown {
				sr.Values[j] = f(p)
			}
		}
		return []series{sr}
	}

	var b bytes.Buffer
	b.WriteString(`<div class="system-now">`)
	if len(points) == 0 {
		b.WriteString(`<p class="muted">No figures yet: they appear within a few seconds of a worker process starting.</p>`)
	} else {
		last := points[len(points)-1]
		fmt.Fprintf(&b, `<p class="muted">%d worker %s reporting · updated %s</p>`, last.Processes,
			plural(last.Processes, "process", "processes"), template.HTMLEscapeString(last.At.UTC().Format("15:04:05 UTC")))
		b.WriteString(`<table class="mail-table system-table"><thead><tr><th>Consumer</th><th>Waiting</th><th>In flight</th><th>Workers</th><th>Busy</th><th>Processed/s</th></tr></thead><tbody>`)
		for _, c := range last.Consumers {
			fmt.Fprintf(&b, `<tr data-consumer="%s" data-workers="%d"><td>%s</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%.1f</td></tr>`,
				template.HTMLEscapeString(c.Name), c.Workers, template.HTMLEscapeString(c.Name), c.Pending, c.InFlight, c.Workers, c.Busy, c.Rate)
		}
		b.WriteString(`</tbody></table>`)
		if last.OutboxKnown {
			fmt.Fprintf(&b, `<p data-outbox-backlog="%d">Outbox: %d %s waiting to be published; the oldest for %.1f s.</p>`,
				last.OutboxBacklog, last.OutboxBacklog, plural(last.OutboxBacklog, "event", "events"), last.OutboxAge)
		}
	}
	b.WriteString(`</div><div class="system-charts">`)
	writeChart(&b, "lag", "Lag: waiting + in flight (events)", points, now, per(func(c sysstats.Consumer) float64 { return float64(c.Pending + c.InFlight) }))
	writeChart(&b, "workers", "Workers (all processes)", points, now, per(func(c sysstats.Consumer) float64 { return float64(c.Workers) }))
	writeChart(&b, "rate", "Processed per second", points, now, per(func(c sysstats.Consumer) float64 { return c.Rate }))
	writeChart(&b, "outbox", "Outbox: events waiting", points, now, outbox(func(p sysstats.Point) float64 { return float64(p.OutboxBacklog) }))
	writeChart(&b, "outbox-age", "Outbox: oldest waiting (s)", points, now, outbox(func(p sysstats.Point) float64 { return p.OutboxAge }))
	b.WriteString(`</div>`)
	return template.HTML(b.String())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// writeChart draws one line chart of the last systemWindow as inline SVG:
// time on x (now at the right edge), 0 to a rounded maximum on y. The
// figure carries data-peak and data-last of its first series, so tests (and
// anyone reading the DOM) get the numbers without parsing paths.
func writeChart(b *bytes.Buffer, id, title string, points []sysstats.Point, now time.Time, ss []series) {
	const w, h, left, top, bottom = 560.0, 140.0, 44.0, 8.0, 18.0
	peak := 0.0
	for _, s := range ss {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				peak = max(peak, v)
			}
		}
	}
	ymax := niceCeil(peak)
	first := ss
	peak0, last0 := 0.0, 0.0
	if len(first) > 0 {
		for _, v := range first[0].Values {
			if !math.IsNaN(v) {
				peak0 = max(peak0, v)
				last0 = v
			}
		}
	}
	fmt.Fprintf(b, `<figure class="chart" data-chart="%s" data-peak="%s" data-last="%s"><figcaption>%s`,
		id, strconv.FormatFloat(peak0, 'f', -1, 64), strconv.FormatFloat(last0, 'f', -1, 64), template.HTMLEscapeString(title))
	for _, s := range ss {
		fmt.Fprintf(b, ` <span class="legend"><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="%s"/></svg> %s</span>`,
			s.Color, template.HTMLEscapeString(s.Name))
	}
	fmt.Fprintf(b, `</figcaption><svg viewBox="0 0 %g %g" width="100%%" role="img" aria-label="%s">`, w, h, template.HTMLEscapeString(title))
	// Grid: 0, half, max.
	for i, frac := range []float64{0, 0.5, 1} {
		y := top + (h-top-bottom)*(1-frac)
		fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#d6d3d1" stroke-width="1"/>`, left, y, w, y)
		fmt.Fprintf(b, `<text x="%g" y="%.1f" font-size="10" text-anchor="end" fill="#57534e">%s</text>`, left-4, y+3, formatTick(ymax*frac))
		_ = i
	}
	// The window: the last five minutes, or less while the history is
	// shorter (at least one minute), so a fresh process shows its figures
	// across the chart rather than squeezed at its right edge.
	span := systemWindow
	if len(points) > 0 {
		span = min(systemWindow, max(time.Minute, now.Sub(points[0].At).Round(time.Minute)+time.Minute))
	}
	start := now.Add(-span)
	fmt.Fprintf(b, `<text x="%g" y="%g" font-size="10" fill="#57534e">−%d min</text>`, left, h-4, int(span.Minutes()))
	fmt.Fprintf(b, `<text x="%g" y="%g" font-size="10" text-anchor="end" fill="#57534e">now</text>`, w, h-4)
	for _, s := range ss {
		var pts bytes.Buffer
		flush := func() {
			if pts.Len() > 0 {
				fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" points="%s"/>`, s.Color, pts.String())
				pts.Reset()
			}
		}
		for j, v := range s.Values {
			if math.IsNaN(v) || points[j].At.Before(start) {
				flush()
				continue
			}
			x := left + (w-left)*points[j].At.Sub(start).Seconds()/span.Seconds()
			y := top + (h-top-bottom)*(1-v/ymax)
			fmt.Fprintf(&pts, "%.1f,%.1f ", min(x, w), y)
		}
		flush()
	}
	b.WriteString(`</svg></figure>`)
}

// niceCeil rounds a chart's maximum up to 1, 2 or 5 times a power of ten
// (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func formatTick(v float64) string {
	if v >= 10000 {
		return strconv.FormatFloat(v/1000, 'f', 0, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
