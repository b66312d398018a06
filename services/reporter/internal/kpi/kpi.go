// Package kpi computes the weekly maintenance KPIs: the counting and summing
// is set-based SQL over the CMMS tables (sql.go); the ratios, deltas and the
// formatting of the KPI table are plain Go (this file).
//
// A figure that is undefined — a mean of nothing, a ratio with a zero
// denominator, MTBF with no failure — is an Opt without a value and is shown
// as "n/a", never as zero or infinity.
package kpi

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/monitor"
)

// Opt is a figure that may be undefined.
type Opt struct {
	V     float64
	Valid bool
}

// Some is a defined figure.
func Some(v float64) Opt { return Opt{V: v, Valid: true} }

// NA is the undefined figure.
var NA = Opt{}

// Ratio is num/den, undefined when den is zero (or either is not finite).
func Ratio(num, den float64) Opt {
	if den == 0 || math.IsNaN(num) || math.IsNaN(den) || math.IsInf(num, 0) || math.IsInf(den, 0) {
		return NA
	}
	return Some(num / den)
}

// Percent is 100·part/whole, undefined when whole is zero.
func Percent(part, whole int64) Opt {
	r := Ratio(float64(part), float64(whole))
	if !r.Valid {
		return NA
	}
	return Some(100 * r.V)
}

// Count is an always-defined integer figure.
func Count(n int64) Opt { return Some(float64(n)) }

// Sub is a − b, undefined unless both are defined.
func Sub(a, b Opt) Opt {
	if !a.Valid || !b.Valid {
		return NA
	}
	return Some(a.V - b.V)
}

// MTBF is the mean time between failures in days: operating days over
// failures; undefined (not infinite) with no failure.
func MTBF(operatingDays float64, failures int64) Opt {
	if failures <= 0 {
		return NA
	}
	return Ratio(operatingDays, float64(failures))
}

// Priorities in display order.
var Priorities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}

// WorkOrders are the work-order figures of one week.
type WorkOrders struct {
	Opened              int64 // created in the week
	Completed           int64 // completed in the week (not cancelled)
	CompletedPreventive int64 // of which preventive
	InProgress          int64 // at the end of the week: started, not completed
	Pending             int64 // at the end of the week: not started, not completed
	Overdue             int64 // in progress or pending at the end of the week with a due date in or before the week
	OpenedByPriority    map[string]int64
}

// TypeFigures are one vehicle type's reliability figures for a week.
type TypeFigures struct {
	VehicleType string
	// MTBF inputs over the trailing window ending with the week.
	Assets        int64   // in service during the window
	OperatingDays float64 // asset-days in service within the window
	Failures      int64   // corrective work orders opened within the window
	MTBF          Opt     // days: OperatingDays / Failures
	// MTTR inputs: corrective work orders completed in the week.
	Repairs int64
	MTTR    Opt // hours: mean repair_hours (else completed_at - started_at)
}

// Prediction is one asset's latest failure-risk score.
type Prediction struct {
	AssetTag    string
	Name        string
	VehicleType string
	RiskLevel   string
	Probability float64
	ModelVer    string
	PredictedAt time.Time
}

// ML is the fleet's latest failure-risk scores as of the end of a week.
type ML struct {
	Assets         int64 // assets with a score
	High           int64 // latest risk level "high"
	Critical       int64 // latest risk level "critical"
	AvgProbability Opt
	Top            []Prediction // riskiest first (current week only)
}

// Period is every figure of one week.
type Period struct {
	Week         Week
	Start, End   time.Time // [Start, End) in the report's time zone
	WorkOrders   WorkOrders
	Repairs      int64 // corrective work orders completed in the week with repair hours
	MTTR         Opt   // hours, all vehicle types
	ByType       []TypeFigures
	PMDue        int64 // preventive work orders due in the week (not cancelled)
	PMOnTime     int64 // of which completed by their due date
	PMCompliance Opt   // percent
	PlannedPct   Opt   // percent of completed work orders that were preventive
	ML           ML
}

// Type returns the figures of vehicle type t.
func (p Period) Type(t string) TypeFigures {
	for _, f := range p.ByType {
		if f.VehicleType == t {
			return f
		}
	}
	return TypeFigures{VehicleType: t}
}

// Inventory is the stock as the report is generated (the table keeps no
// history, so there is no previous week to compare with).
type Inventory struct {
	Items            int64
	AtOrBelowReorder int64
	StockValue       float64
}

// TrendPoint is one week of the opened-vs-completed trend.
type TrendPoint struct {
	Week      Week
	Opened    int64
	Completed int64
}

// Report is the whole weekly report's data.
type Report struct {
	Week           Week
	TimeZone       string
	MTBFWindowDays int
	GeneratedAt    time.Time
	Current        Period
	Previous       Period
	Inventory      Inventory
	Trend          []TrendPoint // TrendWeeks weeks, oldest first, ending with Week
	Health         ModelHealth
	Drift          monitor.Thresholds // the PSI levels Health was read with
}

// Format is how a figure is written.
type Format int

// Formats.
const (
	Integer     Format = iota // 1,234
	Hours                     // 3.5 h
	Days                      // 120.3 d
	Pct                       // 87.5 %
	Money                     // 12,345.67
	Probability               // 0.234
)

// Row is one line of the KPI table: the figure this week and the week
// before, and the change.
type Row struct {
	Section string
	Key     string // machine name (CSV, event figures)
	Name    string
	Format  Format
	Cur     Opt
	Prev    Opt
}

// Delta is Cur − Prev.
func (r Row) Delta() Opt { return Sub(r.Cur, r.Prev) }

// CurText, PrevText and DeltaText are the row's figures as shown.
func (r Row) CurText() string   { return FormatValue(r.Cur, r.Format) }
func (r Row) PrevText() string  { return FormatValue(r.Prev, r.Format) }
func (r Row) DeltaText() string { return FormatDelta(r.Delta(), r.Format) }

// Rows is the KPI table of a report, in display order.
func Rows(r *Report) []Row {
	c, p := r.Current, r.Previous
	cw, pw := c.WorkOrders, p.WorkOrders
	rows := []Row{
		{"Work orders", "wo_opened", "Opened", Integer, Count(cw.Opened), Count(pw.Opened)},
		{"Work orders", "wo_completed", "Completed", Integer, Count(cw.Completed), Count(pw.Completed)},
		{"Work orders", "wo_in_progress", "In progress (end of week)", Integer, Count(cw.InProgress), Count(pw.InProgress)},
		{"Work orders", "wo_pending", "Pending / open (end of week)", Integer, Count(cw.Pending), Count(pw.Pending)},
		{"Work orders", "wo_overdue", "Overdue (end of week)", Integer, Count(cw.Overdue), Count(pw.Overdue)},
	}
	for _, pr := range Priorities {
		rows = append(rows, Row{"Work orders", "wo_opened_" + strings.ToLower(pr), "Opened, priority " + strings.ToLower(pr),
			Integer, Count(cw.OpenedByPriority[pr]), Count(pw.OpenedByPriority[pr])})
	}
	rows = append(rows,
		Row{"Reliability", "mttr_hours", "MTTR, all vehicle types", Hours, c.MTTR, p.MTTR},
	)
	for _, t := range vehicleTypes(r) {
		rows = append(rows, Row{"Reliability", "mttr_hours_" + t, "MTTR, " + t, Hours, c.Type(t).MTTR, p.Type(t).MTTR})
	}
	for _, t := range vehicleTypes(r) {
		rows = append(rows, Row{"Reliability", "mtbf_days_" + t, "MTBF, " + t, Days, c.Type(t).MTBF, p.Type(t).MTBF})
	}
	rows = append(rows,
		Row{"Preventive maintenance", "pm_due", "Preventive work orders due", Integer, Count(c.PMDue), Count(p.PMDue)},
		Row{"Preventive maintenance", "pm_on_time", "Completed by due date", Integer, Count(c.PMOnTime), Count(p.PMOnTime)},
		Row{"Preventive maintenance", "pm_compliance_pct", "PM compliance", Pct, c.PMCompliance, p.PMCompliance},
		Row{"Preventive maintenance", "planned_maintenance_pct", "Planned maintenance percentage", Pct, c.PlannedPct, p.PlannedPct},
		Row{"Inventory", "inventory_items", "Items", Integer, Count(r.Inventory.Items), NA},
		Row{"Inventory", "inventory_at_or_below_reorder", "At or below reorder level", Integer, Count(r.Inventory.AtOrBelowReorder), NA},
		Row{"Inventory", "inventory_stock_value", "Total stock value", Money, Some(r.Inventory.StockValue), NA},
		Row{"Failure risk (ML)", "ml_scored_assets", "Assets scored", Integer, Count(c.ML.Assets), Count(p.ML.Assets)},
		Row{"Failure risk (ML)", "ml_high_risk", "Assets at high risk", Integer, mlCount(c.ML, c.ML.High), mlCount(p.ML, p.ML.High)},
		Row{"Failure risk (ML)", "ml_critical", "Assets at critical risk", Integer, mlCount(c.ML, c.ML.Critical), mlCount(p.ML, p.ML.Critical)},
		Row{"Failure risk (ML)", "ml_avg_failure_probability", "Average failure probability", Probability, c.ML.AvgProbability, p.ML.AvgProbability},
	)
	return rows
}

// mlCount is n, or n/a when no asset has a score.
func mlCount(m ML, n int64) Opt {
	if m.Assets == 0 {
		return NA
	}
	return Count(n)
}

// vehicleTypes is every vehicle type of either week, in a stable order.
func vehicleTypes(r *Report) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range []Period{r.Current, r.Previous} {
		for _, f := range p.ByType {
			if !seen[f.VehicleType] {
				seen[f.VehicleType] = true
				out = append(out, f.VehicleType)
			}
		}
	}
	slices.Sort(out)
	return out
}

// VehicleTypes is every vehicle type in the report, sorted.
func VehicleTypes(r *Report) []string { return vehicleTypes(r) }

// Headline is the report's defined figures by key (undefined ones are left
// out), for the ReportGenerated event and the step's figures.
func Headline(rows []Row) map[string]float64 {
	out := map[string]float64{}
	for _, r := range rows {
		if r.Cur.Valid {
			out[r.Key] = r.Cur.V
		}
	}
	return out
}

// FormatValue writes v in format f; "n/a" when undefined.
func FormatValue(v Opt, f Format) string {
	if !v.Valid {
		return "n/a"
	}
	switch f {
	case Integer:
		return group(strconv.FormatInt(int64(math.Round(v.V)), 10))
	case Hours:
		return fixed(v.V, 1) + " h"
	case Days:
		return fixed(v.V, 1) + " d"
	case Pct:
		return fixed(v.V, 1) + " %"
	case Money:
		return fixed(v.V, 2)
	case Probability:
		return strconv.FormatFloat(v.V, 'f', 3, 64)
	}
	return strconv.FormatFloat(v.V, 'g', -1, 64)
}

// FormatDelta writes a change with its sign ("+3", "-1.5 h", "0"); a change
// of a percentage is in percentage points. "n/a" when undefined.
func FormatDelta(d Opt, f Format) string {
	if !d.Valid {
		return "n/a"
	}
	prec := map[Format]int{Integer: 0, Hours: 1, Days: 1, Pct: 1, Money: 2, Probability: 3}[f]
	scale := math.Pow(10, float64(prec))
	v := math.Round(d.V*scale) / scale
	if v == 0 {
		return "0"
	}
	sign := "+"
	if v < 0 {
		sign = "-"
		v = -v
	}
	var s string
	switch f {
	case Integer:
		s = group(strconv.FormatInt(int64(v), 10))
	case Probability:
		s = strconv.FormatFloat(v, 'f', 3, 64)
	default:
		s = fixed(v, prec)
	}
	switch f {
	case Hours:
		s += " h"
	case Days:
		s += " d"
	case Pct:
		s += " pp"
	}
	return sign + s
}

// fixed is v with prec decimals and thousands separators.
func fixed(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	out := group(intPart)
	if frac != "" {
		out += "." + frac
	}
	if neg && strings.Trim(out, "0.,") != "" {
		out = "-" + out
	}
	return out
}

// group inserts thousands separators into a run of digits (with an optional
// leading minus).
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// DateRange is the week's days, e.g. "Mon 16 Nov 2026 – Sun 22 Nov 2026"
// (ASCII hyphen, for the PDF's core fonts).
func DateRange(w Week) string {
	return fmt.Sprintf("%s - %s", w.Monday().Format("Mon 2 Jan 2006"), w.Sunday().Format("Mon 2 Jan 2006"))
}
