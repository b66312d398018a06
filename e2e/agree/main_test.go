// Package agree proves that cmmsflow gives the same results on a fleet in
// its own tables and on the same fleet in a Django-style CMMS behind the
// shipped mapping (issue 14, "Both paths agree, end to end"). It starts two
// stacks of its own, side by side: own (SOURCE_SCHEMA=cmms, the demo
// fleet seeded) and django (the same fleet moved into the django schema,
// deploy/source/django-cmms.sql applied as cmms_mapped, work orders written
// back through the CMMS's work-order API, stack.Options.DjangoSource).
package agree

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/deploy/local/stack"
	"github.com/cmmsflow/cmmsflow/e2e/internal/e2eenv"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

// The fleet's "today": both stacks seed the same history up to it, and every
// run is pinned to it by its conf, so nothing depends on the wall clock.
var today = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// side is one of the two stacks with a pool on its database.
type side struct {
	name string
	sys  *stack.Stack
	pool *pgxpool.Pool // superuser, search_path the stack's source then cmmsflow
}

var own, django *side

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if e2eenv.BenchmarksOnly() {
		return m.Run()
	}
	env, err := e2eenv.Prepare("agree")
	if err != nil {
		fmt.Fprintln(os.Stderr, "agree:", err)
		return 1
	}
	defer env.Close()
	admin, root, state, bin := env.Admin, env.Root, env.State, env.Bin
	logs, err := os.Create(filepath.Join(os.TempDir(), "cmmsflow-agree.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "agree:", err)
		return 1
	}
	defer logs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	own, django = &side{name: "own"}, &side{name: "django"}
	// One stack after the other: the stack picks free ports before its
	// services bind them, and two stacks starting at once could take one
	// another's.
	var (
		errs []error
		mu   sync.Mutex // both stacks' services write the one log
	)
	for _, sd := range []*side{own, django} {
		stop, err := sd.start(ctx, admin, root, filepath.Join(state, sd.name), bin, &lockedWriter{mu: &mu, w: logs})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s stack: %w", sd.name, err))
		}
		stops = append(stops, stop)
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	if len(errs) > 0 {
		fmt.Fprintln(os.Stderr, "agree:", errs, "\n(service logs in", logs.Name()+")")
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "agree: service logs in", logs.Name())
	}
	return code
}

var stops []func()

// start creates the side's database and starts its stack with the demo
// fleet of today (the django side moves it into the Django tables).
func (sd *side) start(ctx context.Context, admin, root, state, bin string, out io.Writer) (func(), error) {
	var undo []func()
	stop := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	dbURL, drop, err := pgtest.CreateDatabase(ctx, admin, "agree_"+sd.name)
	if err != nil {
		return stop, err
	}
	undo = append(undo, drop)
	sd.sys, err = stack.Start(ctx, stack.Options{
		Root: root, StateDir: state, BinDir: bin, DatabaseURL: dbURL, Emulator: stack.EmulatorAuto,
		Seed: true, SeedOptions: fleet.SeedOptions{Assets: 150, Seed: 7, Now: today},
		DjangoSource: sd == django, Out: &prefixed{name: sd.name, w: out},
	})
	if err != nil {
		return stop, err
	}
	undo = append(undo, sd.sys.Stop)
	source := db.OwnSourceSchema
	if sd == django {
		source = "cmms_mapped"
	}
	sd.pool, err = db.Connect(ctx, dbURL, db.WithSource(source))
	if err != nil {
		return stop, err
	}
	undo = append(undo, sd.pool.Close)
	return stop, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixed marks each write (a whole log line from the stack) with the
// side's name.
type prefixed struct {
	name string
	w    io.Writer
}

func (p *prefixed) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.name+" "), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}
