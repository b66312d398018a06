package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/deploy/local/stack"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

// Latency is the end-to-end measurement: every pipeline triggered through
// control's API on the demo fleet, one run at a time, with the timestamps
// control projected into runs and steps.
type Latency struct {
	Emulator  string            `json:"emulator"` // cloudsdk or embedded
	Assets    int               `json:"assets"`
	Pipelines []PipelineLatency `json:"pipelines"`
}

// PipelineLatency is the runs of one pipeline.
type PipelineLatency struct {
	ID    string       `json:"id"`
	Steps []string     `json:"steps"`
	Runs  []LatencyRun `json:"runs"`
}

// LatencyRun is one run: queued_at is when control's API accepted the
// trigger; a step's started_at/ended_at are the times on its started and
// succeeded events, stamped by the service that ran it.
type LatencyRun struct {
	RunID    string       `json:"run_id"`
	State    string       `json:"state"`
	Error    string       `json:"error,omitempty"`
	QueuedAt time.Time    `json:"queued_at"`
	EndedAt  time.Time    `json:"ended_at"`
	Steps    []StepTiming `json:"steps"`
}

// StepTiming is one step of a run.
type StepTiming struct {
	Step      string          `json:"step"`
	State     string          `json:"state"`
	Attempts  int             `json:"attempts"`
	StartedAt time.Time       `json:"started_at"`
	EndedAt   time.Time       `json:"ended_at"`
	Figures   json.RawMessage `json:"figures,omitempty"`
}

// Total is trigger accepted → last step finished.
func (r LatencyRun) Total() time.Duration { return r.EndedAt.Sub(r.QueuedAt) }

// FirstHop is trigger accepted → first step started: two event hops
// (pipeline-triggered to control, run-started to the first service) and
// control's projection in between.
func (r LatencyRun) FirstHop() time.Duration {
	if len(r.Steps) == 0 {
		return 0
	}
	return r.Steps[0].StartedAt.Sub(r.QueuedAt)
}

// Hops are, for each step after the first, the time from the previous
// step's finish to its start: one event through the outbox, Pub/Sub and a
// push to the next service's handler.
func (r LatencyRun) Hops() []time.Duration {
	var out []time.Duration
	for i := 1; i < len(r.Steps); i++ {
		out = append(out, r.Steps[i].StartedAt.Sub(r.Steps[i-1].EndedAt))
	}
	return out
}

// Work is the summed time inside the steps' handlers.
func (r LatencyRun) Work() time.Duration {
	var d time.Duration
	for _, s := range r.Steps {
		d += s.EndedAt.Sub(s.StartedAt)
	}
	return d
}

// latencyOptions configures measureLatency.
type latencyOptions struct {
	Root       string
	AdminURL   string // superuser URL of the test server (testenv)
	Runs       int    // per pipeline
	Assets     int
	Emulator   string
	Log        io.Writer // the stack's logs
	RunTimeout time.Duration
}

// measureLatency starts the local stack (as `make up` and e2e do) on a new
// database with the demo fleet, triggers each pipeline o.Runs times, one run
// at a time, and reads the runs' timings back.
func measureLatency(ctx context.Context, o latencyOptions) (*Latency, error) {
	dbURL, drop, err := pgtest.CreateDatabase(ctx, o.AdminURL, "bench")
	if err != nil {
		return nil, err
	}
	defer drop()
	state, err := os.MkdirTemp("", "cmmsflow-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(state)
	bin, err := stack.Binaries(ctx, o.Root, filepath.Join(state, "bin"))
	if err != nil {
		return nil, err
	}
	emulator := o.Emulator
	sys, err := stack.Start(ctx, stack.Options{
		Root: o.Root, StateDir: state, BinDir: bin, DatabaseURL: dbURL, Emulator: emulator,
		Seed: true, SeedOptions: fleet.SeedOptions{Assets: o.Assets, Now: time.Now()},
		Out: o.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("start the stack: %w", err)
	}
	defer sys.Stop()
	pool, err := db.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer pool.Close()

	out := &Latency{Emulator: resolveEmulator(emulator), Assets: o.Assets}
	for _, p := range events.Pipelines {
		pl := PipelineLatency{ID: p.ID, Steps: p.Steps}
		for i := range o.Runs {
			runID, _, err := sys.Trigger(ctx, p.ID, nil)
			if err != nil {
				return nil, err
			}
			run, err := waitRun(ctx, pool, runID, o.RunTimeout)
			if err != nil {
				return nil, fmt.Errorf("%s run %d: %w", p.ID, i+1, err)
			}
			fmt.Fprintf(os.Stderr, "benchreport: %s run %d/%d: %s in %s\n", p.ID, i+1, o.Runs, run.State, run.Total().Round(time.Millisecond))
			pl.Runs = append(pl.Runs, run)
		}
		out.Pipelines = append(out.Pipelines, pl)
	}
	return out, nil
}

// waitRun polls until the run is final and returns its timings.
func waitRun(ctx context.Context, pool interface {
	QueryRow(context.Context, string, ...any) pgx.Row
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, runID string, timeout time.Duration) (LatencyRun, error) {
	r := LatencyRun{RunID: runID}
	deadline := time.Now().Add(timeout)
	for {
		var ended *time.Time
		err := pool.QueryRow(ctx, `SELECT state, error, queued_at, ended_at FROM runs WHERE run_id = $1`, runID).
			Scan(&r.State, &r.Error, &r.QueuedAt, &ended)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return r, err
		}
		if ended != nil && (r.State == "success" || r.State == "failed") {
			r.EndedAt = *ended
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("run %s not finished after %s (state %q)", runID, timeout, r.State)
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if r.State != "success" {
		return r, fmt.Errorf("run %s %s: %s", runID, r.State, r.Error)
	}
	rows, err := pool.Query(ctx, `SELECT step, state, attempts, started_at, ended_at, figures FROM steps
		WHERE run_id = $1 ORDER BY position`, runID)
	if err != nil {
		return r, err
	}
	defer rows.Close()
	for rows.Next() {
		var s StepTiming
		var started, ended *time.Time
		if err := rows.Scan(&s.Step, &s.State, &s.Attempts, &started, &ended, &s.Figures); err != nil {
			return r, err
		}
		if started == nil || ended == nil {
			return r, fmt.Errorf("run %s: step %s has no start or end", runID, s.Step)
		}
		s.StartedAt, s.EndedAt = *started, *ended
		r.Steps = append(r.Steps, s)
	}
	return r, rows.Err()
}
