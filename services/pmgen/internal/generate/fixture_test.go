package generate_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/schedule"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/generate"
)

// fixture is a fresh database with hand-made technicians, assets and plans.
type fixture struct {
	t     *testing.T
	pool  *pgxpool.Pool
	techs map[string]int64
	plans map[string]int64 // by code
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, pool: pgtest.New(t), techs: map[string]int64{}, plans: map[string]int64{}}
	for _, code := range []string{"T-1", "T-2"} {
		f.techs[code] = f.id(`INSERT INTO technicians (code, name, email) VALUES ($1, $1, $1 || '@example.com') RETURNING id`, code)
	}
	return f
}

func (f *fixture) id(sql string, args ...any) int64 {
	f.t.Helper()
	var id int64
	if err := f.pool.QueryRow(context.Background(), sql, args...).Scan(&id); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return id
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

// asset inserts an asset and returns its id.
func (f *fixture) asset(tag, vehicleType, status string, km, hours float64) int64 {
	return f.id(`INSERT INTO assets (asset_tag, name, vehicle_type, status, commissioned_date, meter_reading, engine_hours)
		VALUES ($1, $1, $2, $3, '2020-01-01', $4, $5) RETURNING id`, tag, vehicleType, status, km, hours)
}

// plan inserts a plan with the given columns on top of defaults (monthly,
// fixed, MEDIUM, technician T-1) and returns its id.
func (f *fixture) plan(code string, assetID int64, cols map[string]any) int64 {
	f.t.Helper()
	row := map[string]any{
		"code": code, "asset_id": assetID, "name": "Service " + code, "description": "Do the " + code + " service.",
		"interval_value": 1, "interval_unit": "months", "assigned_technician_id": f.techs["T-1"],
	}
	maps.Copy(row, cols)
	keys := slices.Sorted(maps.Keys(row))
	var args []any
	var ph []string
	for i, k := range keys {
		args = append(args, row[k])
		ph = append(ph, fmt.Sprintf("$%d", i+1))
	}
	id := f.id(fmt.Sprintf(`INSERT INTO maintenance_plans (%s) VALUES (%s) RETURNING id`,
		strings.Join(keys, ", "), strings.Join(ph, ", ")), args...)
	f.plans[code] = id
	return id
}

// workOrder inserts a work order of plan code.
func (f *fixture) workOrder(number, planCode, dueDate, status string, completedAt *time.Time) {
	f.t.Helper()
	f.exec(`INSERT INTO work_orders (wo_number, asset_id, plan_id, due_date, type, status, title, started_at, completed_at)
		SELECT $1, p.asset_id, p.id, $3::date, 'PREVENTIVE', $4, 'old', $5::timestamptz - interval '1 hour', $5
		FROM maintenance_plans p WHERE p.code = $2`, number, planCode, dueDate, status, completedAt)
}

func (f *fixture) run(asOf string, zone string, runID string) generate.Result {
	f.t.Helper()
	res, err := runOn(f.pool, asOf, zone, runID, nil)
	if err != nil {
		f.t.Fatalf("generate as of %s: %v", asOf, err)
	}
	return res
}

func runOn(pool *pgxpool.Pool, asOf, zone, runID string, b generate.Backend) (generate.Result, error) {
	d, err := schedule.ParseDate(asOf)
	if err != nil {
		return generate.Result{}, err
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return generate.Result{}, err
	}
	var res generate.Result
	err = pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		res, err = generate.Run(context.Background(), tx, generate.Request{AsOf: d, Location: loc, RunID: runID, Backend: b})
		return err
	})
	return res, err
}

// planState is a plan's schedule columns, as text.
type planState struct {
	NextDueDate, NextDueMeter, Anchor, LastCompletedDate, LastCompletedMeter string
}

func (f *fixture) planStates() map[string]planState {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `
		SELECT code, coalesce(next_due_date::text, ''), coalesce(next_due_meter::text, ''), coalesce(schedule_anchor_day::text, ''),
		       coalesce(last_completed_date::text, ''), coalesce(last_completed_meter::text, '')
		FROM maintenance_plans`)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]planState{}
	var code string
	var s planState
	if _, err := pgx.ForEachRow(rows, []any{&code, &s.NextDueDate, &s.NextDueMeter, &s.Anchor, &s.LastCompletedDate, &s.LastCompletedMeter}, func() error {
		out[code] = s
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// strings runs a query returning one text column per row.
func (f *fixture) strings(sql string, args ...any) []string {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), sql, args...)
	if err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func (f *fixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func ts(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}
