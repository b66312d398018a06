// Command airflowcontract cuts, from the upstream Airflow stable REST API v1
// spec, the subset that compat serves (compat.AirflowOperations) and writes it
// where compat's tests read it:
//
//	go run ./services/control/cmd/airflowcontract [-src spec.yaml] [-out subset.yaml]
//
// Relative paths are taken from the repository root (the folder holding go.work).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cmmsflow/cmmsflow/libs/repo"
	"github.com/cmmsflow/cmmsflow/services/control/internal/compat"
	"github.com/cmmsflow/cmmsflow/services/control/internal/compat/airflowspec"
)

func main() {
	src := flag.String("src", "../shared/contracts/airflow-v1.yaml", "the upstream Airflow spec")
	out := flag.String("out", "services/control/internal/compat/testdata/airflow-v1.yaml", "the derived subset to write")
	flag.Parse()
	if err := run(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "airflowcontract:", err)
		os.Exit(1)
	}
}

func run(src, out string) error {
	root, err := repo.Root()
	if err != nil {
		return err
	}
	in, err := os.ReadFile(fromRoot(root, src))
	if err != nil {
		return err
	}
	ops := compat.AirflowOperations()
	cut, err := airflowspec.Cut(in, ops)
	if err != nil {
		return err
	}
	if err := os.WriteFile(fromRoot(root, out), cut, 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d operations, %d bytes\n", out, len(ops), len(cut))
	return nil
}

func fromRoot(root, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(root, path)
}
