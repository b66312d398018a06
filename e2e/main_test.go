// Package e2e runs the whole local stack, as `make up` does, and drives it as
// a user would: through Pub/Sub, the services' HTTP endpoints and the
// database they share.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/deploy/local/stack"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

var (
	sys  *stack.Stack
	pool *pgxpool.Pool
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "^$" {
		return m.Run() // benchmarks only (make bench): no stack needed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dbURL, drop, err := newDatabase(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer drop()
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	logs, err := os.Create(filepath.Join(os.TempDir(), "cmmsflow-e2e.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer logs.Close()
	state, err := os.MkdirTemp("", "cmmsflow-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(state)
	otelEnv, stopOTLP, err := startOTLP() // every service exports its spans to it (otel_test.go)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer stopOTLP()
	sys, err = stack.Start(ctx, stack.Options{
		Root: root, StateDir: state, DatabaseURL: dbURL, Emulator: stack.EmulatorAuto,
		Seed: true, SeedOptions: fleet.SeedOptions{Assets: 150, Seed: 7, Now: time.Now()},
		Out: logs, Env: otelEnv,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start stack:", err, "\n(service logs in", logs.Name()+")")
		return 1
	}
	defer sys.Stop()
	pool, err = db.Connect(ctx, dbURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer pool.Close()
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "e2e: service logs in", logs.Name())
	}
	return code
}

// newDatabase creates an empty database for the stack on the test server.
func newDatabase(ctx context.Context) (string, func(), error) {
	admin := os.Getenv(pgtest.EnvVar)
	if admin == "" {
		return "", nil, fmt.Errorf("%s is not set: run the tests with `make test`", pgtest.EnvVar)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "e2e_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	}
	return u.String(), drop, nil
}

func repoRoot() (string, error) {
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
			return "", fmt.Errorf("no go.work above the working directory")
		}
		dir = parent
	}
}
