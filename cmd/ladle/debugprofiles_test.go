package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
)

// TestDebugProfiles: the environment's LADLE_DEBUG_CPUPROFILE,
// LADLE_DEBUG_TRACE and LADLE_DEBUG_ALLOCPROFILE get a CPU profile, an
// execution trace and an allocation profile of the process; one that
// cannot be written is an error naming its variable and leaves nothing
// running.
func TestDebugProfiles(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"LADLE_DEBUG_CPUPROFILE": filepath.Join(dir, "cpu"), "LADLE_DEBUG_TRACE": filepath.Join(dir, "trace"),
		"LADLE_DEBUG_ALLOCPROFILE": filepath.Join(dir, "allocs")}
	stop, err := startDebugProfiles(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	var sink []byte
	for i := range 10000 {
		sink = append(sink, strings.Repeat("x", i%100)...)
	}
	_ = sink
	stop()
	for _, name := range []string{"cpu", "trace", "allocs"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %d bytes, %v", name, len(b), err)
		}
		if name == "trace" && !bytes.HasPrefix(b, []byte("go 1.")) {
			t.Fatalf("trace starts %q, want a Go execution trace", b[:min(len(b), 16)])
		}
		if name == "allocs" && !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			t.Fatalf("allocation profile starts %x, want a gzipped pprof profile", b[:min(len(b), 4)])
		}
	}

	env["LADLE_DEBUG_TRACE"] = filepath.Join(dir, "missing", "trace")
	if _, err := startDebugProfiles(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "LADLE_DEBUG_TRACE") {
		t.Fatalf("unwritable trace path: %v, want an error naming LADLE_DEBUG_TRACE", err)
	}
	// The CPU profile started before the failure was stopped.
	if err := pprof.StartCPUProfile(&bytes.Buffer{}); err != nil {
		t.Fatalf("CPU profiling still running after the failed start: %v", err)
	}
	pprof.StopCPUProfile()

	if stop, err := startDebugProfiles(func(string) string { return "" }); err != nil {
		t.Fatal(err)
	} else {
		stop()
	}
}
