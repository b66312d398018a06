package pgtest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/benchcpu"
)

// TestServerPID: the server is the PostgreSQL process every backend of a
// pool is a child of, and a query's CPU time counts with it as a root.
func TestServerPID(t *testing.T) {
	pool := New(t)
	ctx := context.Background()
	server := ServerPID(t)
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(server) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		t.Fatalf("server %d is %q (%v), want postgres", server, comm, err)
	}
	conns := make([]int, 3)
	for i := range conns { // three connections at once: three backends
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		if err := c.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&conns[i]); err != nil {
			t.Fatal(err)
		}
		if parent, err := benchcpu.Parent(conns[i]); err != nil || parent != server {
			t.Errorf("backend %d: parent %d (%v), want the server %d", conns[i], parent, err, server)
		}
	}

	m, err := benchcpu.Start(server)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM generate_series(1, 5000000) i WHERE i % 7 = 0`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	u, err := m.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("query %v, server CPU %v, steal %.1f%%", took, u.CPU, u.Steal*100)
	// The query's work is the backend's: nearly all of its time is CPU,
	// whatever the steal took of it.
	if lo := time.Duration(float64(took) * (1 - u.Steal) * 0.6); u.CPU < lo {
		t.Errorf("CPU %v for a query of %v (steal %.0f%%), want %v or more", u.CPU, took, u.Steal*100, lo)
	}
}
