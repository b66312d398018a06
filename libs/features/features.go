// Package features is the feature schema of the failure-risk model, shared by
// featurejob (both engines: the local Go engine and the PySpark script run on
// Dataproc), the trainer and the deployer: the raw tables the extractor
// writes (raw.go), and the feature rows featurejob writes to
// runs/<run_id>/features/{training,scoring}.parquet.
//
// A feature row describes one asset at one snapshot date s. Every feature
// uses only data strictly before s (00:00 UTC on s); the label looks at the
// window [s, s+label window). The definitions, which both engines implement
// and the golden fixture in services/featurejob/testdata/golden checks:
//
//   - asset_age_days: days from commissioned_date to s (0 if later).
//   - days_since_last_maintenance: days from the completion day of the asset's
//     last PREVENTIVE work order completed before s to s; the asset's age when
//     it has none.
//   - total_work_orders: work orders created in the lookback window
//     [s - lookback, s) (default 365 days), any type and status.
//   - completed_work_orders: of those, the ones completed before s.
//   - high_priority_work_orders: of those created in the window, priority HIGH
//     or CRITICAL; critical_work_orders: priority CRITICAL.
//   - corrective_work_orders: of those created in the window, type CORRECTIVE.
//   - missed_maintenance: PREVENTIVE work orders created before s whose
//     due_date lies in [s - lookback, s) and that were not completed by the end
//     of their due date (skipped or late): known at s since the due date has
//     passed.
//   - avg_repair_hours: mean repair_hours of the window's work orders
//     completed before s (0 when none).
//   - work_order_completion_rate: completed / total (0 when total is 0).
//   - high_priority_ratio: high priority / total (0 when total is 0).
//   - meter_reading, engine_hours: the asset table keeps only the current
//     readings, so the value at s is estimated assuming constant use since
//     commissioning: current × age at s / age at the run's snapshot date
//     (the current value on scoring rows).
//   - label: 1 if a CORRECTIVE work order was created in [s, s + label
//     window), else 0; Unlabelled (-1) on scoring rows.
package features

import "time"

// Unlabelled is the label of scoring rows.
const Unlabelled int32 = -1

// DateLayout is the format of snapshot dates.
const DateLayout = time.DateOnly

// Defaults of the windows (featurejob's LOOKBACK_DAYS and LABEL_WINDOW_DAYS).
const (
	DefaultLookbackDays    = 365
	DefaultLabelWindowDays = 90
)

// Object names under runs/<run_id>/features/.
const (
	TrainingObject = "training.parquet"
	ScoringObject  = "scoring.parquet"
)

// Row is one asset at one snapshot date. The parquet tags are the output
// schema of both engines; the PySpark script writes the same column names and
// types (int64 → LongType, int32 → IntegerType, float64 → DoubleType, string
// → StringType).
type Row struct {
	AssetID                  int64   `parquet:"asset_id" json:"asset_id"`
	VehicleType              string  `parquet:"vehicle_type" json:"vehicle_type"`
	SnapshotDate             string  `parquet:"snapshot_date" json:"snapshot_date"` // YYYY-MM-DD
	AssetAgeDays             int32   `parquet:"asset_age_days" json:"asset_age_days"`
	DaysSinceLastMaintenance int32   `parquet:"days_since_last_maintenance" json:"days_since_last_maintenance"`
	TotalWorkOrders          int32   `parquet:"total_work_orders" json:"total_work_orders"`
	CompletedWorkOrders      int32   `parquet:"completed_work_orders" json:"completed_work_orders"`
	HighPriorityWorkOrders   int32   `parquet:"high_priority_work_orders" json:"high_priority_work_orders"`
	CriticalWorkOrders       int32   `parquet:"critical_work_orders" json:"critical_work_orders"`
	CorrectiveWorkOrders     int32   `parquet:"corrective_work_orders" json:"corrective_work_orders"`
	MissedMaintenance        int32   `parquet:"missed_maintenance" json:"missed_maintenance"`
	AvgRepairHours           float64 `parquet:"avg_repair_hours" json:"avg_repair_hours"`
	WorkOrderCompletionRate  float64 `parquet:"work_order_completion_rate" json:"work_order_completion_rate"`
	HighPriorityRatio        float64 `parquet:"high_priority_ratio" json:"high_priority_ratio"`
	MeterReading             float64 `parquet:"meter_reading" json:"meter_reading"`
	EngineHours              float64 `parquet:"engine_hours" json:"engine_hours"`
	Label                    int32   `parquet:"label" json:"label"`
}

// Columns is every column of a feature file, in schema order.
var Columns = []string{
	"asset_id", "vehicle_type", "snapshot_date",
	"asset_age_days", "days_since_last_maintenance",
	"total_work_orders", "completed_work_orders", "high_priority_work_orders", "critical_work_orders",
	"corrective_work_orders", "missed_maintenance",
	"avg_repair_hours", "work_order_completion_rate", "high_priority_ratio",
	"meter_reading", "engine_hours",
	"label",
}

// Numeric is the model's numeric inputs, in the order of Row.Vector.
var Numeric = []string{
	"asset_age_days", "days_since_last_maintenance",
	"total_work_orders", "completed_work_orders", "high_priority_work_orders", "critical_work_orders",
	"corrective_work_orders", "missed_maintenance",
	"avg_repair_hours", "work_order_completion_rate", "high_priority_ratio",
	"meter_reading", "engine_hours",
}

// Vector is the row's Numeric features, in that order.
func (r Row) Vector() []float64 { return r.AppendVector(make([]float64, 0, len(Numeric))) }

// AppendVector appends the row's Numeric features, in that order, to dst.
func (r Row) AppendVector(dst []float64) []float64 {
	return append(dst,
		float64(r.AssetAgeDays), float64(r.DaysSinceLastMaintenance),
		float64(r.TotalWorkOrders), float64(r.CompletedWorkOrders), float64(r.HighPriorityWorkOrders), float64(r.CriticalWorkOrders),
		float64(r.CorrectiveWorkOrders), float64(r.MissedMaintenance),
		r.AvgRepairHours, r.WorkOrderCompletionRate, r.HighPriorityRatio,
		r.MeterReading, r.EngineHours,
	)
}

// VehicleTypes is the categorical vehicle_type's values (the schema's CHECK
// constraint), in the order of Row.VehicleTypeOneHot.
var VehicleTypes = []string{"car", "van", "truck", "bus", "trailer", "forklift"}

// VehicleTypeOneHot encodes vehicle_type over VehicleTypes (all zeros for an
// unknown type), for models that take the category.
func (r Row) VehicleTypeOneHot() []float64 {
	return r.AppendVehicleTypeOneHot(make([]float64, 0, len(VehicleTypes)))
}

// AppendVehicleTypeOneHot appends VehicleTypeOneHot to dst.
func (r Row) AppendVehicleTypeOneHot(dst []float64) []float64 {
	for _, t := range VehicleTypes {
		v := 0.0
		if t == r.VehicleType {
			v = 1
		}
		dst = append(dst, v)
	}
	return dst
}

// Labelled reports whether the row has a label (a training row).
func (r Row) Labelled() bool { return r.Label != Unlabelled }
