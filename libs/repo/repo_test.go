package repo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRoot(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("root %s has no go.work: %v", root, err)
	}
	if _, err := os.Stat(filepath.Join(root, "libs", "repo", "repo.go")); err != nil {
		t.Fatalf("root %s is not this checkout: %v", root, err)
	}
	t.Chdir(t.TempDir())
	if r, err := Root(); err == nil {
		t.Fatalf("outside a checkout: root %q", r)
	}
}
