package compat

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/cmmsflow/cmmsflow/libs/repo"
	"github.com/cmmsflow/cmmsflow/services/control/internal/compat/airflowspec"
)

// TestAirflowContractIsUpToDate checks the derived contract against the route
// table and, when the upstream spec sits beside the clone, against a new cut.
func TestAirflowContractIsUpToDate(t *testing.T) {
	doc, derived, err := loadContract()
	if err != nil {
		t.Fatalf("%s: %v", contractPath, err)
	}
	if _, err := gorillamux.NewRouter(doc); err != nil {
		t.Fatalf("%s: no router: %v", contractPath, err)
	}
	if _, ok := airflowspec.SourceSHA256(derived); !ok {
		t.Fatalf("%s: the header has no source SHA-256", contractPath)
	}
	var inContract, served []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inContract = append(inContract, method+" "+path)
		}
	}
	for _, op := range AirflowOperations() {
		served = append(served, op.String())
	}
	slices.Sort(inContract)
	slices.Sort(served)
	if !slices.Equal(inContract, served) {
		t.Fatalf("%s has the operations\n\t%s\nthe route table serves\n\t%s\nrun %s",
			contractPath, strings.Join(inContract, "\n\t"), strings.Join(served, "\n\t"), airflowspec.Generator)
	}

	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "..", "shared", "contracts", "airflow-v1.yaml")
	upstream, err := os.ReadFile(src)
	if errors.Is(err, fs.ErrNotExist) {
		t.Logf("freshness not checked: it needs the upstream spec at %s", src)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	cut, err := airflowspec.Cut(upstream, AirflowOperations())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cut, derived) {
		t.Fatalf("%s is not the cut of %s: run %s", contractPath, src, airflowspec.Generator)
	}
}
