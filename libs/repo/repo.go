// Package repo locates the cmmsflow checkout a test or local tool runs in.
package repo

import (
	"errors"
	"os"
	"path/filepath"
)

// Root returns the repository root: the nearest folder holding go.work, from
// the working directory up.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repo: no go.work above the working directory")
		}
		dir = parent
	}
}
