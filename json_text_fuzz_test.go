package ladle_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ladle-dev/ladle"
)

// FuzzCheckJSONText checks the raw-body scan against an independent
// decoder: jsontext (the encoding/json/v2 tokenizer) refuses invalid UTF-8
// and lone surrogates in strings by default. For every document that
// encoding/json accepts, CheckJSONText must refuse exactly the ones
// jsontext refuses. The seeds are replayed by every `go test`.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{
		`{"a":"b"}`, `{"a":"\ud800"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\udc00\ud800"}`, `{"a":["x","\ud800\u0041"]}`,
		"{\"a\":\"\xff\"}", "{\"\xc3\x28\":1}", "[\"\xed\xa0\x80\"]", "\"\xc0\xaf\"", `{"a\"":"\\ud800"}`,
		`{"a":"\ufffd"}`, "{\"a\":\"\xef\xbf\xbd\"}", `[1,{"b":[true,null,"\u0000"]}]`, `"\ud800\ud800\udc00"`, `{"a":1,"a":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		_, ok := ladle.CheckJSONText(raw)
		dec := jsontext.NewDecoder(bytes.NewReader(raw), jsontext.AllowDuplicateNames(true))
		var strict error
		for {
			if _, err := dec.ReadToken(); err != nil {
				if !errors.Is(err, io.EOF) {
					strict = err
				}
				break
			}
		}
		if ok != (strict == nil) {
			t.Fatalf("CheckJSONText ok=%v, jsontext: %v, for %q", ok, strict, raw)
		}
	})
}
