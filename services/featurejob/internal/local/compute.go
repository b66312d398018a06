package local

import (
	"errors"
	"fmt"
	"math"

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
	Asset      int32  // index into the assets
	order      uint32 // place in its sort run, read order (sort.go)
	Created    int64  // us
	Completed  int64  // us; never when not completed
	Due        int32  // day; noDue when none
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

// Params of one computation.
type Params struct {
	SnapshotDate    int32 // day
	LookbackDays    int
	LabelWindowDays int
}

// ErrNoSnapshots is returned when the history is too short for one labelled
// snapshot.
var ErrNoSnapshots = errors.New("no training snapshots")

// Snapshots are the training snapshot days: the first of every month from
// the first one a full lookback window after the earliest work order
// creation (us; never when there are none), to the last one whose label
// window ends by the snapshot date. There are none (ErrNoSnapshots) when the
// history is too short.
func Snapshots(earliest int64, p Params) ([]int32, error) {
	var out []int32
	if earliest != never {
		first := features.DayTime(floorDay(earliest) + int32(p.LookbackDays))
		s := first
		if s.Day() != 1 {
			s = s.AddDate(0, 1, 1-s.Day())
		}
		for ; features.Day(s)+int32(p.LabelWindowDays) <= p.SnapshotDate; s = s.AddDate(0, 1, 0) {
			out = append(out, features.Day(s))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the work orders start %s; a snapshot needs %d days of history before it and its %d-day label window must end by %s",
			ErrNoSnapshots, fmtMicros(earliest), p.LookbackDays, p.LabelWindowDays, features.FormatDate(p.SnapshotDate))
	}
	return out, nil
}

// AssetCounts computes asset a's figures from its work orders ws (sorted by
// creation): train is called with those of each training snapshot snaps[k]
// the asset is in service at (commissioned before it and not retired before
// it), in snapshot order; scoring, if a is ACTIVE, with those at the run's
// snapshot date.
func AssetCounts(a *Asset, ws []WorkOrder, snaps []int32, p Params, train func(k int, c *Counts) error, scoring func(c *Counts)) error {
	for k, s := range snaps {
		if a.Commissioned >= s || a.End < s {
			continue
		}
		c := countWorkOrders(ws, s, p, true)
		if err := train(k, &c); err != nil {
			return err
		}
	}
	if a.Status == "ACTIVE" {
		c := countWorkOrders(ws, p.SnapshotDate, p, false)
		scoring(&c)
	}
	return nil
}

// Row is asset a's feature row at snapshot day s from its figures c; a
// training row (labelled) or a scoring row.
func Row(r *features.Row, a *Asset, c *Counts, s int32, p Params, labelled bool) {
	age := max(0, s-a.Commissioned)
	*r = features.Row{
		AssetID:                a.ID,
		VehicleType:            a.VehicleType,
		SnapshotDate:           features.FormatDate(s),
		AssetAgeDays:           age,
		TotalWorkOrders:        c.Total,
		CompletedWorkOrders:    c.Completed,
		HighPriorityWorkOrders: c.High,
		CriticalWorkOrders:     c.Critical,
		CorrectiveWorkOrders:   c.Corrective,
		MissedMaintenance:      c.Missed,
		MeterReading:           a.Meter,
		EngineHours:            a.Hours,
		Label:                  features.Unlabelled,
	}
	if labelled {
		r.Label = c.Label
	}
	if c.LastMaint == math.MinInt64 {
		r.DaysSinceLastMaintenance = age
	} else {
		r.DaysSinceLastMaintenance = s - floorDay(c.LastMaint)
	}
	if c.Repairs > 0 {
		r.AvgRepairHours = c.RepairSum / float64(c.Repairs)
	}
	if c.Total > 0 {
		r.WorkOrderCompletionRate = float64(c.Completed) / float64(c.Total)
		r.HighPriorityRatio = float64(c.High) / float64(c.Total)
	}
	// Meters at s, assuming constant use since commissioning (the tables
	// keep only the current reading, taken at the snapshot date).
	if ageNow := p.SnapshotDate - a.Commissioned; ageNow > 0 && age < ageNow {
		r.MeterReading = a.Meter * float64(age) / float64(ageNow)
		r.EngineHours = a.Hours * float64(age) / float64(ageNow)
	}
}

// Counts are an asset's work-order figures at a snapshot.
type Counts struct {
	Total, Completed, High, Critical, Corrective int32 // created in the lookback window
	Missed                                       int32 // preventive, due in the window, not completed by the due day
	Repairs                                      int32 // completed with repair hours
	RepairSum                                    float64
	LastMaint                                    int64 // last preventive completion, us; math.MinInt64 if none
	Label                                        int32
}

// countWorkOrders counts an asset's work orders ws at snapshot day s: those
// created in the lookback window, the preventive ones missed in it, the
// last preventive maintenance before s and, if labelled, the label.
func countWorkOrders(ws []WorkOrder, s int32, p Params, labelled bool) Counts {
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
	return Counts{Total: total, Completed: completed, High: high, Critical: critical, Corrective: corrective,
		Missed: missed, Repairs: repairs, RepairSum: repairSum, LastMaint: lastMaint, Label: label}
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
