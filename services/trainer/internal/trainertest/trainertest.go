// Package trainertest builds feature files for the trainer's tests and
// benchmark from a synthetic fleet (libs/fleet) in a test database. Its
// feature builder is a small, direct implementation of the definitions in
// libs/features, written for tests; featurejob's engines are the production
// implementation.
package trainertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"

	"github.com/cmmsflow/cmmsflow/libs/features"
)

type asset struct {
	id           int64
	typ, status  string
	commissioned time.Time
	meter, hours float64
	lastWO       time.Time
	orders       []order
}

type order struct {
	typ, status, priority string
	created               time.Time
	completed             *time.Time
	due                   *time.Time
	repairHours           *float64
}

// Options shape Build.
type Options struct {
	AsOf            time.Time // the run's snapshot date (day); scoring rows are taken here
	Snapshots       int       // training snapshot dates, every Every days back from AsOf − LabelWindowDays
	Every           int       // days between snapshots, default 28
	LookbackDays    int       // default features.DefaultLookbackDays
	LabelWindowDays int       // default features.DefaultLabelWindowDays
}

// Build computes the training rows (labelled, one per asset in service at
// each snapshot) and the scoring rows (one per ACTIVE or IN_MAINTENANCE
// asset at AsOf, unlabelled) from the CMMS tables in pool.
func Build(ctx context.Context, pool *pgxpool.Pool, o Options) (training, scoring []features.Row, err error) {
	if o.Every == 0 {
		o.Every = 28
	}
	if o.LookbackDays == 0 {
		o.LookbackDays = features.DefaultLookbackDays
	}
	if o.LabelWindowDays == 0 {
		o.LabelWindowDays = features.DefaultLabelWindowDays
	}
	asOf := day(o.AsOf)
	assets, err := load(ctx, pool)
	if err != nil {
		return nil, nil, err
	}
	last := asOf.AddDate(0, 0, -o.LabelWindowDays)
	for k := o.Snapshots - 1; k >= 0; k-- {
		s := last.AddDate(0, 0, -k*o.Every)
		for _, a := range assets {
			// In service at s: commissioned before it, and either still in
			// service or with work after s (retired and laid-up vehicles
			// have none).
			inService := a.status == "ACTIVE" || a.status == "IN_MAINTENANCE" || !a.lastWO.Before(s)
			if !a.commissioned.Before(s) || !inService {
				continue
			}
			r := row(a, s, asOf, o.LookbackDays)
			r.Label = 0
			end := s.AddDate(0, 0, o.LabelWindowDays)
			for _, w := range a.orders {
				if w.typ == "CORRECTIVE" && !w.created.Before(s) && w.created.Before(end) {
					r.Label = 1
					break
				}
			}
			training = append(training, r)
		}
	}
	for _, a := range assets {
		if a.status != "ACTIVE" && a.status != "IN_MAINTENANCE" {
			continue
		}
		r := row(a, asOf, asOf, o.LookbackDays)
		r.Label = features.Unlabelled
		scoring = append(scoring, r)
	}
	return training, scoring, nil
}

func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func days(from, to time.Time) int32 {
	d := int32(to.Sub(from).Hours() / 24)
	return max(d, 0)
}

func row(a *asset, s, asOf time.Time, lookback int) features.Row {
	r := features.Row{
		AssetID: a.id, VehicleType: a.typ, SnapshotDate: s.Format(features.DateLayout),
		AssetAgeDays: days(a.commissioned, s),
	}
	from := s.AddDate(0, 0, -lookback)
	var lastPM time.Time
	var repairSum float64
	repairN := 0
	for _, w := range a.orders {
		if w.typ == "PREVENTIVE" && w.completed != nil && w.completed.Before(s) && w.completed.After(lastPM) {
			lastPM = *w.completed
		}
		if w.typ == "PREVENTIVE" && w.due != nil && w.created.Before(s) && !w.due.Before(from) && w.due.Before(s) {
			if w.completed == nil || !w.completed.Before(w.due.AddDate(0, 0, 1)) {
				r.MissedMaintenance++
			}
		}
		if w.created.Before(from) || !w.created.Before(s) {
			continue
		}
		r.TotalWorkOrders++
		done := w.completed != nil && w.completed.Before(s)
		if done {
			r.CompletedWorkOrders++
			if w.repairHours != nil {
				repairSum += *w.repairHours
				repairN++
			}
		}
		if w.priority == "HIGH" || w.priority == "CRITICAL" {
			r.HighPriorityWorkOrders++
		}
		if w.priority == "CRITICAL" {
			r.CriticalWorkOrders++
		}
		if w.typ == "CORRECTIVE" {
			r.CorrectiveWorkOrders++
		}
	}
	if lastPM.IsZero() {
		r.DaysSinceLastMaintenance = r.AssetAgeDays
	} else {
		r.DaysSinceLastMaintenance = days(day(lastPM), s)
	}
	if repairN > 0 {
		r.AvgRepairHours = repairSum / float64(repairN)
	}
	if r.TotalWorkOrders > 0 {
		r.WorkOrderCompletionRate = float64(r.CompletedWorkOrders) / float64(r.TotalWorkOrders)
		r.HighPriorityRatio = float64(r.HighPriorityWorkOrders) / float64(r.TotalWorkOrders)
	}
	if ageNow := days(a.commissioned, asOf); ageNow > 0 {
		f := float64(r.AssetAgeDays) / float64(ageNow)
		r.MeterReading, r.EngineHours = a.meter*f, a.hours*f
	}
	return r
}

func load(ctx context.Context, pool *pgxpool.Pool) ([]*asset, error) {
	rows, err := pool.Query(ctx, `SELECT id, vehicle_type, status, commissioned_date, meter_reading::float8, engine_hours::float8 FROM assets ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("trainertest: assets: %w", err)
	}
	var assets []*asset
	byID := map[int64]*asset{}
	for rows.Next() {
		a := &asset{}
		if err := rows.Scan(&a.id, &a.typ, &a.status, &a.commissioned, &a.meter, &a.hours); err != nil {
			return nil, err
		}
		assets = append(assets, a)
		byID[a.id] = a
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = pool.Query(ctx, `SELECT asset_id, type, status, priority, created_at, completed_at, due_date, repair_hours::float8 FROM work_orders ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("trainertest: work orders: %w", err)
	}
	for rows.Next() {
		var id int64
		var w order
		if err := rows.Scan(&id, &w.typ, &w.status, &w.priority, &w.created, &w.completed, &w.due, &w.repairHours); err != nil {
			return nil, err
		}
		a := byID[id]
		a.orders = append(a.orders, w)
		if w.created.After(a.lastWO) {
			a.lastWO = w.created
		}
	}
	return assets, rows.Err()
}

// Parquet encodes rows as a features file.
func Parquet(rows []features.Row) ([]byte, error) {
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteParquet streams rows into w as a features file, in row groups of
// 64Ki rows (a large synthetic set need not be held in memory), and
// returns how many it wrote.
func WriteParquet(w io.Writer, rows iter.Seq[features.Row]) (int64, error) {
	pw := parquet.NewGenericWriter[features.Row](w, parquet.MaxRowsPerRowGroup(64*1024), parquet.Compression(&parquet.Snappy))
	var n int64
	batch := make([]features.Row, 0, 1024)
	flush := func() error {
		_, err := pw.Write(batch)
		n += int64(len(batch))
		batch = batch[:0]
		return err
	}
	for r := range rows {
		if batch = append(batch, r); len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := flush(); err != nil {
		return n, err
	}
	return n, pw.Close()
}
