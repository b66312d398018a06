package trainertest

import (
	"iter"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/features"
)

// Synthetic is the training rows featurejob would build for a fleet of
// assets vehicles with woPerAsset work orders each over the three years
// before asOf, without building the fleet: one row per asset in service at
// each monthly snapshot (the first of the month, from a year after the
// history starts to the last whose label window ends by asOf, as
// featurejob's engines take them; 22 for a date early in a month), its
// figures drawn around the asset's own rate of work orders, and a label
// that depends on its age, its neglected maintenance and its corrective
// work (about a third positive), so a model has something to learn. The
// rows come asset by asset within each snapshot, in snapshot order, and
// are the same for the same arguments.
func Synthetic(assets, woPerAsset int, asOf time.Time) iter.Seq[features.Row] {
	start := day(asOf).AddDate(-3, 0, 0)
	first := start.AddDate(0, 0, features.DefaultLookbackDays)
	if first.Day() != 1 {
		first = first.AddDate(0, 1, 1-first.Day())
	}
	perYear := float64(woPerAsset) / 3
	return func(yield func(features.Row) bool) {
		rng := rand.New(rand.NewPCG(uint64(assets), uint64(woPerAsset)))
		commissioned := make([]time.Time, assets)
		rate := make([]float64, assets) // work orders a year
		for i := range assets {
			commissioned[i] = start.AddDate(0, 0, 365-rng.IntN(4000))
			rate[i] = perYear * math.Exp(0.4*rng.NormFloat64())
		}
		for s := first; !s.AddDate(0, 0, features.DefaultLabelWindowDays).After(asOf); s = s.AddDate(0, 1, 0) {
			for i := range assets {
				if !commissioned[i].Before(s) {
					continue
				}
				if !yield(synthRow(rng, int64(i+1), s, commissioned[i], rate[i])) {
					return
				}
			}
		}
	}
}

// synthRow is one asset's row at snapshot s.
func synthRow(rng *rand.Rand, id int64, s, commissioned time.Time, rate float64) features.Row {
	count := func(mean float64) int32 { return int32(max(0, math.Round(mean+math.Sqrt(mean)*rng.NormFloat64()))) }
	r := features.Row{AssetID: id, VehicleType: features.VehicleTypes[id%6], SnapshotDate: s.Format(features.DateLayout),
		AssetAgeDays: days(commissioned, s), DaysSinceLastMaintenance: int32(rng.ExpFloat64() * 40),
		TotalWorkOrders: count(rate)}
	total := float64(r.TotalWorkOrders)
	r.CompletedWorkOrders = min(r.TotalWorkOrders, count(0.9*total))
	r.HighPriorityWorkOrders = min(r.TotalWorkOrders, count(0.5*total))
	r.CriticalWorkOrders = min(r.HighPriorityWorkOrders, count(0.25*total))
	r.CorrectiveWorkOrders = min(r.TotalWorkOrders, count(2*total/3))
	r.MissedMaintenance = count(0.02 * total)
	r.AvgRepairHours = 10 * rng.Float64()
	if r.TotalWorkOrders > 0 {
		r.WorkOrderCompletionRate = float64(r.CompletedWorkOrders) / total
		r.HighPriorityRatio = float64(r.HighPriorityWorkOrders) / total
	}
	age := float64(r.AssetAgeDays) / 365
	r.MeterReading, r.EngineHours = age*(15000+3000*rng.NormFloat64()), age*(500+100*rng.NormFloat64())
	logit := -3.2 + 0.25*age + float64(r.DaysSinceLastMaintenance)/80 + 0.5*float64(r.MissedMaintenance) +
		0.6*(float64(r.CorrectiveWorkOrders)/max(1, 2*rate/3)-1) + rng.NormFloat64()
	if rng.Float64() < 1/(1+math.Exp(-logit)) {
		r.Label = 1
	}
	return r
}
