// Package schedule holds civil dates (Date), month arithmetic (AddMonths,
// Interval.Add) and the preventive-maintenance due rules: given a maintenance
// plan, its asset and today's date, is an occurrence due, for which date, how
// many occurrences were missed, and where does the plan's schedule go next.
// It is plain Go with no I/O. pmgen applies the rules to the database
// (services/pmgen/internal/generate); the demo fleet generator (libs/fleet)
// steps its simulated plans, and the CSV import an imported plan's missing
// next due date, with the same Interval.Add.
//
// # Schedules
//
// A plan has a calendar interval (every N days, weeks, months or years), a
// meter interval (every N km of odometer or N engine hours), or both. Its
// state is the next due date and/or the next due meter reading.
//
//   - Calendar: the occurrences are next_due_date, then one interval after
//     another. Month and year steps keep the schedule's anchor day (the day of
//     month it started on), clamped at month end: a plan anchored on the 31st
//     is due Jan 31, Feb 28 (29), Mar 31, Apr 30, …; one anchored on Feb 29 is
//     due Feb 28 in common years and Feb 29 again in leap years.
//   - Meter: the occurrences are the thresholds next_due_meter,
//     next_due_meter + interval, … against the asset's odometer (km) or engine
//     hours (hours).
//
// # When an occurrence is due
//
//   - Only an active plan of an ACTIVE asset (INACTIVE, IN_MAINTENANCE and
//     RETIRED assets get nothing), and only while today is on or before the
//     plan's end date; an occurrence due after the end date is never generated.
//   - Calendar: the work order is generated lead_days before its due date.
//   - Meter: the work order is generated on the day the reading reaches the
//     threshold, and is due that day.
//   - Whichever comes first: with both intervals, the earlier of the two due
//     dates wins.
//   - At most one open work order per plan: a due plan whose work order is
//     still OPEN, IN_PROGRESS or ON_HOLD is skipped (and reported as such);
//     its schedule does not move.
//
// # Missed occurrences
//
// When runs did not happen (the system was down), several occurrences may be
// due at once. They become one work order, for the latest occurrence whose
// due date has passed (or is today); the earlier ones are counted in Missed
// and recorded on the work order. The lead window alone never makes an
// occurrence "missed": if only the first pending occurrence is due, it is
// generated ahead of its date, as usual. With both intervals, Missed is the
// larger of the calendar and the meter count.
//
// # The next occurrence
//
// After a work order is generated, the plan advances past it, skipping the
// missed occurrences:
//
//   - calendar-only: the schedule occurrence after the generated one;
//   - meter-only: the first threshold above the current reading;
//   - both: whichever fired restarts the other too. Calendar fired: the next
//     calendar occurrence, and the meter restarts from the current reading
//     (or the next threshold above it if the meter was past due as well).
//     Meter fired: the next threshold, and the calendar restarts one interval
//     after today (anchored on today's day of month).
//
// # Fixed and floating plans
//
// A fixed plan (schedule_mode fixed) stays on its schedule whenever the work
// is actually done. A floating plan is anchored on its last completion: when
// its work order is completed, the next occurrence is one interval after the
// completion date (and meter interval after the reading at completion).
//
// While a floating plan's work order is still open, its next due date is
// provisional: generation advances it exactly as for a fixed plan (as if the
// work were done on its due date), so a cancelled work order cannot leave
// the plan stuck on an occurrence that already has its work order. The
// completion then re-anchors it (Complete): earlier if the work was done
// early, later if late. The plan cannot fire on the provisional date while
// the work order is open (at most one open work order).
package schedule

import (
	"fmt"
	"math"
)

// Unit is a calendar interval unit.
type Unit string

// Calendar units, as stored in maintenance_plans.interval_unit.
const (
	Days   Unit = "days"
	Weeks  Unit = "weeks"
	Months Unit = "months"
	Years  Unit = "years"
)

// Interval is a calendar interval. The zero Interval means "no calendar
// schedule".
type Interval struct {
	Value int
	Unit  Unit
}

// IsZero reports whether iv is the zero Interval.
func (iv Interval) IsZero() bool { return iv == Interval{} }

func (iv Interval) validate() error {
	if iv.Value <= 0 {
		return fmt.Errorf("calendar interval %d must be positive", iv.Value)
	}
	switch iv.Unit {
	case Days, Weeks, Months, Years:
		return nil
	}
	return fmt.Errorf("unknown interval unit %q", iv.Unit)
}

// monthly reports whether iv steps by months (months or years), and by how
// many.
func (iv Interval) monthly() (int, bool) {
	switch iv.Unit {
	case Months:
		return iv.Value, true
	case Years:
		return 12 * iv.Value, true
	}
	return 0, false
}

func (iv Interval) days() int {
	if iv.Unit == Weeks {
		return 7 * iv.Value
	}
	return iv.Value
}

// Add returns the date k intervals after d. Month and year steps land on
// anchorDay (0: d's day), clamped to the target month's last day.
func (iv Interval) Add(d Date, k, anchorDay int) Date {
	if n, ok := iv.monthly(); ok {
		return AddMonths(d, k*n, anchorDay)
	}
	return d.AddDays(k * iv.days())
}

// MeterUnit is what a meter interval counts.
type MeterUnit string

// Meter units, as stored in maintenance_plans.meter_unit.
const (
	Km    MeterUnit = "km"    // the asset's odometer, assets.meter_reading
	Hours MeterUnit = "hours" // the asset's engine hours, assets.engine_hours
)

// MeterInterval is a meter interval. The zero MeterInterval means "no meter
// schedule".
type MeterInterval struct {
	Value float64
	Unit  MeterUnit
}

// IsZero reports whether m is the zero MeterInterval.
func (m MeterInterval) IsZero() bool { return m == MeterInterval{} }

func (m MeterInterval) validate() error {
	if !(m.Value > 0) {
		return fmt.Errorf("meter interval %v must be positive", m.Value)
	}
	switch m.Unit {
	case Km, Hours:
		return nil
	}
	return fmt.Errorf("unknown meter unit %q", m.Unit)
}

// Mode is how a plan's schedule moves when its work is done.
type Mode string

// Schedule modes, as stored in maintenance_plans.schedule_mode.
const (
	Fixed    Mode = "fixed"    // anchored on the schedule
	Floating Mode = "floating" // anchored on the last completion
)

// AssetActive is the only asset status that gets preventive work orders.
const AssetActive = "ACTIVE"

// Plan is a maintenance plan and its schedule state.
type Plan struct {
	Calendar Interval      // zero: meter-only
	Meter    MeterInterval // zero: calendar-only
	LeadDays int
	Mode     Mode
	Active   bool
	EndDate  Date // zero: open-ended

	// NextDueDate is the next calendar occurrence. Zero: one interval after
	// the last completion, or today for a plan never done.
	NextDueDate Date
	// AnchorDay is the day of month a month- or year-based schedule keeps.
	// Zero, or a day that does not match NextDueDate: NextDueDate's day.
	AnchorDay int
	// NextDueMeter is the next meter threshold. Nil: one interval after the
	// reading at the last completion, or one interval from zero.
	NextDueMeter       *float64
	LastCompletedDate  Date
	LastCompletedMeter *float64

	// OpenWorkOrder reports that a work order of the plan is OPEN,
	// IN_PROGRESS or ON_HOLD.
	OpenWorkOrder bool
}

// Asset is what the rules need of the plan's asset.
type Asset struct {
	Status       string
	MeterReading float64 // odometer, km
	EngineHours  float64
}

// Reading is the asset's meter in unit u.
func (a Asset) Reading(u MeterUnit) float64 {
	if u == Hours {
		return a.EngineHours
	}
	return a.MeterReading
}

// Outcome is what Evaluate decided.
type Outcome int

// Outcomes.
const (
	NotDue        Outcome = iota // nothing due yet
	Generate                     // create a work order
	SkippedOpen                  // due, but a work order of the plan is still open
	PlanInactive                 // the plan is not active
	AssetInactive                // the asset is not ACTIVE
	Ended                        // past the end date, or the next occurrence falls after it
	Invalid                      // the plan's schedule is malformed
)

func (o Outcome) String() string {
	switch o {
	case NotDue:
		return "not due"
	case Generate:
		return "generate"
	case SkippedOpen:
		return "skipped: work order open"
	case PlanInactive:
		return "plan inactive"
	case AssetInactive:
		return "asset not active"
	case Ended:
		return "plan ended"
	case Invalid:
		return "invalid plan"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Trigger is what made an occurrence due.
type Trigger string

// Triggers.
const (
	ByCalendar Trigger = "calendar"
	ByMeter    Trigger = "meter"
)

// Schedule is a plan's schedule state.
type Schedule struct {
	NextDueDate  Date
	AnchorDay    int // 0 unless the calendar interval is in months or years
	NextDueMeter *float64
}

// Decision is the result of Evaluate.
type Decision struct {
	Outcome Outcome
	// For Generate and SkippedOpen: the occurrence's due date (the work
	// order's due_date, its business key with the plan), what triggered it,
	// and how many earlier occurrences it folds in.
	DueDate Date
	Trigger Trigger
	Missed  int
	// For Generate: the plan's schedule after the work order is created.
	Next Schedule
	// Err explains Invalid.
	Err error
}

// Evaluate applies the due rules to plan p of asset a on day today.
func Evaluate(p Plan, a Asset, today Date) Decision {
	if err := p.validate(); err != nil {
		return Decision{Outcome: Invalid, Err: err}
	}
	switch {
	case !p.Active:
		return Decision{Outcome: PlanInactive}
	case a.Status != AssetActive:
		return Decision{Outcome: AssetInactive}
	case !p.EndDate.IsZero() && today.After(p.EndDate):
		return Decision{Outcome: Ended}
	}
	cal := p.calendarDue(today)
	met := p.meterDue(a)
	if !cal.due && !met.due {
		if cal.beyondEnd {
			return Decision{Outcome: Ended}
		}
		return Decision{Outcome: NotDue}
	}
	// Whichever comes first: a meter occurrence is due today, a calendar one
	// on its date (today at the latest when it is overdue, later when
	// generated ahead).
	byCal := cal.due && (!met.due || !cal.date.After(today))
	d := Decision{Outcome: Generate, Missed: max(cal.missed, met.missed)}
	if byCal {
		d.DueDate, d.Trigger = cal.date, ByCalendar
	} else {
		d.DueDate, d.Trigger = today, ByMeter
	}
	if p.OpenWorkOrder {
		d.Outcome = SkippedOpen
		return d
	}

	if !p.Calendar.IsZero() {
		if byCal {
			d.Next.NextDueDate = p.Calendar.Add(cal.first, cal.missed+1, cal.anchor)
			d.Next.AnchorDay = p.anchorFor(cal.anchor)
		} else {
			d.Next.NextDueDate = p.Calendar.Add(today, 1, today.Day)
			d.Next.AnchorDay = p.anchorFor(today.Day)
		}
	}
	if !p.Meter.IsZero() {
		var next int64
		if met.due {
			next = met.first + int64(met.missed+1)*met.step
		} else {
			next = tenths(a.Reading(p.Meter.Unit)) + met.step
		}
		v := fromTenths(next)
		d.Next.NextDueMeter = &v
	}
	return d
}

// Complete records that the plan's work was done on day on with the asset's
// meter at meter (ignored for calendar-only plans). A floating plan is
// re-anchored on the completion; a fixed plan keeps its schedule.
func Complete(p Plan, on Date, meter float64) Plan {
	p.LastCompletedDate = on
	if !p.Meter.IsZero() {
		m := fromTenths(tenths(meter))
		p.LastCompletedMeter = &m
	}
	if p.Mode != Floating {
		return p
	}
	if !p.Calendar.IsZero() {
		p.NextDueDate = p.Calendar.Add(on, 1, on.Day)
		p.AnchorDay = p.anchorFor(on.Day)
	}
	if !p.Meter.IsZero() {
		next := fromTenths(tenths(meter) + tenths(p.Meter.Value))
		p.NextDueMeter = &next
	}
	return p
}

// Schedule is p's current schedule state.
func (p Plan) Schedule() Schedule {
	s := Schedule{NextDueDate: p.NextDueDate, NextDueMeter: p.NextDueMeter}
	if !p.NextDueDate.IsZero() {
		s.AnchorDay = p.anchorFor(p.anchor(p.NextDueDate))
	}
	return s
}

func (p Plan) validate() error {
	if p.Calendar.IsZero() && p.Meter.IsZero() {
		return fmt.Errorf("plan has neither a calendar nor a meter interval")
	}
	if !p.Calendar.IsZero() {
		if err := p.Calendar.validate(); err != nil {
			return err
		}
	}
	if !p.Meter.IsZero() {
		if err := p.Meter.validate(); err != nil {
			return err
		}
	}
	switch p.Mode {
	case Fixed, Floating:
	default:
		return fmt.Errorf("unknown schedule mode %q", p.Mode)
	}
	if p.AnchorDay < 0 || p.AnchorDay > 31 {
		return fmt.Errorf("anchor day %d out of range", p.AnchorDay)
	}
	return nil
}

// anchor is the day of month the schedule through d keeps: the stored anchor
// when d is where that anchor lands in d's month, d's own day otherwise.
func (p Plan) anchor(d Date) int {
	if a := p.AnchorDay; a > 0 && min(a, DaysIn(d.Year, d.Month)) == d.Day {
		return a
	}
	return d.Day
}

// anchorFor is the anchor day to store: only month-based schedules have one.
func (p Plan) anchorFor(day int) int {
	if _, ok := p.Calendar.monthly(); ok {
		return day
	}
	return 0
}

type calendarState struct {
	due       bool
	beyondEnd bool // the pending occurrence falls after the end date
	first     Date // the first pending occurrence
	anchor    int
	date      Date // the occurrence to generate
	missed    int  // occurrences between first and date
}

func (p Plan) calendarDue(today Date) calendarState {
	if p.Calendar.IsZero() {
		return calendarState{}
	}
	first := p.NextDueDate
	if first.IsZero() {
		if p.LastCompletedDate.IsZero() {
			first = today // never done and never scheduled: due now
		} else {
			first = p.Calendar.Add(p.LastCompletedDate, 1, 0)
		}
	}
	st := calendarState{first: first, anchor: p.anchor(first), date: first}
	if !p.EndDate.IsZero() && first.After(p.EndDate) {
		st.beyondEnd = true
		return st
	}
	if first.AddDays(-max(p.LeadDays, 0)).After(today) {
		return st
	}
	st.due = true
	if first.After(today) {
		return st // generated ahead of its date: nothing missed
	}
	// The latest occurrence on or before today; the ones before it are missed.
	k := 0
	if n, ok := p.Calendar.monthly(); ok {
		k = monthsBetween(first, today) / n
	} else {
		k = today.DaysSince(first) / p.Calendar.days()
	}
	for k > 0 && p.Calendar.Add(first, k, st.anchor).After(today) {
		k--
	}
	st.date, st.missed = p.Calendar.Add(first, k, st.anchor), k
	return st
}

type meterState struct {
	due    bool
	first  int64 // the first pending threshold, in tenths
	step   int64 // the interval, in tenths
	missed int   // thresholds passed before the latest one
}

func (p Plan) meterDue(a Asset) meterState {
	if p.Meter.IsZero() {
		return meterState{}
	}
	st := meterState{step: tenths(p.Meter.Value)}
	switch {
	case p.NextDueMeter != nil:
		st.first = tenths(*p.NextDueMeter)
	case p.LastCompletedMeter != nil:
		st.first = tenths(*p.LastCompletedMeter) + st.step
	default:
		st.first = st.step
	}
	reading := tenths(a.Reading(p.Meter.Unit))
	if reading < st.first {
		return st
	}
	st.due = true
	st.missed = int((reading - st.first) / st.step)
	return st
}

// Meter values are numeric(12, 1) in the database: compute in whole tenths so
// that 0.1 + 0.2 thresholds compare exactly.
func tenths(v float64) int64     { return int64(math.Round(v * 10)) }
func fromTenths(t int64) float64 { return float64(t) / 10 }
