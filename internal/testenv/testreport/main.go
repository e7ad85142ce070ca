// Command testreport reads `go test -json` on stdin and prints what go test
// prints without -json: each package's closing line (ok, FAIL, no test
// files), build errors, and the output of every failing test. After the
// run it lists every skipped test with its reason and ends with one line:
// "N passed, N failed, N skipped".
//
// It exits non-zero when a test or a package failed, and when any test was
// skipped while LADLE_REQUIRE_SERVICES=1 (CI): a run that skipped a test
// that needs a service proves nothing about it, so it must not pass.
//
//	go test -json ./... | go run ./internal/testenv/testreport
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

func main() {
	os.Exit(report(os.Stdin, os.Stdout, os.Getenv("LADLE_REQUIRE_SERVICES") == "1"))
}

// event is one line of `go test -json` (cmd/test2json), build events
// included.
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
}

type skip struct{ pkg, test, reason string }

// report copies the run's essential output to w and returns the exit code.
func report(r io.Reader, w io.Writer, requireAll bool) int {
	out := bufio.NewWriter(w)
	defer out.Flush()
	var (
		passed, failed int
		failedPkgs     []string
		skips          []skip
		buf            = map[string][]string{} // package + test → its output so far
	)
	key := func(e *event) string { return e.Package + "\x00" + e.Test }
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(out, "%s\n", line) // not go test's JSON (the go command's own errors)
			continue
		}
		switch {
		case e.Action == "build-output":
			out.WriteString(e.Output)
		case e.Action == "build-fail":
			failedPkgs = append(failedPkgs, e.ImportPath+" [build failed]")
		case e.Test == "":
			switch e.Action {
			case "output":
				// The package's own lines: "ok …", "FAIL …", panics,
				// "no test files". The bare PASS that -json adds for
				// passing packages is what go test hides without -v.
				if e.Output != "PASS\n" {
					out.WriteString(e.Output)
				}
			case "fail":
				failedPkgs = append(failedPkgs, e.Package)
			}
		case e.Action == "output":
			if !strings.HasPrefix(e.Output, "=== ") { // RUN, PAUSE, CONT, NAME: -v only
				buf[key(&e)] = append(buf[key(&e)], e.Output)
			}
		case e.Action == "pass":
			passed++
			delete(buf, key(&e))
		case e.Action == "fail":
			failed++
			for _, l := range buf[key(&e)] {
				out.WriteString(l)
			}
			delete(buf, key(&e))
		case e.Action == "skip":
			skips = append(skips, skip{e.Package, e.Test, skipReason(buf[key(&e)])})
			delete(buf, key(&e))
		}
		out.Flush()
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "testreport: reading go test's output: %v\n", err)
		return 2
	}
	// Output of tests that never finished (their binary died): show it.
	for _, k := range slices.Sorted(maps.Keys(buf)) {
		for _, l := range buf[k] {
			out.WriteString(l)
		}
	}

	if len(skips) > 0 {
		fmt.Fprintf(out, "\nSkipped tests (%d):\n", len(skips))
		for _, s := range skips {
			fmt.Fprintf(out, "SKIP %s %s: %s\n", s.pkg, s.test, s.reason)
		}
	}
	code := 0
	if failed > 0 || len(failedPkgs) > 0 {
		code = 1
	}
	if requireAll && len(skips) > 0 {
		fmt.Fprintf(out, "FAIL: %d tests skipped under LADLE_REQUIRE_SERVICES=1; every test must run\n", len(skips))
		code = 1
	}
	for _, p := range failedPkgs {
		fmt.Fprintf(out, "FAIL package %s\n", p)
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", passed, failed, len(skips))
	return code
}

// skipReason is what the test logged before it skipped: the t.Skip message,
// without the "--- SKIP" line and the file:line prefix.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		if i := strings.Index(l, ".go:"); i >= 0 {
			if j := strings.Index(l[i:], ": "); j >= 0 {
				l = l[i+j+2:]
			}
		}
		parts = append(parts, l)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, "; ")
}
