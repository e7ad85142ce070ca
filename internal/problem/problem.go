// Package problem renders errors as RFC 9457 problem details
// (application/problem+json). It holds the one table that maps a
// ladle.Kind to an HTTP status; every HTTP surface writes errors through it.
package problem

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/ladle-dev/ladle"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

var statuses = map[ladle.Kind]int{
	ladle.KindInternal:         http.StatusInternalServerError,
	ladle.KindInvalid:          http.StatusBadRequest,
	ladle.KindUnprocessable:    http.StatusUnprocessableEntity,
	ladle.KindNotFound:         http.StatusNotFound,
	ladle.KindConflict:         http.StatusConflict,
	ladle.KindUnauthorized:     http.StatusUnauthorized,
	ladle.KindForbidden:        http.StatusForbidden,
	ladle.KindPaymentRequired:  http.StatusPaymentRequired,
	ladle.KindTooLarge:         http.StatusRequestEntityTooLarge,
	ladle.KindRateLimited:      http.StatusTooManyRequests,
	ladle.KindUnavailable:      http.StatusServiceUnavailable,
	ladle.KindMethodNotAllowed: http.StatusMethodNotAllowed,
}

// Status returns the HTTP status for err.
func Status(err error) int { return statuses[ladle.ErrorKind(Classify(err))] }

// Classify returns err, except that an unclassified error caused by a
// deadline (or the client going away) becomes ladle.Unavailable: work cut
// short by a bound we set is a dependency too slow for it, which a retry may
// get past, not a bug. Adapters classify their own errors; this catches a
// deadline that reaches the edge unclassified.
func Classify(err error) error {
	if err != nil && ladle.ErrorKind(err) == ladle.KindInternal &&
		(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return ladle.Unavailable(err, 1, "the server could not finish this in time; retry shortly")
	}
	return err
}

// Document is a problem details object. Code is Ladle's stable error code;
// Errors holds per-field validation messages; Extra members (for example
// order_id of a possible duplicate) are flattened into the object.
type Document struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Detail string            `json:"detail,omitempty"`
	Code   string            `json:"code"`
	Errors map[string]string `json:"errors,omitempty"`
	Extra  map[string]any    `json:"-"`
}

// MarshalJSON flattens Extra into the object, as RFC 9457 extension members.
func (d Document) MarshalJSON() ([]byte, error) {
	type plain Document
	b, err := json.Marshal(plain(d))
	if err != nil || len(d.Extra) == 0 {
		return b, err
	}
	m := make(map[string]any, len(d.Extra)+7)
	for k, v := range d.Extra {
		m[k] = v
	}
	var base map[string]any
	if err := json.Unmarshal(b, &base); err != nil {
		return nil, err
	}
	for k, v := range base { // standard members win over extras of the same name
		m[k] = v
	}
	return json.Marshal(m)
}

// From builds the document for err. Errors that are not *ladle.Error are
// internal: their text is never shown to the client.
func From(err error) Document {
	err = Classify(err)
	status := Status(err)
	var e *ladle.Error
	if !errors.As(err, &e) || e.Kind == ladle.KindInternal {
		return Document{Type: "about:blank", Title: http.StatusText(http.StatusInternalServerError),
			Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error"}
	}
	return Document{
		Type:   "https://ladle.dev/problems/" + e.Code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: e.Message,
		Code:   e.Code,
		Errors: e.Fields,
		Extra:  e.Extra,
	}
}

// Write writes err as a problem response, logging internal errors (their
// detail goes to the log, not to the client).
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	err = Classify(err)
	d := From(err)
	if d.Status >= 500 && ladle.ErrorKind(err) == ladle.KindInternal {
		log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if d.Status >= 500 && ladle.ErrorKind(err) == ladle.KindUnavailable {
		log.Warn("unavailable", "method", r.Method, "path", r.URL.Path, "code", d.Code, "err", err)
	}
	// Every 503 and 429 says when to come back (1 s unless the error says).
	if ra, ok := d.Extra["retry_after"].(int); ok {
		w.Header().Set("Retry-After", strconv.Itoa(ra))
	} else if d.Status == http.StatusServiceUnavailable || d.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(d)
}
