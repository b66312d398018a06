package pgtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/benchcpu"
)

// ServerPID is the process id of the test server (EnvVar), the parent of
// its backends, so that a benchmark counts the server's CPU time
// (libs/benchcpu; libs/benchpair's Pair.Processes). The server must run on
// this machine, as `make test`'s and `make bench`'s do.
func ServerPID(t testing.TB) int {
	t.Helper()
	admin := os.Getenv(EnvVar)
	if admin == "" {
		t.Fatalf("%s is not set: run with `make test` or `make bench`", EnvVar)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: the server's process: %v", err)
	}
	defer conn.Close(context.Background())
	var backend int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		t.Fatalf("pgtest: the server's process: %v", err)
	}
	pid, err := benchcpu.Parent(backend) // while the backend lives
	if err != nil {
		t.Fatalf("pgtest: the server's process (is the server on this machine?): %v", err)
	}
	return pid
}
