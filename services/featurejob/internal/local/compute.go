package local

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cmmsflow/cmmsflow/libs/features"
)

// The feature computation, free of I/O: the definitions are in the
// libs/features package comment; spark/features.py is the same in PySpark.

// Asset is an asset as the computation needs it.
type Asset struct {
	ID           int64
	VehicleType  string
	Status       string
	Commissioned int32 // day
	End          int32 // retirement day (a RETIRED asset's latest plan end_date); noEnd when unknown
	Meter, Hours float64
}

const noEnd = math.MaxInt32

// Priorities.
const (
	prioLow uint8 = iota
	prioMedium
	prioHigh
	prioCritical
)

// WorkOrder is a work order as the computation needs it.
type WorkOrder struct {
	Asset      int32 // index into the assets
	Created    int64 // us
	Completed  int64 // us; never when not completed
	Due        int32 // day; noDue when none
	Preventive bool
	Corrective bool
	Priority   uint8
	HasRepair  bool
	Repair     float64
}

const (
	never int64 = math.MaxInt64
	noDue int32 = math.MinInt32
)

// Dataset is the raw tables, indexed. Assets are sorted by ID; WorkOrders
// by asset, then creation.
type Dataset struct {
	Assets     []Asset
	WorkOrders []WorkOrder
	byAsset    [][]WorkOrder
	earliest   int64 // first work order creation, us
}

// Params of one computation.
type Params struct {
	SnapshotDate    int32 // day
	LookbackDays    int
	LabelWindowDays int
}

// ErrNoSnapshots is returned when the history is too short for one labelled
// snapshot.
var ErrNoSnapshots = errors.New("no training snapshots")

// Index sorts the dataset and groups the work orders by asset.
func (d *Dataset) Index() {
	slices.SortFunc(d.WorkOrders, func(a, b WorkOrder) int {
		return cmp.Or(cmp.Compare(a.Asset, b.Asset), cmp.Compare(a.Created, b.Created))
	})
	d.byAsset = make([][]WorkOrder, len(d.Assets))
	d.earliest = never
	for i := 0; i < len(d.WorkOrders); {
		j := i
		for j < len(d.WorkOrders) && d.WorkOrders[j].Asset == d.WorkOrders[i].Asset {
			d.earliest = min(d.earliest, d.WorkOrders[j].Created)
			j++
		}
		d.byAsset[d.WorkOrders[i].Asset] = d.WorkOrders[i:j:j]
		i = j
	}
}

// Snapshots are the training snapshot days: the first of every month from
// the first one a full lookback window after the earliest work order, to the
// last one whose label window ends by the snapshot date.
func (d *Dataset) Snapshots(p Params) []int32 {
	if d.earliest == never {
		return nil
	}
	first := features.DayTime(floorDay(d.earliest) + int32(p.LookbackDays))
	s := first
	if s.Day() != 1 {
		s = s.AddDate(0, 1, 1-s.Day())
	}
	var out []int32
	for ; features.Day(s)+int32(p.LabelWindowDays) <= p.SnapshotDate; s = s.AddDate(0, 1, 0) {
		out = append(out, features.Day(s))
	}
	return out
}

// Training calls emit with the labelled rows, snapshot by snapshot, assets
// in ID order: every asset commissioned before the snapshot and not retired
// before it.
func (d *Dataset) Training(p Params, emit func(*features.Row) error) (snapshots int, err error) {
	snaps := d.Snapshots(p)
	if len(snaps) == 0 {
		return 0, fmt.Errorf("%w: the work orders start %s; a snapshot needs %d days of history before it and its %d-day label window must end by %s",
			ErrNoSnapshots, fmtMicros(d.earliest), p.LookbackDays, p.LabelWindowDays, features.FormatDate(p.SnapshotDate))
	}
	var r features.Row
	for _, s := range snaps {
		for i := range d.Assets {
			a := &d.Assets[i]
			if a.Commissioned >= s || a.End < s {
				continue
			}
			d.row(&r, i, s, p, true)
			if err := emit(&r); err != nil {
				return 0, err
			}
		}
	}
	return len(snaps), nil
}

// Scoring is one unlabelled row per ACTIVE asset at the snapshot date.
func (d *Dataset) Scoring(p Params) []features.Row {
	var out []features.Row
	for i := range d.Assets {
		if d.Assets[i].Status != "ACTIVE" {
			continue
		}
		var r features.Row
		d.row(&r, i, p.SnapshotDate, p, false)
		out = append(out, r)
	}
	return out
}

// row computes asset i's features at snapshot day s.
func (d *Dataset) row(r *features.Row, i int, s int32, p Params, labelled bool) {
	a := &d.Assets[i]
	c := countWorkOrders(d.byAsset[i], s, p, labelled)
	age := max(0, s-a.Commissioned)
	*r = features.Row{
		AssetID:                a.ID,
		VehicleType:            a.VehicleType,
		SnapshotDate:           features.FormatDate(s),
		AssetAgeDays:           age,
		TotalWorkOrders:        c.total,
		CompletedWorkOrders:    c.completed,
		HighPriorityWorkOrders: c.high,
		CriticalWorkOrders:     c.critical,
		CorrectiveWorkOrders:   c.corrective,
		MissedMaintenance:      c.missed,
		MeterReading:           a.Meter,
		EngineHours:            a.Hours,
		Label:                  features.Unlabelled,
	}
	if labelled {
		r.Label = c.label
	}
	if c.lastMaint == math.MinInt64 {
		r.DaysSinceLastMaintenance = age
	} else {
		r.DaysSinceLastMaintenance = s - floorDay(c.lastMaint)
	}
	if c.repairs > 0 {
		r.AvgRepairHours = c.repairSum / float64(c.repairs)
	}
	if c.total > 0 {
		r.WorkOrderCompletionRate = float64(c.completed) / float64(c.total)
		r.HighPriorityRatio = float64(c.high) / float64(c.total)
	}
	// Meters at s, assuming constant use since commissioning (the tables
	// keep only the current reading, taken at the snapshot date).
	if ageNow := p.SnapshotDate - a.Commissioned; ageNow > 0 && age < ageNow {
		r.MeterReading = a.Meter * float64(age) / float64(ageNow)
		r.EngineHours = a.Hours * float64(age) / float64(ageNow)
	}
}

// woCounts are an asset's work-order figures at a snapshot.
type woCounts struct {
	total, completed, high, critical, corrective int32 // created in the lookback window
	missed                                       int32 // preventive, due in the window, not completed by the due day
	repairs                                      int32 // completed with repair hours
	repairSum                                    float64
	lastMaint                                    int64 // last preventive completion, us; math.MinInt64 if none
	label                                        int32
}

// countWorkOrders counts an asset's work orders ws at snapshot day s: those
// created in the lookback window, the preventive ones missed in it, the
// last preventive maintenance before s and, if labelled, the label.
func countWorkOrders(ws []WorkOrder, s int32, p Params, labelled bool) woCounts {
	sUS := int64(s) * features.MicrosPerDay
	from := sUS - int64(p.LookbackDays)*features.MicrosPerDay
	dueFrom := s - int32(p.LookbackDays)
	labelTo := sUS + int64(p.LabelWindowDays)*features.MicrosPerDay

	var total, completed, high, critical, corrective, missed, repairs int32
	var repairSum float64
	lastMaint := int64(math.MinInt64)
	label := int32(0)
	for _, w := range ws {
		if w.Created >= sUS {
			if labelled && w.Corrective && w.Created < labelTo {
				label = 1
			}
			continue
		}
		// Created before s from here on.
		if w.Preventive {
			if w.Completed < sUS {
				lastMaint = max(lastMaint, w.Completed)
			}
			if w.Due != noDue && w.Due >= dueFrom && w.Due < s &&
				w.Completed >= int64(w.Due+1)*features.MicrosPerDay {
				missed++
			}
		}
		if w.Created < from {
			continue
		}
		total++
		if w.Priority >= prioHigh {
			high++
		}
		if w.Priority == prioCritical {
			critical++
		}
		if w.Corrective {
			corrective++
		}
		if w.Completed < sUS {
			completed++
			if w.HasRepair {
				repairs++
				repairSum += w.Repair
			}
		}
	}
	// Counted in locals, not in the result's fields: the loop is hot.
	return woCounts{total: total, completed: completed, high: high, critical: critical, corrective: corrective,
		missed: missed, repairs: repairs, repairSum: repairSum, lastMaint: lastMaint, label: label}
}

func floorDay(us int64) int32 {
	d := us / features.MicrosPerDay
	if us%features.MicrosPerDay < 0 {
		d--
	}
	return int32(d)
}

func fmtMicros(us int64) string {
	if us == never {
		return "nowhere (there are none)"
	}
	return features.FormatDate(floorDay(us))
}
