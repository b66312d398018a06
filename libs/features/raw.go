package features

import "time"

// The raw tables the extractor writes to runs/<run_id>/raw/<table>.parquet
// and both feature engines read. Timestamps are microseconds since the Unix
// epoch (Parquet TIMESTAMP(MICROS, UTC): Spark reads TimestampType), dates are
// days since the epoch (Parquet DATE: Spark reads DateType). A nil pointer is
// SQL NULL.
const (
	TableAssets           = "assets"
	TableWorkOrders       = "work_orders"
	TableMaintenancePlans = "maintenance_plans"
)

// RawTables lists the extracted tables.
var RawTables = []string{TableAssets, TableWorkOrders, TableMaintenancePlans}

// RawObject is the object name of a raw table under runs/<run_id>/raw/.
func RawObject(table string) string { return table + ".parquet" }

// Asset is a row of the assets table.
type Asset struct {
	ID               int64   `parquet:"id"`
	AssetTag         string  `parquet:"asset_tag"`
	Name             string  `parquet:"name"`
	VehicleType      string  `parquet:"vehicle_type"`
	Make             string  `parquet:"make"`
	Model            string  `parquet:"model"`
	Year             *int32  `parquet:"year"`
	Status           string  `parquet:"status"`
	CommissionedDate int32   `parquet:"commissioned_date,date"`
	MeterReading     float64 `parquet:"meter_reading"`
	EngineHours      float64 `parquet:"engine_hours"`
	Location         string  `parquet:"location"`
	CreatedAt        int64   `parquet:"created_at,timestamp(microsecond)"`
	UpdatedAt        int64   `parquet:"updated_at,timestamp(microsecond)"`
}

// WorkOrder is a row of the work_orders table (without the free-text
// description).
type WorkOrder struct {
	ID          int64    `parquet:"id"`
	WONumber    string   `parquet:"wo_number"`
	AssetID     int64    `parquet:"asset_id"`
	PlanID      *int64   `parquet:"plan_id"`
	DueDate     *int32   `parquet:"due_date,date"`
	Type        string   `parquet:"type"`
	Status      string   `parquet:"status"`
	Priority    string   `parquet:"priority"`
	Title       string   `parquet:"title"`
	CreatedAt   int64    `parquet:"created_at,timestamp(microsecond)"`
	StartedAt   *int64   `parquet:"started_at,timestamp(microsecond)"`
	CompletedAt *int64   `parquet:"completed_at,timestamp(microsecond)"`
	RepairHours *float64 `parquet:"repair_hours"`
}

// MaintenancePlan is a row of the maintenance_plans table.
type MaintenancePlan struct {
	ID                 int64    `parquet:"id"`
	Code               string   `parquet:"code"`
	AssetID            int64    `parquet:"asset_id"`
	Name               string   `parquet:"name"`
	IntervalValue      *int32   `parquet:"interval_value"`
	IntervalUnit       *string  `parquet:"interval_unit"`
	MeterInterval      *float64 `parquet:"meter_interval"`
	MeterUnit          *string  `parquet:"meter_unit"`
	LeadDays           int32    `parquet:"lead_days"`
	ScheduleMode       string   `parquet:"schedule_mode"`
	NextDueDate        *int32   `parquet:"next_due_date,date"`
	NextDueMeter       *float64 `parquet:"next_due_meter"`
	LastCompletedDate  *int32   `parquet:"last_completed_date,date"`
	LastCompletedMeter *float64 `parquet:"last_completed_meter"`
	EndDate            *int32   `parquet:"end_date,date"`
	Priority           string   `parquet:"priority"`
	EstimatedHours     float64  `parquet:"estimated_hours"`
	Active             bool     `parquet:"active"`
	CreatedAt          int64    `parquet:"created_at,timestamp(microsecond)"`
}

// Day is the number of days since the Unix epoch of t's UTC calendar date,
// the representation of Parquet DATE.
func Day(t time.Time) int32 {
	y, m, d := t.UTC().Date()
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// DayTime is the midnight UTC starting day d.
func DayTime(d int32) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// Micros is t as microseconds since the epoch, the representation of Parquet
// TIMESTAMP(MICROS).
func Micros(t time.Time) int64 { return t.UnixMicro() }

// MicrosPerDay is the length of a day in microseconds.
const MicrosPerDay int64 = 86_400_000_000

// ParseDate parses a YYYY-MM-DD date into days since the epoch.
func ParseDate(s string) (int32, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return 0, err
	}
	return Day(t), nil
}

// FormatDate formats days since the epoch as YYYY-MM-DD.
func FormatDate(d int32) string { return DayTime(d).Format(DateLayout) }
