package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A run that measured only some steps (make bench-scale) fails on its own
// steps' missing outputs only: another step's, missing since an earlier run,
// is marked in the report, not an error of this run.
func TestLostInRun(t *testing.T) {
	dir := t.TempDir()
	if err := writeJSON(filepath.Join(dir, fileRun), &RunInfo{}); err != nil {
		t.Fatal(err)
	}
	in := readInputs(dir)
	if !slices.Contains(in.MissingFiles, fileLatency) || !slices.Contains(in.MissingFiles, fileScale) {
		t.Fatalf("missing %v, want the latency and scale outputs among them", in.MissingFiles)
	}
	if lost := lostInRun(in, []string{"scale"}); len(lost) != 1 {
		t.Errorf("scale run: lost %v, want the scale output alone", lost)
	}
	if err := os.WriteFile(filepath.Join(dir, fileScale), []byte("goos: linux\nPASS\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in = readInputs(dir)
	if lost := lostInRun(in, []string{"scale"}); len(lost) != 0 {
		t.Errorf("scale run with its output: lost %v, want none (the latency output is not this run's)", lost)
	}
	if lost := lostInRun(in, []string{"go", "latency"}); len(lost) != 2 {
		t.Errorf("go and latency run: lost %v, want their two outputs", lost)
	}
}
