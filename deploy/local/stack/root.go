package stack

import (
	"errors"
	"os"
	"path/filepath"
)

// FindRoot returns the repository root (Options.Root): the nearest folder
// holding go.work, from the working directory up.
func FindRoot() (string, error) {
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
			return "", errors.New("stack: no go.work above the working directory")
		}
		dir = parent
	}
}
