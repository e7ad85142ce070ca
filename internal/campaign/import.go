package campaign

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
)

// ImportReport is what an import did.
type ImportReport struct {
	Imported  int64       `json:"imported"`  // customers created
	Updated   int64       `json:"updated"`   // customers changed
	Unchanged int64       `json:"unchanged"` // rows that matched what was stored
	Rejected  []Rejection `json:"rejected"`  // the first MaxRejections rows refused
	// RejectedCount counts every refused row, listed or not.
	RejectedCount int64 `json:"rejected_count"`
}

// Rejection is one refused row: its line number in the file (the header is
// line 1) and why.
type Rejection struct {
	Row    int64  `json:"row"`
	Reason string `json:"reason"`
}

// MaxRejections bounds the rejections listed in a report; the rest are
// only counted, so a file of garbage cannot make the report huge.
const MaxRejections = 1000

// importBatch is how many rows go into one transaction.
const importBatch = 500

// Import reads a CSV of customers (header email,name,marketing_opt_in and
// optionally phone, in any order) from r and stores them batch by batch as
// it reads: the file is never held in memory, only a 8-byte hash per email
// seen (to refuse a second row for the same address, which would otherwise
// make the import depend on row order and break idempotence). Each row goes
// through the checkout's input policy; a bad row is rejected with its line
// number and reason and the import goes on. Importing the same file twice
// changes nothing the second time (every row is unchanged).
//
// A malformed CSV (bad quoting) or a bad header stops the import with a
// validation error; the rows before it are kept.
func Import(ctx context.Context, store ladle.CampaignStore, restaurantID int64, r io.Reader, now time.Time) (*ImportReport, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, invalid("csv", "is empty; the first line must be the header email,name,marketing_opt_in[,phone]")
	}
	if err != nil {
		return nil, invalid("csv", "cannot be read: "+err.Error())
	}
	col := map[string]int{"email": -1, "name": -1, "marketing_opt_in": -1, "phone": -1}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, known := col[h]; !known {
			return nil, invalid("csv", fmt.Sprintf("header has an unknown column %q (want email,name,marketing_opt_in[,phone])", h))
		}
		if col[h] >= 0 {
			return nil, invalid("csv", fmt.Sprintf("header names %q twice", h))
		}
		col[h] = i
	}
	for _, need := range []string{"email", "name", "marketing_opt_in"} {
		if col[need] < 0 {
			return nil, invalid("csv", "header lacks the column "+need+" (want email,name,marketing_opt_in[,phone])")
		}
	}
	rep := &ImportReport{Rejected: []Rejection{}}
	reject := func(row int64, reason string) {
		rep.RejectedCount++
		if len(rep.Rejected) < MaxRejections {
			rep.Rejected = append(rep.Rejected, Rejection{Row: row, Reason: reason})
		}
	}
	seed := maphash.MakeSeed()
	seen := map[uint64]int64{}
	batch := make([]ladle.CustomerImport, 0, importBatch)
	flush := func(ctx context.Context) error {
		if len(batch) == 0 {
			return nil
		}
		out, err := store.ImportCustomers(ctx, restaurantID, batch, now)
		if err != nil {
			return err
		}
		for _, o := range out {
			switch o {
			case ladle.ImportCreated:
				rep.Imported++
			case ladle.ImportUpdated:
				rep.Updated++
			default:
				rep.Unchanged++
			}
		}
		batch = batch[:0]
		return nil
	}
	field := func(rec []string, name string) string {
		if i := col[name]; i >= 0 && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				// The body failed (the client went away, was too slow, or
				// sent too much): keep what was read, say where it stopped.
				// A server cancels the request's context when its body
				// fails: the rows read before still get a bounded moment.
				line, _ := cr.FieldPos(0)
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				if ferr := flush(fctx); ferr != nil {
					return nil, ferr
				}
				return rep, &BodyError{Line: int64(line), Err: err}
			}
			if ferr := flush(ctx); ferr != nil {
				return nil, ferr
			}
			return rep, invalid("csv", fmt.Sprintf("line %d cannot be parsed: %v", pe.Line, pe.Err))
		}
		line, _ := cr.FieldPos(0)
		row := int64(line)
		if len(rec) != len(header) {
			reject(row, fmt.Sprintf("has %d fields, the header %d", len(rec), len(header)))
			continue
		}
		c, reason := parseRow(field(rec, "email"), field(rec, "name"), field(rec, "marketing_opt_in"), field(rec, "phone"))
		if reason != "" {
			reject(row, reason)
			continue
		}
		h := maphash.String(seed, c.Email)
		if first, dup := seen[h]; dup {
			reject(row, fmt.Sprintf("email repeats line %d", first))
			continue
		}
		seen[h] = row
		batch = append(batch, c)
		if len(batch) == importBatch {
			if err := flush(ctx); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(ctx); err != nil {
		return nil, err
	}
	return rep, nil
}

// BodyError is returned when the body itself could not be read to its end
// (as opposed to a CSV that does not parse): the rows before Line were
// stored, and the report says how. Err is the reader's error
// (http.MaxBytesError for a body over its bound).
type BodyError struct {
	Line int64
	Err  error
}

func (e *BodyError) Error() string {
	return fmt.Sprintf("campaign: import body failed near line %d: %v", e.Line, e.Err)
}

func (e *BodyError) Unwrap() error { return e.Err }

func parseRow(email, name, optIn, phone string) (ladle.CustomerImport, string) {
	cust, reason := customerPolicy(email, name, phone)
	c := ladle.CustomerImport{Email: cust.Email, Name: cust.Name, Phone: cust.Phone}
	if reason != "" {
		return c, reason
	}
	switch strings.ToLower(strings.TrimSpace(optIn)) {
	case "true":
		c.MarketingOptIn = true
	case "false":
	default:
		return c, `marketing_opt_in must be "true" or "false"`
	}
	return c, ""
}

func invalid(field, msg string) *ladle.Error {
	return &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation, Message: field + " " + msg,
		Fields: map[string]string{field: msg}}
}
