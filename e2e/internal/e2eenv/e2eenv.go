// Package e2eenv is the start of every end-to-end test package's TestMain:
// the PostgreSQL admin URL, the repository root, a private state folder and
// the service binaries, built before any time budget starts.
package e2eenv

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cmmsflow/cmmsflow/deploy/local/stack"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/repo"
)

// Env is what a TestMain starts its stacks with.
type Env struct {
	Admin string // PostgreSQL superuser URL (pgtest.EnvVar)
	Root  string // the repository
	State string // a private folder, removed by Close
	Bin   string // the service binaries
}

// BenchmarksOnly reports whether the run asks for benchmarks only
// (-run ^$, make bench): no stack is needed then. Call it after flag.Parse.
func BenchmarksOnly() bool {
	f := flag.Lookup("test.run")
	return f != nil && f.Value.String() == "^$"
}

// Prepare checks the environment, makes the state folder (named after
// name) and builds, or finds built by make, the service binaries: a cold
// first build takes minutes while go test compiles every other package.
func Prepare(name string) (Env, error) {
	admin := os.Getenv(pgtest.EnvVar)
	if admin == "" {
		return Env{}, fmt.Errorf("%s is not set: run the tests with `make test`", pgtest.EnvVar)
	}
	root, err := repo.Root()
	if err != nil {
		return Env{}, err
	}
	state, err := os.MkdirTemp("", "cmmsflow-"+name+"-")
	if err != nil {
		return Env{}, err
	}
	bin, err := stack.Binaries(context.Background(), root, filepath.Join(state, "bin"))
	if err != nil {
		os.RemoveAll(state)
		return Env{}, err
	}
	return Env{Admin: admin, Root: root, State: state, Bin: bin}, nil
}

// Close removes the state folder.
func (e Env) Close() { os.RemoveAll(e.State) }
