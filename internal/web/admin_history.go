package web

import (
	"context"
	"encoding/csv"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
)

// historyRoutes are the order history (every staff role) and its CSV
// export (owners and managers: it is every customer's contact at once).
var historyRoutes = []staffRoute{
	{"GET /admin/r/{rid}/history", func(s *server) staffHandler { return s.handleHistory }},
	{"GET /admin/r/{rid}/history.csv", func(s *server) staffHandler { return s.handleHistoryCSV }},
}

func init() { staffRoutes = append(staffRoutes, historyRoutes...) }

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
	"money64":    func(v int64) ladle.Money { return ladle.Money(v) },
	"orderURL":   orderURL,
	"svgChart":   svgChart, // admin_reports.go
	"dict2": func(b []ladle.ReportBucket, currency string) bucketTable {
		return bucketTable{Buckets: b, Currency: currency}
	},
}

// bucketTable is what the "report_table" template reads.
type bucketTable struct {
	Buckets  []ladle.ReportBucket
	Currency string
}

const (
	historyPageSize = 50
	// maxRangeDays bounds a history or report range.
	maxRangeDays = 366
	// exportBatch is how many orders the CSV export reads per query; its
	// memory is one batch, whatever the range holds.
	exportBatch = 500
	// exportTimeout bounds one export (it is exempt from the page deadline).
	exportTimeout = 5 * time.Minute
)

// rangeForm is a date range as typed (YYYY-MM-DD, both days included, in
// the restaurant's time zone), with a search and a status filter.
type rangeForm struct {
	From, To, Q, Status string
}

// values encodes the form for links (pages, export).
func (f rangeForm) values() url.Values {
	v := url.Values{"from": {f.From}, "to": {f.To}}
	if f.Q != "" {
		v.Set("q", f.Q)
	}
	if f.Status != "" {
		v.Set("status", f.Status)
	}
	return v
}

// parseRange reads the range of a history or report request. Without
// dates it is the last `days` days, today included. It returns [from, to)
// in UTC, from the local midnights of the first day and of the day after
// the last one, so a day is 23 or 25 hours across a DST change.
func parseRange(q url.Values, loc *time.Location, now time.Time, days int) (f rangeForm, from, to time.Time, errs map[string]string) {
	f = rangeForm{From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to")),
		Q: strings.TrimSpace(q.Get("q")), Status: q.Get("status")}
	errs = map[string]string{}
	today := now.In(loc)
	if f.To == "" {
		f.To = today.Format("2006-01-02")
	}
	if f.From == "" {
		f.From = today.AddDate(0, 0, 1-days).Format("2006-01-02")
	}
	fd, err := time.ParseInLocation("2006-01-02", f.From, loc)
	if err != nil {
		errs["from"] = "Enter a date as YYYY-MM-DD."
	}
	td, err := time.ParseInLocation("2006-01-02", f.To, loc)
	if err != nil {
		errs["to"] = "Enter a date as YYYY-MM-DD."
	}
	if len(errs) == 0 {
		from = time.Date(fd.Year(), fd.Month(), fd.Day(), 0, 0, 0, 0, loc).UTC()
		to = time.Date(td.Year(), td.Month(), td.Day()+1, 0, 0, 0, 0, loc).UTC()
		switch {
		case !to.After(from):
			errs["to"] = "The last day must not be before the first."
		case to.Sub(from) > time.Duration(maxRangeDays+1)*24*time.Hour:
			errs["to"] = "Choose at most " + strconv.Itoa(maxRangeDays) + " days."
		}
	}
	if len(f.Q) > 200 {
		errs["q"] = "Search for at most 200 characters."
	}
	if f.Status != "" {
		if _, ok := statusLabels[ladle.OrderStatus(f.Status)]; !ok {
			errs["status"] = "Choose a status from the list."
		}
	}
	return f, from, to, errs
}

// query is the store query of a valid form.
func (f rangeForm) query(from, to time.Time) ladle.OrderQuery {
	q := ladle.OrderQuery{From: from, To: to, Search: f.Q}
	if f.Status != "" {
		q.Statuses = []ladle.OrderStatus{ladle.OrderStatus(f.Status)}
	}
	return q
}

type historyPage struct {
	page
	Restaurant *ladle.Restaurant
	Loc        *time.Location
	Form       rangeForm
	Errors     map[string]string
	Orders     []ladle.Order
	Statuses   []ladle.OrderStatus
	// Next is the next page's URL, "" on the last; First is the first
	// page's, "" on it.
	Next, First string
	Export      string // the CSV of the same range and search
	CanExport   bool
}

var allStatuses = []ladle.OrderStatus{ladle.StatusPlaced, ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady,
	ladle.StatusCompleted, ladle.StatusCancelled, ladle.StatusPendingPayment, ladle.StatusPaymentFailed}

// handleHistory lists the restaurant's orders of a date range (in its time
// zone), newest first, 50 a page; a search narrows them (ladle.OrderQuery).
// A bad date keeps what was typed and says what is wrong (400).
func (s *server) handleHistory(w http.ResponseWriter, r *http.Request, st *staffView) {
	rest := st.Restaurant
	loc := rest.Location()
	f, from, to, errs := parseRange(r.URL.Query(), loc, s.Now(), 7)
	base := "/admin/r/" + itoa(rest.ID) + "/history"
	p := historyPage{page: page{Title: "Order history · " + rest.Name, Staff: st}, Restaurant: rest, Loc: loc,
		Form: f, Errors: errs, Statuses: allStatuses, CanExport: st.Role.CanEditMenu()}
	if len(errs) > 0 {
		s.render(w, r, http.StatusBadRequest, "admin_history.html", p)
		return
	}
	q := f.query(from, to)
	q.Limit = historyPageSize
	if a := r.URL.Query().Get("after"); a != "" {
		c, ok := ladle.ParseOrderCursor(a)
		if !ok {
			p.Errors["after"] = "That page link is broken; start again from the first page."
			s.render(w, r, http.StatusBadRequest, "admin_history.html", p)
			return
		}
		q.After = &c
		p.First = base + "?" + f.values().Encode()
	}
	orders, err := s.Store.SearchOrders(r.Context(), rest.ID, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Orders = orders
	if len(orders) == historyPageSize {
		last := orders[len(orders)-1]
		v := f.values()
		v.Set("after", ladle.OrderCursor{CreatedAt: last.CreatedAt, ID: last.ID}.String())
		p.Next = base + "?" + v.Encode()
	}
	p.Export = base + ".csv?" + f.values().Encode()
	s.render(w, r, http.StatusOK, "admin_history.html", p)
}

// csvHeader is the export's first row. refunded is what was refunded of
// the order so far (whenever it happened; the reports count refunds on
// the day they succeeded), net its total minus that; they come last so
// the earlier columns keep their places.
var csvHeader = []string{"number", "created", "status", "customer", "email", "phone", "pickup", "items",
	"subtotal", "discount", "tax", "tip", "total", "currency", "coupon", "payment_method", "payment_status", "order_id",
	"refunded", "net"}

// handleHistoryCSV streams the orders of the range and search as CSV,
// newest first: it reads them exportBatch at a time by keyset and flushes
// each batch to the client, so its memory is one batch whatever the range
// holds. Cells that a spreadsheet would run as a formula are defused
// (csvCell). The export is owners' and managers'.
func (s *server) handleHistoryCSV(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !st.Role.CanEditMenu() {
		s.errorPage(w, r, http.StatusForbidden, "Not allowed", "Exporting orders needs the owner or manager role.")
		return
	}
	rest := st.Restaurant
	loc := rest.Location()
	f, from, to, errs := parseRange(r.URL.Query(), loc, s.Now(), 7)
	if len(errs) > 0 {
		s.errorPage(w, r, http.StatusBadRequest, "Bad range", "The export's dates are not valid: go back to the history and choose them again.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), exportTimeout)
	defer cancel()
	q := f.query(from, to)
	q.Limit = exportBatch
	// The first batch is read before anything is written, so a database
	// that is down is still a clean 503 page.
	batch, err := s.Store.SearchOrders(ctx, rest.ID, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="orders-`+rest.Slug+`-`+f.From+`-to-`+f.To+`.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	cw := csv.NewWriter(w)
	flusher, _ := w.(http.Flusher)
	_ = cw.Write(csvHeader)
	row := make([]string, len(csvHeader))
	for {
		for i := range batch {
			csvOrderRow(row, &batch[i], loc)
			if err := cw.Write(row); err != nil {
				return // the client went away
			}
		}
		cw.Flush()
		if cw.Error() != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		if len(batch) < exportBatch {
			return
		}
		last := batch[len(batch)-1]
		q.After = &ladle.OrderCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		if batch, err = s.Store.SearchOrders(ctx, rest.ID, q); err != nil {
			// Headers are gone: end the body with a line that says the
			// file is incomplete, instead of a silent truncation.
			s.Logger.Warn("web: export interrupted", "restaurant", rest.ID, "err", err)
			_ = cw.Write([]string{"# export interrupted: the file is incomplete"})
			cw.Flush()
			return
		}
	}
}

// csvOrderRow fills row (len(csvHeader)) with one order.
func csvOrderRow(row []string, o *ladle.Order, loc *time.Location) {
	pickup := "ASAP"
	if o.Fulfillment.Time != nil {
		pickup = o.Fulfillment.Time.In(loc).Format("2006-01-02 15:04")
	}
	var items strings.Builder
	for i, l := range o.Lines {
		if i > 0 {
			items.WriteString("; ")
		}
		items.WriteString(strconv.Itoa(l.Quantity) + "x " + l.Name)
		if len(l.Modifiers) > 0 {
			items.WriteString(" (")
			for j, m := range l.Modifiers {
				if j > 0 {
					items.WriteString(", ")
				}
				items.WriteString(m.Name)
			}
			items.WriteString(")")
		}
		if l.Note != "" {
			items.WriteString(" [note: " + l.Note + "]")
		}
	}
	num := ""
	if o.Number > 0 {
		num = strconv.FormatInt(o.Number, 10)
	}
	vals := []string{num, o.CreatedAt.In(loc).Format("2006-01-02 15:04:05"), string(o.Status), o.Customer.Name,
		o.Customer.Email, o.Customer.Phone, pickup, items.String(),
		decimal(o.Subtotal, o.Currency), decimal(o.Discount, o.Currency), decimal(o.Tax, o.Currency),
		decimal(o.Tip, o.Currency), decimal(o.Total, o.Currency), o.Currency, o.CouponCode, o.PaymentMethod,
		o.PaymentStatus, o.ID, decimal(o.Refunded, o.Currency), decimal(o.Total-o.Refunded, o.Currency)}
	for i, v := range vals {
		row[i] = csvCell(v)
	}
}

// csvCell defuses a cell a spreadsheet would run as a formula (OWASP "CSV
// injection"): one that starts with =, +, -, @, a tab or a carriage return
// gets a leading apostrophe, which spreadsheets show as text.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// decimal writes minor units as a plain decimal in the currency's digits
// ("1234.50"), for spreadsheets.
func decimal(m ladle.Money, code string) string {
	digits := currencyInfo(code).Digits
	neg := m < 0
	v := int64(m)
	if neg {
		v = -v
	}
	s := strconv.FormatInt(v, 10)
	if digits > 0 {
		if len(s) <= digits {
			s = strings.Repeat("0", digits-len(s)+1) + s
		}
		s = s[:len(s)-digits] + "." + s[len(s)-digits:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
