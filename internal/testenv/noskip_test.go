package testenv

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// directSkip matches a call of testing's Skip methods.
var directSkip = regexp.MustCompile(`\.(Skip|Skipf|SkipNow)\(`)

// TestNoDirectSkips: outside this package no code calls t.Skip, t.Skipf or
// t.SkipNow (or b.Skip…): every skip goes through Skip here, so that under
// LADLE_REQUIRE_SERVICES=1 it is a failure, and CI cannot pass by skipping.
func TestNoDirectSkips(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s: %v", root, err)
	}
	here := filepath.Join(root, "internal", "testenv")
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch {
			case path == here, d.Name() == "testdata", d.Name() == "vendor",
				path != root && strings.HasPrefix(d.Name(), "."):
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, line := range bytes.Split(b, []byte("\n")) {
			if directSkip.Match(line) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d calls Skip directly; use testenv.Skip (or the testenv helper for the service): %s",
					rel, i+1, bytes.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d Go files: is %s the module?", checked, root)
	}
}
