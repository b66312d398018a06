package terraformcheck

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite deploy/terraform/registry.tf from the registry")

// terraformDir is deploy/terraform, from this package's directory.
const terraformDir = "../../terraform"

func expect(t *testing.T) Expect {
	t.Helper()
	exp, err := FromCode()
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

func TestRegistryFileUpToDate(t *testing.T) {
	want := RenderRegistry(expect(t))
	path := filepath.Join(terraformDir, RegistryFile)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run go test ./deploy/local/terraformcheck -update", path)
	}
}

func TestTerraformMatchesCode(t *testing.T) {
	problems, err := Check(terraformDir, expect(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}
