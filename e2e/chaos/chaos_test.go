// Package chaos runs every pipeline over and over on its own local stack
// while faults are injected at random, then checks that nothing was lost and
// nothing was done twice (see TestChaos and README.md, "Chaos testing").
//
// It runs its own stack, with a private PostgreSQL cluster, rather than the
// e2e package's shared one: it kills services and restarts PostgreSQL, which
// would break the other e2e tests (and every package sharing the test
// server of `make test`).
package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	localpubsub "github.com/cmmsflow/cmmsflow/deploy/local/pubsub"
	"github.com/cmmsflow/cmmsflow/deploy/local/sendgridfake"
	"github.com/cmmsflow/cmmsflow/deploy/local/stack"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/repo"
)

// Settings, from the environment.
//
//	CHAOS_DURATION  how long faults are injected (default 1m; make chaos: 10m)
//	CHAOS_SEED      the random seed (default: the clock); printed either way
//	CHAOS_EMULATOR  embedded (default) or cloudsdk
const (
	defaultDuration = time.Minute
	// runTimeout is the stack's RUN_TIMEOUTS for every pipeline: a run with
	// no step finished for this long is failed by control's sweeper.
	runTimeout    = 45 * time.Second
	sweepInterval = 2 * time.Second
	sendGridKey   = "SG.chaos-local-key"
)

type counts struct {
	mu            sync.Mutex
	triggers      map[string]int
	triggerErrors int
	// poisoned are runs triggered to fail (ETL on a day before any data):
	// featurejob dead-letters their event, the run fails, one alert.
	poisoned      map[string]bool
	kills         map[string]int
	outages       []string // service: down longer than Pub/Sub retries
	pgRestarts    int
	sendGridFails int // windows
}

func (c *counts) add(f func(*counts)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

func TestChaos(t *testing.T) {
	duration := defaultDuration
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("CHAOS_DURATION=%q: want a duration such as 10m", v)
		}
		duration = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: want an unsigned integer", v)
		}
		seed = s
	}
	emulator := stack.EmulatorEmbedded
	if v := os.Getenv("CHAOS_EMULATOR"); v != "" {
		emulator = v
	}
	t.Logf("chaos: seed %d (rerun with CHAOS_SEED=%d), faults for %s, emulator %s", seed, seed, duration, emulator)
	fmt.Printf("chaos: seed %d, duration %s\n", seed, duration)
	rng := rand.New(rand.NewPCG(seed, seed+1))

	sys, pool, sg, faults := startStack(t, seed, emulator)
	// Every PM run is as of today (UTC, the stack's PM_TIME_ZONE) at the
	// start, however long the test runs.
	var asOf string
	if err := pool.QueryRow(t.Context(), `SELECT to_char((now() AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')`).Scan(&asOf); err != nil {
		t.Fatal(err)
	}
	want := duePlans(t, pool, asOf)
	if len(want) == 0 {
		t.Fatal("the demo fleet has no due plans: the work-order invariant would test nothing")
	}
	t.Logf("%d maintenance plans due", len(want))
	started := time.Now()

	// Inject faults and trigger runs for the duration.
	var c counts
	c.triggers, c.kills, c.poisoned = map[string]int{}, map[string]int{}, map[string]bool{}
	ctx, stop := context.WithTimeout(t.Context(), duration)
	defer stop()
	faults.Enable(true)
	var wg sync.WaitGroup
	triggerRNG := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	faultRNG := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	wg.Go(func() { triggerLoop(ctx, t, sys, pool, asOf, triggerRNG, &c) })
	wg.Go(func() { faultLoop(ctx, t, sys, sg, faultRNG, &c) })
	wg.Wait()

	// Stop the faults and let the system settle.
	faults.Enable(false)
	sg.Heal()
	settleCtx, cancelSettle := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancelSettle()
	for _, p := range sys.Services {
		if !p.Running() {
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.WaitReady(settleCtx, 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := faults.Wait(settleCtx); err != nil {
		t.Logf("duplicates still scheduled after the settle bound: %v", err)
	}
	settled := settle(settleCtx, pool, runTimeout+sweepInterval+30*time.Second)
	t.Logf("faults stopped after %s; settled: %v", time.Since(started).Round(time.Second), settled)

	// A run after the faults still does the work nobody did: due plans get
	// their work order (once, see the invariants).
	final, err := trigger(settleCtx, sys, events.PreventiveMaintenance, map[string]string{"as_of": asOf})
	if err != nil {
		t.Fatalf("trigger the final run: %v", err)
	}
	finalState := waitRun(settleCtx, pool, final)
	settle(settleCtx, pool, 60*time.Second)

	v := check(t, pool, sg, want, final, finalState, c.poisoned)
	printTable(t, &c, faults.Counts(), sg, v, pool)
	if v.total() > 0 {
		t.Fatalf("%d invariant violations (seed %d):\n%s", v.total(), seed, v.String())
	}
}

func startStack(t *testing.T, seed uint64, emulator string) (*stack.Stack, *pgxpool.Pool, *sendgridfake.Server, *localpubsub.DeliveryFaults) {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	state, err := os.MkdirTemp("", "cmmsflow-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(state) })
	// The PostgreSQL server (run as the postgres user when we are root)
	// must reach its folder, so that the cluster stays inside state and goes
	// with it (package pg would otherwise keep it in the postgres user's
	// home).
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(os.TempDir(), "cmmsflow-chaos.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = logs.Close()
		if t.Failed() {
			t.Logf("service logs in %s", logs.Name())
		}
	})
	sg, err := sendgridfake.Start(sendGridKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sg.Close)
	bin, err := stack.Binaries(t.Context(), root, filepath.Join(state, "bin")) // before the clock starts
	if err != nil {
		t.Fatal(err)
	}
	faults := &localpubsub.DeliveryFaults{DuplicateRate: 0.15, DelayRate: 0.15, MaxDelay: 1500 * time.Millisecond, Seed: seed}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	sys, err := stack.Start(ctx, stack.Options{
		Root: root, StateDir: state, BinDir: bin, Emulator: emulator, FastPostgres: true,
		Seed: true, SeedOptions: fleet.SeedOptions{Assets: 100, Seed: 7, Now: time.Now()},
		DeliveryFaults:  faults,
		MinRetryBackoff: 200 * time.Millisecond, MaxRetryBackoff: 3 * time.Second,
		Env: map[string]string{
			"EMAIL_MODE": "sendgrid", "SENDGRID_API_KEY": sendGridKey, "SENDGRID_BASE_URL": sg.URL,
			"NOTIFY_SEND_TIMEOUT": "10s",
			// 8 attempts (below Pub/Sub's 10) outlast a 4 s SendGrid outage
			// at this stack's 0.2–3 s retry backoff.
			"NOTIFY_MAX_ATTEMPTS":      "8",
			"RUN_TIMEOUTS":             "*=" + runTimeout.String(),
			"STALE_RUN_SWEEP_INTERVAL": sweepInterval.String(),
			// A failed run whose step-failed event Pub/Sub dead-lettered
			// (notifier down past its retries) is alerted by the reconciler.
			"ALERT_RECONCILE_INTERVAL": "2s",
			"ALERT_RECONCILE_AFTER":    "5s",
			"TRIGGER_RATE_LIMIT":       "0",
			"OUTBOX_POLL_INTERVAL":     "500ms",
		},
		Out: logs,
	})
	if err != nil {
		t.Fatalf("start stack: %v (service logs in %s)", err, logs.Name())
	}
	t.Cleanup(sys.Stop)
	pool, err := db.Connect(ctx, sys.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return sys, pool, sg, faults
}

// triggerLoop triggers a random pipeline every 0.5–2 s through control's
// API, keeping at most one ETL run and eight runs in flight (two cores).
func triggerLoop(ctx context.Context, t *testing.T, sys *stack.Stack, pool *pgxpool.Pool, asOf string, rng *rand.Rand, c *counts) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))):
		}
		var etl, all int
		err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pipeline = $1), count(*) FROM runs WHERE state IN ('queued', 'running')`,
			events.ETLMLTraining).Scan(&etl, &all)
		if err != nil {
			continue // PostgreSQL restarting
		}
		if all >= 8 {
			continue
		}
		p, conf, poisoned := events.PreventiveMaintenance, map[string]string{"as_of": asOf}, false
		switch r := rng.IntN(100); {
		case r < 25 && etl == 0:
			p, conf = events.ETLMLTraining, nil
			if poisoned = rng.IntN(3) == 0; poisoned {
				conf = map[string]string{"snapshot_date": "2001-01-01"} // no data: fails at featurejob
			}
		case r < 60:
			p, conf = events.WeeklyKPIReport, nil
		}
		runID, err := trigger(ctx, sys, p, conf)
		if err != nil {
			c.add(func(c *counts) { c.triggerErrors++ })
			continue
		}
		c.add(func(c *counts) {
			c.triggers[p]++
			if poisoned {
				c.poisoned[runID] = true
			}
		})
	}
}

// faultLoop injects one fault every 1–3 s: a service SIGKILLed and
// restarted, PostgreSQL restarted (at most every 10 s), or SendGrid
// answering 429/5xx for 1–4 s; and every 3 minutes (first after 10 s) one
// service stays down for 25 s, longer than Pub/Sub's retries of its
// messages last, so that they are dead-lettered by Pub/Sub and their runs
// are left for the stale-run sweeper. (Duplicate and out-of-order
// deliveries run all along, in the push path.)
func faultLoop(ctx context.Context, t *testing.T, sys *stack.Stack, sg *sendgridfake.Server, rng *rand.Rand, c *counts) {
	var lastPG time.Time
	nextOutage := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))):
		}
		if time.Now().After(nextOutage) {
			nextOutage = time.Now().Add(3 * time.Minute)
			name := events.Services[rng.IntN(len(events.Services))]
			p := sys.Services[name]
			p.Kill()
			c.add(func(c *counts) { c.outages = append(c.outages, name) })
			select {
			case <-ctx.Done():
			case <-time.After(outage):
			}
			if err := restart(ctx, p); err != nil {
				t.Error(err)
				return
			}
			continue
		}
		switch r := rng.IntN(100); {
		case r < 15 && time.Since(lastPG) > 10*time.Second:
			down := 300*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
			if err := sys.RestartPostgres(context.WithoutCancel(ctx), down); err != nil {
				t.Errorf("restart PostgreSQL: %v", err)
				return
			}
			lastPG = time.Now()
			c.add(func(c *counts) { c.pgRestarts++ })
		case r < 40:
			d := time.Second + time.Duration(rng.Int64N(int64(3*time.Second)))
			sg.Fail(d)
			c.add(func(c *counts) { c.sendGridFails++ })
		default:
			name := events.Services[rng.IntN(len(events.Services))]
			p := sys.Services[name]
			// A random point: the kill lands wherever the service is.
			p.Kill()
			c.add(func(c *counts) { c.kills[name]++ })
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(rng.Int64N(int64(1500 * time.Millisecond)))):
			}
			if err := restart(ctx, p); err != nil {
				t.Error(err)
				return
			}
		}
	}
}

// outage is longer than the stack's push retries last (10 attempts at
// 0.2–3 s backoff: about 18 s).
const outage = 25 * time.Second

func restart(ctx context.Context, p *stack.Proc) error {
	if err := p.Start(); err != nil {
		return fmt.Errorf("restart %s: %w", p.Name, err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
	defer cancel()
	if err := p.WaitReady(wctx, 90*time.Second); err != nil {
		return fmt.Errorf("%s after restart: %w", p.Name, err)
	}
	return nil
}

// trigger starts a manual run through control's HTTP API, waiting at most
// 10 s for control (it may be down or waiting for PostgreSQL).
func trigger(ctx context.Context, sys *stack.Stack, pipeline string, conf map[string]string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	runID, _, err := sys.Trigger(ctx, pipeline, conf)
	return runID, err
}

// settle waits, up to bound, until no run is queued or running, no
// notification is waiting to be (re)sent and every failed run has its alert.
// It reports whether it got there.
func settle(ctx context.Context, pool *pgxpool.Pool, bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var open int
		err := pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM runs WHERE state IN ('queued', 'running')) +
			(SELECT count(*) FROM notifications WHERE status IN ('pending', 'sending') OR (status = 'failed' AND retryable)) +
			(SELECT count(*) FROM runs r WHERE r.state = 'failed'
				AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.run_id = r.run_id AND n.kind = 'alert'))`).Scan(&open)
		if err == nil && open == 0 {
			return true
		}
		time.Sleep(500 * time.Millisecond)
	}
	return false
}

func waitRun(ctx context.Context, pool *pgxpool.Pool, runID string) string {
	deadline := time.Now().Add(2 * time.Minute)
	var state string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if err := pool.QueryRow(ctx, `SELECT state FROM runs WHERE run_id = $1`, runID).Scan(&state); err == nil &&
			(state == "success" || state == "failed") {
			return state
		}
		time.Sleep(200 * time.Millisecond)
	}
	return state
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
