// Package e2e runs the whole local stack, as `make up` does, and drives it as
// a user would: through Pub/Sub, the services' HTTP endpoints and the
// database they share.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/deploy/local/stack"
	"github.com/cmmsflow/cmmsflow/e2e/internal/e2eenv"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

var (
	sys  *stack.Stack
	pool *pgxpool.Pool
	// deployFaults is the deployer's DEPLOY_FAULT_FILE: a run listed in it
	// fails at its deploy (injectDeployFault).
	deployFaults string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if e2eenv.BenchmarksOnly() {
		return m.Run() // benchmarks only (make bench): no stack needed
	}
	env, err := e2eenv.Prepare("e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer env.Close()
	admin, root, state, bin := env.Admin, env.Root, env.State, env.Bin
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dbURL, drop, err := pgtest.CreateDatabase(ctx, admin, "e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer drop()
	logs, err := os.Create(filepath.Join(os.TempDir(), "cmmsflow-e2e.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer logs.Close()
	otelEnv, stopOTLP, err := startOTLP() // every service exports its spans to it (otel_test.go)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer stopOTLP()
	// The missed-tick watcher looks every second (ticks_test.go).
	otelEnv["MISSED_TICK_INTERVAL"] = "1s"
	deployFaults = filepath.Join(state, "deploy-faults")
	otelEnv["DEPLOY_FAULT_FILE"] = deployFaults
	// Model monitoring retrains on drift (monitoring_test.go); only that
	// test runs model_monitoring.
	otelEnv["AUTO_RETRAIN"] = "true"
	sys, err = stack.Start(ctx, stack.Options{
		Root: root, StateDir: state, BinDir: bin, DatabaseURL: dbURL, Emulator: stack.EmulatorAuto,
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
