package fleet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/features"
)

// Shift moves a seeded demo fleet away from what a model was trained on, so
// that model monitoring has drift to detect (issue 17's drift acceptance):
//
//   - AgeYears ages every asset: its commissioning date moves back, and its
//     meters grow as the generator's usage model has them, linearly from
//     commissioning at the asset's rate (current reading / days in service at
//     Now). The odometer and the hour meter at Now become reading × (days in
//     service after the shift / days in service before), and the meter
//     figures of the asset's maintenance plans (next due, last completed)
//     move by the same amount, so that the plans stay as due as they were.
//     The model year moves with the commissioning year.
//   - FailureRate multiplies the rate of breakdowns over the lookback window
//     [Now − features.DefaultLookbackDays, Now) of every asset in service
//     (ACTIVE or IN_MAINTENANCE; a laid-up vehicle does not break down): an
//     asset with n corrective work orders created in the window (from its
//     commissioning, when later) gets ⌊(F−1)·n⌋ more, and one more with
//     probability the fractional part, drawn like the generator's breakdowns
//     (failure modes of its vehicle type, priorities, repair times, status
//     at Now) at uniform times in the window. They are numbered SHIFT-000001…
//     in order of creation.
//
// Shift is idempotent, and a second Shift replaces the first rather than
// adding to it: the ageing is anchored on the asset's record, which the
// generator creates on the commissioning day (created_at), so the shifted
// commissioning date is created_at's day (UTC) minus AgeYears; the failure
// shift replaces the SHIFT- work orders of an earlier shift and counts only
// the others. The same options on the same fleet give the same rows (by
// business keys); AgeYears 0 and FailureRate 1 restore the seeded fleet up
// to the rounding of the meters. Shift is meant for the demo fleet Seed
// writes: on imported data, created_at is not the commissioning day.
func Shift(ctx context.Context, pool *pgxpool.Pool, o ShiftOptions) (ShiftStats, error) {
	o, err := o.normalized()
	if err != nil {
		return ShiftStats{}, err
	}
	var st ShiftStats
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := lock(ctx, tx); err != nil {
			return err
		}
		if st.AssetsAged, err = shiftAge(ctx, tx, o); err != nil {
			return err
		}
		st.WorkOrdersRemoved, st.WorkOrdersAdded, err = shiftFailures(ctx, tx, o)
		return err
	})
	if err != nil {
		return ShiftStats{}, err
	}
	return st, nil
}

// ShiftOptions say how far Shift moves the fleet.
type ShiftOptions struct {
	// AgeYears is added to every asset's age as seeded, 0 to MaxYears.
	AgeYears float64
	// FailureRate multiplies the breakdown rate over the lookback window,
	// 1 to MaxFailureRate; 0 means 1 (no change).
	FailureRate float64
	// Seed drives the draws of the added breakdowns.
	Seed uint64
	// Now is the moment the seeded history ends (SeedOptions.Now); zero means
	// time.Now().
	Now time.Time
}

// MaxFailureRate bounds ShiftOptions.FailureRate.
const MaxFailureRate = 10

// ShiftStats counts what Shift changed.
type ShiftStats struct {
	AssetsAged        int64 // assets whose commissioning date moved
	WorkOrdersRemoved int64 // SHIFT- work orders of an earlier shift
	WorkOrdersAdded   int64 // SHIFT- work orders of this one
}

// shiftPrefix numbers the work orders Shift adds.
const shiftPrefix = "SHIFT-"

// streamShift is the generator stream of the added breakdowns.
const streamShift = 3

func (o ShiftOptions) normalized() (ShiftOptions, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC().Truncate(time.Second)
	if o.FailureRate == 0 {
		o.FailureRate = 1
	}
	var errs []error
	if math.IsNaN(o.AgeYears) || o.AgeYears < 0 || o.AgeYears > MaxYears {
		errs = append(errs, fmt.Errorf("fleet: age shift must be between 0 and %d years, got %g", MaxYears, o.AgeYears))
	}
	if math.IsNaN(o.FailureRate) || o.FailureRate < 1 || o.FailureRate > MaxFailureRate {
		errs = append(errs, fmt.Errorf("fleet: failure rate factor must be between 1 and %d, got %g", MaxFailureRate, o.FailureRate))
	}
	return o, errors.Join(errs...)
}

// shiftAgeSQL moves each asset's commissioning date to its record's day
// minus $1 days, scales its meters at $2 (the day the history ends) by the
// days in service after over before, moves its plans' meter figures by the
// change of the asset's reading in their unit, and moves the model year with
// the commissioning year. Assets commissioned on or after $2 keep their
// meters. It returns the number of assets that moved.
const shiftAgeSQL = `
WITH target AS (
	SELECT id, commissioned_date AS cur, (created_at AT TIME ZONE 'UTC')::date - $1::int AS new,
	       meter_reading AS km, engine_hours AS hours
	FROM assets
), moved AS (
	SELECT id, cur, new, km, hours,
	       CASE WHEN $2::date > cur THEN round(km * ($2::date - new) / ($2::date - cur), 1) ELSE km END AS new_km,
	       CASE WHEN $2::date > cur THEN round(hours * ($2::date - new) / ($2::date - cur), 1) ELSE hours END AS new_hours
	FROM target WHERE new <> cur
), plans AS (
	UPDATE maintenance_plans p SET
		next_due_meter = p.next_due_meter + CASE p.meter_unit WHEN 'hours' THEN m.new_hours - m.hours ELSE m.new_km - m.km END,
		last_completed_meter = p.last_completed_meter + CASE p.meter_unit WHEN 'hours' THEN m.new_hours - m.hours ELSE m.new_km - m.km END,
		updated_at = $3
	FROM moved m WHERE p.asset_id = m.id AND p.meter_unit IS NOT NULL
)
UPDATE assets a SET
	commissioned_date = m.new,
	year = a.year + extract(year FROM m.new)::int - extract(year FROM m.cur)::int,
	meter_reading = m.new_km,
	engine_hours = m.new_hours,
	updated_at = $3
FROM moved m WHERE a.id = m.id`

// shiftAge applies the age shift; it returns the number of assets moved.
func shiftAge(ctx context.Context, tx pgx.Tx, o ShiftOptions) (int64, error) {
	days := int(o.AgeYears * 365.25) // as the generator turns an age into a commissioning date
	tag, err := tx.Exec(ctx, shiftAgeSQL, days, o.Now, o.Now)
	if err != nil {
		return 0, fmt.Errorf("fleet: shift ages: %w", err)
	}
	return tag.RowsAffected(), nil
}

// breakdownCountsSQL lists the assets in service with their id, tag and vehicle type,
// the start of their window ($1, or commissioning when later) and the
// corrective work orders created in [start, $2) other than Shift's, by tag.
const breakdownCountsSQL = `
SELECT a.id, a.asset_tag, a.vehicle_type, greatest($1::timestamptz, a.commissioned_date::timestamptz) AS start,
       count(w.id) AS n
FROM assets a
LEFT JOIN work_orders w ON w.asset_id = a.id AND w.type = 'CORRECTIVE' AND w.wo_number NOT LIKE '` + shiftPrefix + `%'
	AND w.created_at >= greatest($1::timestamptz, a.commissioned_date::timestamptz) AND w.created_at < $2
WHERE a.status IN ('ACTIVE', 'IN_MAINTENANCE')
GROUP BY a.id
ORDER BY a.asset_tag`

type assetBreakdowns struct {
	ID               int64
	Tag, VehicleType string
	Start            time.Time
	N                int64
}

// shiftFailures replaces the SHIFT- work orders with those of o's failure
// rate; it returns how many it removed and added.
func shiftFailures(ctx context.Context, tx pgx.Tx, o ShiftOptions) (removed, added int64, err error) {
	tag, err := tx.Exec(ctx, `DELETE FROM work_orders WHERE wo_number LIKE '`+shiftPrefix+`%'`)
	if err != nil {
		return 0, 0, fmt.Errorf("fleet: remove earlier shift work orders: %w", err)
	}
	if o.FailureRate == 1 {
		return tag.RowsAffected(), 0, nil
	}
	from := o.Now.AddDate(0, 0, -features.DefaultLookbackDays)
	rows, err := tx.Query(ctx, breakdownCountsSQL, from, o.Now)
	if err != nil {
		return 0, 0, fmt.Errorf("fleet: count breakdowns: %w", err)
	}
	counts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[assetBreakdowns])
	if err != nil {
		return 0, 0, fmt.Errorf("fleet: count breakdowns: %w", err)
	}
	g, techs, err := shiftGenerator(ctx, tx, o)
	if err != nil {
		return 0, 0, err
	}
	ex := existing{technicians: techs, assets: make(map[string]int64, len(counts))}
	for _, c := range counts {
		ex.assets[c.Tag] = c.ID
	}
	wos := g.extraBreakdowns(o, counts)
	if err := write(ctx, tx, &dataset{workOrders: wos}, ex, &copySink{}); err != nil {
		return 0, 0, err
	}
	return tag.RowsAffected(), int64(len(wos)), nil
}

// shiftGenerator is a generator at o.Now whose technicians are the
// database's; it returns their ids by code too.
func shiftGenerator(ctx context.Context, tx pgx.Tx, o ShiftOptions) (*generator, map[string]int64, error) {
	g := &generator{o: SeedOptions{Seed: o.Seed, Now: o.Now}, now: o.Now}
	rows, err := tx.Query(ctx, `SELECT code, id, active FROM technicians ORDER BY code`)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: read technicians: %w", err)
	}
	ids := map[string]int64{}
	var (
		code   string
		id     int64
		active bool
	)
	_, err = pgx.ForEachRow(rows, []any{&code, &id, &active}, func() error {
		ids[code] = id
		g.allTechs = append(g.allTechs, code)
		if active {
			g.activeTechs = append(g.activeTechs, code)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: read technicians: %w", err)
	}
	return g, ids, nil
}

// extraBreakdowns draws the added breakdowns of each asset (see Shift) and
// numbers them SHIFT-000001… in order of creation.
func (g *generator) extraBreakdowns(o ShiftOptions, counts []assetBreakdowns) []workOrderRow {
	rng := rand.New(rand.NewPCG(o.Seed, streamShift))
	for i, c := range counts {
		extra := (o.FailureRate - 1) * float64(c.N)
		k := int(extra)
		if rng.Float64() < extra-float64(k) {
			k++
		}
		a := &simAsset{idx: i, tag: c.Tag, kind: kindOf(c.VehicleType)}
		span := int64(g.now.Sub(c.Start))
		for range k {
			at := c.Start.Add(time.Duration(rng.Int64N(max(span, 1)))).Truncate(time.Minute)
			g.failure(rng, a, at)
		}
	}
	slices.SortStableFunc(g.wos, func(x, y simWO) int { return x.row.CreatedAt.Compare(*y.row.CreatedAt) })
	out := make([]workOrderRow, len(g.wos))
	for i, w := range g.wos {
		w.row.Number = fmt.Sprintf("%s%06d", shiftPrefix, i+1)
		out[i] = w.row
	}
	return out
}

// kindOf is the catalogue's vehicle kind of a vehicle type (the first
// kind's for an unknown one, which the schema's CHECK rules out).
func kindOf(vehicleType string) *vehicleKind {
	i := slices.IndexFunc(kinds, func(k vehicleKind) bool { return strings.EqualFold(k.typ, vehicleType) })
	return &kinds[max(i, 0)]
}
