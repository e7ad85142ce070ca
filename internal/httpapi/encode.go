package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/problem"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, d Deps, err error) {
	problem.Write(w, r, d.Logger, err)
}

// decode reads exactly one JSON object of at most MaxBodyBytes into v,
// rejecting unknown fields, trailing data and non-JSON content types, each
// with a clear invalid_json (or 413) problem, and any string that is not
// valid UTF-8 (a lone surrogate escape included) with validation_failed
// naming it: encoding/json would quietly turn those into U+FFFD.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "Content-Type must be application/json")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return ladle.Errorf(ladle.KindTooLarge, "body_too_large", "the body is larger than %d bytes", MaxBodyBytes)
		}
		return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "the body could not be read")
	}
	return decodeJSON(raw, v)
}

// decodeJSON is decode after the body is read (the fuzz target).
func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "the body is empty")
		case errors.As(err, &syn):
			return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "malformed JSON at byte %d", syn.Offset)
		case errors.As(err, &typ):
			return &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeInvalidJSON,
				Message: fmt.Sprintf("%s must be a %s", typ.Field, typ.Type),
				Fields:  map[string]string{typ.Field: "must be a " + typ.Type.String()}}
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "%s", strings.ToValidUTF8(strings.TrimPrefix(err.Error(), "json: "), "\ufffd"))
		default:
			return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "the body is not valid JSON")
		}
	}
	if dec.More() {
		return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "the body must hold exactly one JSON object")
	}
	if path, ok := ladle.CheckJSONText(raw); !ok {
		if path == "" {
			path = "body"
		}
		return &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation,
			Message: path + " is not valid UTF-8", Fields: map[string]string{path: "is not valid UTF-8"}}
	}
	return nil
}
