package kpi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cmmsflow/cmmsflow/libs/monitor"
)

// Querier is a transaction or a pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Defaults of Params.
const (
	DefaultMTBFWindowDays = 365
	DefaultTrendWeeks     = 12
	DefaultTopN           = 10
)

// Params say which week to report on and how.
type Params struct {
	Week           Week
	Location       *time.Location     // the weeks' days are days in this zone; nil means UTC
	MTBFWindowDays int                // trailing window of MTBF's operating time; 0 means 365
	TrendWeeks     int                // 0 means 12
	TopN           int                // riskiest assets listed; 0 means 10
	Now            time.Time          // generation time; zero means time.Now()
	Drift          monitor.Thresholds // the model-health section's PSI levels; zero means monitor.DefaultThresholds
}

func (p Params) normalized() (Params, error) {
	if p.Location == nil {
		p.Location = time.UTC
	}
	p.MTBFWindowDays = cmp.Or(p.MTBFWindowDays, DefaultMTBFWindowDays)
	p.TrendWeeks = cmp.Or(p.TrendWeeks, DefaultTrendWeeks)
	p.TopN = cmp.Or(p.TopN, DefaultTopN)
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	if p.Drift == (monitor.Thresholds{}) {
		p.Drift = monitor.DefaultThresholds
	}
	if err := p.Drift.Validate(); err != nil {
		return p, err
	}
	if p.Week.Num == 0 {
		return p, errors.New("kpi: no week")
	}
	if p.MTBFWindowDays < 7 || p.TrendWeeks < 2 || p.TopN < 1 {
		return p, fmt.Errorf("kpi: bad parameters: MTBF window %d days (min 7), trend %d weeks (min 2), top %d (min 1)",
			p.MTBFWindowDays, p.TrendWeeks, p.TopN)
	}
	return p, nil
}

// periods is the two reported weeks as SQL arrays, index 1 = current week,
// 2 = previous week (the ordinality of unnest).
type periods struct {
	start, end         []time.Time // instants [start, end)
	startDate, endDate []time.Time // the same as dates: [Monday, next Monday)
	winStart           []time.Time // MTBF window start instant
	winStartDate       []time.Time // MTBF window start date
}

func newPeriods(p Params) periods {
	var ps periods
	for _, w := range []Week{p.Week, p.Week.Add(-1)} {
		s, e := w.Bounds(p.Location)
		ps.start = append(ps.start, s)
		ps.end = append(ps.end, e)
		ps.startDate = append(ps.startDate, w.Monday())
		ps.endDate = append(ps.endDate, w.Monday().AddDate(0, 0, 7))
		wsd := w.Monday().AddDate(0, 0, 7-p.MTBFWindowDays)
		ps.winStartDate = append(ps.winStartDate, wsd)
		ps.winStart = append(ps.winStart, time.Date(wsd.Year(), wsd.Month(), wsd.Day(), 0, 0, 0, 0, p.Location))
	}
	return ps
}

// periodsCTE turns $1..$6 into the table p(i, s, e, s_date, e_date, ws,
// ws_date), one row per reported week.
const periodsCTE = `p AS (
	SELECT * FROM unnest($1::timestamptz[], $2::timestamptz[], $3::date[], $4::date[], $5::timestamptz[], $6::date[])
	         WITH ORDINALITY AS p(s, e, s_date, e_date, ws, ws_date, i))`

func (ps periods) args() []any {
	return []any{ps.start, ps.end, ps.startDate, ps.endDate, ps.winStart, ps.winStartDate}
}

// The queries. Each is one set-based statement over both weeks. Cancelled
// work orders count as opened but never as completed, open or failed.

// Work-order counts. A work order is completed at completed_at, in
// progress at the end of a week if started before and not completed
// before it, pending if neither started nor completed; it is open
// (pending or in progress) only if created before the week's end. Old
// work orders completed before the previous week began cannot count and are
// skipped.
const workOrdersSQL = `WITH ` + periodsCTE + `,
w AS (
	SELECT wo.*, (wo.status <> 'CANCELLED' AND NOT (wo.status = 'COMPLETED' AND wo.completed_at IS NULL)) AS countable
	FROM work_orders wo
	WHERE wo.created_at < (SELECT max(e) FROM p)
	  AND (wo.completed_at IS NULL OR wo.completed_at >= (SELECT min(s) FROM p) OR wo.created_at >= (SELECT min(s) FROM p))
)
SELECT p.i,
	count(*) FILTER (WHERE w.created_at >= p.s AND w.created_at < p.e),
	count(*) FILTER (WHERE w.created_at >= p.s AND w.created_at < p.e AND w.priority = 'CRITICAL'),
	count(*) FILTER (WHERE w.created_at >= p.s AND w.created_at < p.e AND w.priority = 'HIGH'),
	count(*) FILTER (WHERE w.created_at >= p.s AND w.created_at < p.e AND w.priority = 'MEDIUM'),
	count(*) FILTER (WHERE w.created_at >= p.s AND w.created_at < p.e AND w.priority = 'LOW'),
	count(*) FILTER (WHERE w.countable AND w.completed_at >= p.s AND w.completed_at < p.e),
	count(*) FILTER (WHERE w.countable AND w.completed_at >= p.s AND w.completed_at < p.e AND w.type = 'PREVENTIVE'),
	count(*) FILTER (WHERE w.countable AND w.created_at < p.e AND (w.completed_at IS NULL OR w.completed_at >= p.e)
	                   AND w.started_at < p.e),
	count(*) FILTER (WHERE w.countable AND w.created_at < p.e AND (w.completed_at IS NULL OR w.completed_at >= p.e)
	                   AND (w.started_at IS NULL OR w.started_at >= p.e)),
	count(*) FILTER (WHERE w.countable AND w.created_at < p.e AND (w.completed_at IS NULL OR w.completed_at >= p.e)
	                   AND w.due_date < p.e_date)
FROM p CROSS JOIN w
GROUP BY p.i`

// MTTR: mean repair hours of corrective work orders completed in the week,
// per vehicle type and overall (GROUPING SETS). A work order without
// repair_hours counts the hours from started_at to completed_at instead
// (exports from other CMMSs often record only the timestamps); one with
// neither is left out.
const mttrSQL = `WITH ` + periodsCTE + `
SELECT p.i, grouping(a.vehicle_type) = 1, coalesce(a.vehicle_type, ''), count(*),
	avg(coalesce(w.repair_hours, extract(epoch FROM w.completed_at - w.started_at) / 3600))::float8
FROM p
JOIN work_orders w ON w.completed_at >= p.s AND w.completed_at < p.e
JOIN assets a ON a.id = w.asset_id
WHERE w.type = 'CORRECTIVE' AND w.status <> 'CANCELLED' AND (w.repair_hours IS NOT NULL OR w.started_at IS NOT NULL)
GROUP BY GROUPING SETS ((p.i, a.vehicle_type), (p.i))`

// MTBF inputs per vehicle type over the trailing window [ws, e): operating
// days are each asset's calendar days in service within the window (from
// its commissioning date, or the window's start if later, to the window's
// end); failures are corrective work orders opened within the window.
// Retired assets are left out (their retirement date is not recorded).
const mtbfSQL = `WITH ` + periodsCTE + `,
ops AS (
	SELECT p.i, a.vehicle_type,
	       count(*) FILTER (WHERE a.commissioned_date < p.e_date) AS assets,
	       sum(greatest(0, p.e_date - greatest(a.commissioned_date, p.ws_date))) AS days
	FROM p CROSS JOIN assets a
	WHERE a.status <> 'RETIRED'
	GROUP BY p.i, a.vehicle_type
),
fails AS (
	SELECT p.i, a.vehicle_type, count(*) AS failures
	FROM p
	JOIN work_orders w ON w.type = 'CORRECTIVE' AND w.created_at >= p.ws AND w.created_at < p.e
	JOIN assets a ON a.id = w.asset_id
	WHERE a.status <> 'RETIRED' AND w.status <> 'CANCELLED'
	GROUP BY p.i, a.vehicle_type
)
SELECT ops.i, ops.vehicle_type, ops.assets, ops.days::float8, coalesce(fails.failures, 0)
FROM ops LEFT JOIN fails USING (i, vehicle_type)`

// PM compliance: preventive work orders due in the week; on time when
// completed on or before the due date (a day in the report's time zone, $7).
const pmSQL = `WITH ` + periodsCTE + `
SELECT p.i, count(w.id),
       count(w.id) FILTER (WHERE w.completed_at IS NOT NULL AND (w.completed_at AT TIME ZONE $7)::date <= w.due_date)
FROM p
LEFT JOIN work_orders w ON w.type = 'PREVENTIVE' AND w.due_date >= p.s_date AND w.due_date < p.e_date
                       AND w.status <> 'CANCELLED'
GROUP BY p.i`

// ML: each non-retired asset's latest prediction made before the week's end.
const mlSQL = `WITH ` + periodsCTE + `,
latest AS (
	SELECT DISTINCT ON (p.i, m.asset_id) p.i, m.failure_probability, m.risk_level
	FROM p
	JOIN ml_predictions m ON m.predicted_at < p.e
	JOIN assets a ON a.id = m.asset_id AND a.status <> 'RETIRED'
	ORDER BY p.i, m.asset_id, m.predicted_at DESC, m.id DESC
)
SELECT i, count(*), count(*) FILTER (WHERE risk_level = 'high'), count(*) FILTER (WHERE risk_level = 'critical'),
       avg(failure_probability)::float8
FROM latest GROUP BY i`

const topSQL = `
SELECT a.asset_tag, a.name, a.vehicle_type, l.risk_level, l.failure_probability, l.model_version, l.predicted_at
FROM (
	SELECT DISTINCT ON (m.asset_id) m.asset_id, m.failure_probability, m.risk_level, m.model_version, m.predicted_at
	FROM ml_predictions m
	WHERE m.predicted_at < $1
	ORDER BY m.asset_id, m.predicted_at DESC, m.id DESC
) l
JOIN assets a ON a.id = l.asset_id AND a.status <> 'RETIRED'
ORDER BY l.failure_probability DESC, a.asset_tag
LIMIT $2`

const inventorySQL = `
SELECT count(*), count(*) FILTER (WHERE quantity <= reorder_level), coalesce(sum(quantity * unit_cost), 0)::float8
FROM inventory_items`

// Trend: work orders opened and completed per week; $1 holds the weeks'
// boundaries, width_bucket numbers the weeks from 1.
const trendSQL = `
SELECT b, sum(o)::bigint, sum(c)::bigint FROM (
	SELECT width_bucket(created_at, $1::timestamptz[]) AS b, 1 AS o, 0 AS c
	FROM work_orders WHERE created_at >= $2 AND created_at < $3
	UNION ALL
	SELECT width_bucket(completed_at, $1::timestamptz[]), 0, 1
	FROM work_orders WHERE completed_at >= $2 AND completed_at < $3 AND status <> 'CANCELLED'
) x GROUP BY b`

// Queries lists every statement Compute runs, for the benchmark's baseline.
func Queries() []string {
	return []string{workOrdersSQL, mttrSQL, mtbfSQL, pmSQL, mlSQL, topSQL, inventorySQL, trendSQL,
		healthScoringsSQL, healthPerformanceSQL}
}

// trendBounds is the trend's weeks, oldest first, and their boundaries
// (one more than the weeks).
func trendBounds(p Params) ([]Week, []time.Time) {
	weeks := make([]Week, p.TrendWeeks)
	bounds := make([]time.Time, 0, p.TrendWeeks+1)
	for k := range weeks {
		weeks[k] = p.Week.Add(k - p.TrendWeeks + 1)
		s, _ := weeks[k].Bounds(p.Location)
		bounds = append(bounds, s)
	}
	_, end := p.Week.Bounds(p.Location)
	return weeks, append(bounds, end)
}

// BaselineArgs is the arguments of each statement of Queries, in order: the
// benchmark runs the statements alone as its baseline.
func BaselineArgs(p Params) [][]any {
	p, _ = p.normalized()
	ps := newPeriods(p)
	args := ps.args()
	_, bounds := trendBounds(p)
	return [][]any{args, args, args, append(slices.Clone(args), p.Location.String()), args,
		{ps.end[0], p.TopN}, nil, {bounds, bounds[0], bounds[len(bounds)-1]},
		{ps.end[0]}, {ps.end[0], "", []string{}}}
}

// Compute runs the KPI queries for p.Week and the week before it.
func Compute(ctx context.Context, q Querier, p Params) (*Report, error) {
	p, err := p.normalized()
	if err != nil {
		return nil, err
	}
	c := newComputation(ctx, q, p)
	for _, step := range []struct {
		name string
		fn   func() error
	}{
		{"work orders", c.workOrders},
		{"mttr", c.mttr},
		{"mtbf", c.mtbf},
		{"pm compliance", c.pmCompliance},
		{"ml", c.ml},
		{"top risk", c.topRisk},
		{"inventory", c.inventory},
		{"trend", c.trend},
		{"model health", c.health},
	} {
		if err := step.fn(); err != nil {
			return nil, fmt.Errorf("kpi: %s: %w", step.name, err)
		}
	}
	for _, pd := range c.per {
		pd.PMCompliance = Percent(pd.PMOnTime, pd.PMDue)
		pd.PlannedPct = Percent(pd.WorkOrders.CompletedPreventive, pd.WorkOrders.Completed)
		slices.SortFunc(pd.ByType, func(a, b TypeFigures) int { return cmp.Compare(a.VehicleType, b.VehicleType) })
	}
	return c.r, nil
}

// computation is one run of Compute: its inputs and the report it fills,
// one method per query.
type computation struct {
	ctx  context.Context
	q    Querier
	p    Params // normalized
	ps   periods
	args []any // ps.args()
	r    *Report
	per  []*Period // &r.Current, &r.Previous: index i-1 of the queries' p.i
}

func newComputation(ctx context.Context, q Querier, p Params) *computation {
	ps := newPeriods(p)
	r := &Report{
		Week: p.Week, TimeZone: p.Location.String(), MTBFWindowDays: p.MTBFWindowDays, GeneratedAt: p.Now, Drift: p.Drift,
	}
	per := []*Period{&r.Current, &r.Previous}
	for i, w := range []Week{p.Week, p.Week.Add(-1)} {
		*per[i] = Period{Week: w, Start: ps.start[i], End: ps.end[i], WorkOrders: WorkOrders{OpenedByPriority: map[string]int64{}}}
	}
	return &computation{ctx: ctx, q: q, p: p, ps: ps, args: ps.args(), r: r, per: per}
}

// at is the period of a query's period index i (1 = current week).
func (c *computation) at(i int64) (*Period, error) {
	if i < 1 || i > 2 {
		return nil, fmt.Errorf("kpi: period index %d", i)
	}
	return c.per[i-1], nil
}

func (c *computation) workOrders() error {
	return each(c.ctx, c.q, workOrdersSQL, c.args, func(row pgx.Rows) error {
		var i int64
		var w WorkOrders
		var crit, high, med, low int64
		if err := row.Scan(&i, &w.Opened, &crit, &high, &med, &low, &w.Completed, &w.CompletedPreventive,
			&w.InProgress, &w.Pending, &w.Overdue); err != nil {
			return err
		}
		w.OpenedByPriority = map[string]int64{"CRITICAL": crit, "HIGH": high, "MEDIUM": med, "LOW": low}
		pd, err := c.at(i)
		if err == nil {
			pd.WorkOrders = w
		}
		return err
	})
}

func (c *computation) mttr() error {
	return each(c.ctx, c.q, mttrSQL, c.args, func(row pgx.Rows) error {
		var i, n int64
		var all bool
		var vt string
		var mean *float64
		if err := row.Scan(&i, &all, &vt, &n, &mean); err != nil {
			return err
		}
		pd, err := c.at(i)
		if err != nil {
			return err
		}
		m := NA
		if mean != nil {
			m = Some(*mean)
		}
		if all {
			pd.Repairs, pd.MTTR = n, m
			return nil
		}
		f := pd.typeFigures(vt)
		f.Repairs, f.MTTR = n, m
		return nil
	})
}

func (c *computation) mtbf() error {
	return each(c.ctx, c.q, mtbfSQL, c.args, func(row pgx.Rows) error {
		var i, assets, failures int64
		var vt string
		var days float64
		if err := row.Scan(&i, &vt, &assets, &days, &failures); err != nil {
			return err
		}
		pd, err := c.at(i)
		if err != nil {
			return err
		}
		f := pd.typeFigures(vt)
		f.Assets, f.OperatingDays, f.Failures = assets, days, failures
		f.MTBF = MTBF(days, failures)
		return nil
	})
}

func (c *computation) pmCompliance() error {
	return each(c.ctx, c.q, pmSQL, append(c.args, c.p.Location.String()), func(row pgx.Rows) error {
		var i, due, onTime int64
		if err := row.Scan(&i, &due, &onTime); err != nil {
			return err
		}
		pd, err := c.at(i)
		if err == nil {
			pd.PMDue, pd.PMOnTime = due, onTime
		}
		return err
	})
}

func (c *computation) ml() error {
	return each(c.ctx, c.q, mlSQL, c.args, func(row pgx.Rows) error {
		var i int64
		var m ML
		var avg *float64
		if err := row.Scan(&i, &m.Assets, &m.High, &m.Critical, &avg); err != nil {
			return err
		}
		if avg != nil {
			m.AvgProbability = Some(*avg)
		}
		pd, err := c.at(i)
		if err == nil {
			pd.ML = m
		}
		return err
	})
}

func (c *computation) topRisk() error {
	return each(c.ctx, c.q, topSQL, []any{c.ps.end[0], c.p.TopN}, func(row pgx.Rows) error {
		var t Prediction
		if err := row.Scan(&t.AssetTag, &t.Name, &t.VehicleType, &t.RiskLevel, &t.Probability, &t.ModelVer, &t.PredictedAt); err != nil {
			return err
		}
		c.r.Current.ML.Top = append(c.r.Current.ML.Top, t)
		return nil
	})
}

func (c *computation) inventory() error {
	inv := &c.r.Inventory
	return c.q.QueryRow(c.ctx, inventorySQL).Scan(&inv.Items, &inv.AtOrBelowReorder, &inv.StockValue)
}

func (c *computation) trend() error {
	weeks, bounds := trendBounds(c.p)
	end := bounds[len(bounds)-1]
	c.r.Trend = make([]TrendPoint, len(weeks))
	for k, w := range weeks {
		c.r.Trend[k].Week = w
	}
	return each(c.ctx, c.q, trendSQL, []any{bounds, bounds[0], end}, func(row pgx.Rows) error {
		var b, o, n int64
		if err := row.Scan(&b, &o, &n); err != nil {
			return err
		}
		if b < 1 || int(b) > len(weeks) {
			return fmt.Errorf("trend bucket %d", b)
		}
		c.r.Trend[b-1].Opened, c.r.Trend[b-1].Completed = o, n
		return nil
	})
}

// typeFigures returns (adding it if needed) vehicle type t's figures.
func (p *Period) typeFigures(t string) *TypeFigures {
	for i := range p.ByType {
		if p.ByType[i].VehicleType == t {
			return &p.ByType[i]
		}
	}
	p.ByType = append(p.ByType, TypeFigures{VehicleType: t})
	return &p.ByType[len(p.ByType)-1]
}

func each(ctx context.Context, q Querier, sql string, args []any, fn func(pgx.Rows) error) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
