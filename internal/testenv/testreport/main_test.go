package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestReport runs go test -json on a small package with a passing, a
// failing and a skipping test, and reads it as make test does.
func TestReport(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "test", "-json", "-count=1", "./testdata/fixture")
	raw, _ := cmd.Output() // it fails: one test does
	if !bytes.Contains(raw, []byte(`"Action":"skip"`)) {
		t.Fatalf("go test -json gave no skip:\n%s", raw)
	}
	for _, required := range []bool{false, true} {
		var out bytes.Buffer
		code := report(bytes.NewReader(raw), &out, required)
		got := out.String()
		if code != 1 {
			t.Errorf("required=%v: exit %d with a failing test, want 1", required, code)
		}
		for _, want := range []string{
			"this one fails on purpose", "--- FAIL: TestFails",
			"FAIL\tgithub.com/ladle-dev/ladle/internal/testenv/testreport/testdata/fixture",
			"SKIP github.com/ladle-dev/ladle/internal/testenv/testreport/testdata/fixture TestSkips/inner: LADLE_TEST_EXAMPLE_URL is not set",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("required=%v: output lacks %q:\n%s", required, want, got)
			}
		}
		lines := strings.Split(strings.TrimSpace(got), "\n")
		if last := lines[len(lines)-1]; last != "2 passed, 1 failed, 1 skipped" {
			t.Errorf("last line %q", last)
		}
		if strings.Contains(got, "=== RUN") || strings.Contains(got, "TestPasses") {
			t.Errorf("output has what go test shows only with -v:\n%s", got)
		}
		if hasNote := strings.Contains(got, "skipped under LADLE_REQUIRE_SERVICES=1"); hasNote != required {
			t.Errorf("required=%v: note about skips under LADLE_REQUIRE_SERVICES=1 present: %v", required, hasNote)
		}
	}

	// Passing tests and a skip: exit 0, unless every test is required.
	var pass bytes.Buffer
	for _, l := range strings.SplitAfter(string(raw), "\n") {
		if !strings.Contains(l, "TestFails") && !strings.Contains(l, `"Action":"fail"`) && !strings.Contains(l, `"Output":"FAIL`) {
			pass.WriteString(l)
		}
	}
	var out bytes.Buffer
	if code := report(bytes.NewReader(pass.Bytes()), &out, false); code != 0 {
		t.Errorf("passing run with a skip: exit %d, want 0\n%s", code, out.String())
	}
	out.Reset()
	if code := report(bytes.NewReader(pass.Bytes()), &out, true); code != 1 {
		t.Errorf("passing run with a skip under LADLE_REQUIRE_SERVICES=1: exit %d, want 1\n%s", code, out.String())
	}
}
