package schedule

import (
	"fmt"
	"testing"
)

func f(v float64) *float64 { return &v }

func TestIntervalAdd(t *testing.T) {
	tests := []struct {
		iv     Interval
		from   string
		k      int
		anchor int
		want   string
	}{
		{Interval{10, Days}, "2026-02-25", 1, 0, "2026-03-07"},
		{Interval{10, Days}, "2026-02-25", 3, 0, "2026-03-27"},
		{Interval{2, Weeks}, "2026-12-24", 1, 0, "2027-01-07"},
		{Interval{1, Months}, "2026-01-31", 1, 31, "2026-02-28"},
		{Interval{1, Months}, "2026-01-31", 2, 31, "2026-03-31"},
		{Interval{6, Months}, "2026-08-31", 1, 31, "2027-02-28"},
		{Interval{1, Years}, "2024-02-29", 1, 29, "2025-02-28"},
		{Interval{2, Years}, "2024-02-29", 2, 29, "2028-02-29"},
		// Anchor 0, the date's own day: how the demo generator (libs/fleet)
		// steps its plans, which keep no anchor day.
		{Interval{1, Months}, "2025-01-31", 1, 0, "2025-02-28"},
		{Interval{1, Months}, "2024-01-31", 1, 0, "2024-02-29"},
		{Interval{1, Months}, "2025-02-28", 1, 0, "2025-03-28"},
		{Interval{3, Months}, "2025-11-30", 1, 0, "2026-02-28"},
		{Interval{6, Months}, "2025-08-31", 1, 0, "2026-02-28"},
		{Interval{1, Years}, "2024-02-29", 1, 0, "2025-02-28"},
		{Interval{2, Weeks}, "2025-03-15", 1, 0, "2025-03-29"},
		{Interval{1, Days}, "2025-12-31", 1, 0, "2026-01-01"},
	}
	for _, tt := range tests {
		if got := tt.iv.Add(d(tt.from), tt.k, tt.anchor).String(); got != tt.want {
			t.Errorf("%v.Add(%s, %d, %d) = %s, want %s", tt.iv, tt.from, tt.k, tt.anchor, got, tt.want)
		}
	}
}

var active = Asset{Status: "ACTIVE", MeterReading: 50000, EngineHours: 1200}

func monthly(next string) Plan {
	return Plan{Calendar: Interval{1, Months}, Mode: Fixed, Active: true, NextDueDate: d(next)}
}

func with(p Plan, mut func(*Plan)) Plan { mut(&p); return p }

// want is a Decision in a table-friendly form.
type want struct {
	outcome   Outcome
	due       string
	trigger   Trigger
	missed    int
	nextDate  string
	anchor    int
	nextMeter *float64
}

func (w want) check(t *testing.T, got Decision) {
	t.Helper()
	if got.Outcome != w.outcome {
		t.Fatalf("outcome %v (err %v), want %v", got.Outcome, got.Err, w.outcome)
	}
	if w.outcome != Generate && w.outcome != SkippedOpen {
		return
	}
	if got.DueDate.String() != w.due || got.Trigger != w.trigger || got.Missed != w.missed {
		t.Errorf("due %s by %s missed %d, want due %s by %s missed %d",
			got.DueDate, got.Trigger, got.Missed, w.due, w.trigger, w.missed)
	}
	if w.outcome != Generate {
		return
	}
	if got.Next.NextDueDate.String() != w.nextDate || got.Next.AnchorDay != w.anchor {
		t.Errorf("next due date %s (anchor %d), want %s (anchor %d)", got.Next.NextDueDate, got.Next.AnchorDay, w.nextDate, w.anchor)
	}
	if fmt.Sprint(deref(got.Next.NextDueMeter)) != fmt.Sprint(deref(w.nextMeter)) {
		t.Errorf("next due meter %v, want %v", deref(got.Next.NextDueMeter), deref(w.nextMeter))
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestEvaluate(t *testing.T) {
	km := func(p Plan, interval float64, next *float64) Plan {
		p.Meter, p.NextDueMeter = MeterInterval{interval, Km}, next
		return p
	}
	meterOnly := func(interval float64, unit MeterUnit, next *float64) Plan {
		return Plan{Meter: MeterInterval{interval, unit}, Mode: Fixed, Active: true, NextDueMeter: next}
	}
	tests := []struct {
		name  string
		plan  Plan
		asset Asset
		today string
		want  want
	}{
		// Calendar plans.
		{"due today", monthly("2026-03-15"), active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByCalendar, nextDate: "2026-04-15", anchor: 15}},
		{"not due yet", monthly("2026-03-20"), active, "2026-03-15", want{outcome: NotDue}},
		{"lead days: generated ahead, due on its date",
			with(monthly("2026-03-20"), func(p *Plan) { p.LeadDays = 5 }), active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-20", trigger: ByCalendar, nextDate: "2026-04-20", anchor: 20}},
		{"lead days: one day before the window",
			with(monthly("2026-03-21"), func(p *Plan) { p.LeadDays = 5 }), active, "2026-03-15", want{outcome: NotDue}},
		{"overdue by less than an interval: nothing missed", monthly("2026-03-01"), active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-01", trigger: ByCalendar, nextDate: "2026-04-01", anchor: 1}},
		{"missed occurrences fold into one work order for the latest; fixed skips them",
			monthly("2025-12-10"), active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-10", trigger: ByCalendar, missed: 3, nextDate: "2026-04-10", anchor: 10}},
		{"missed: the occurrence in the lead window is not folded in",
			with(monthly("2026-01-10"), func(p *Plan) { p.LeadDays = 10 }), active, "2026-03-05",
			want{outcome: Generate, due: "2026-02-10", trigger: ByCalendar, missed: 1, nextDate: "2026-03-10", anchor: 10}},
		{"lead longer than the interval is not a miss",
			Plan{Calendar: Interval{7, Days}, LeadDays: 10, Mode: Fixed, Active: true, NextDueDate: d("2026-03-12")}, active, "2026-03-05",
			want{outcome: Generate, due: "2026-03-12", trigger: ByCalendar, nextDate: "2026-03-19"}},
		{"weeks: missed",
			Plan{Calendar: Interval{2, Weeks}, Mode: Fixed, Active: true, NextDueDate: d("2026-01-01")}, active, "2026-02-01",
			want{outcome: Generate, due: "2026-01-29", trigger: ByCalendar, missed: 2, nextDate: "2026-02-12"}},
		{"days",
			Plan{Calendar: Interval{10, Days}, Mode: Fixed, Active: true, NextDueDate: d("2026-02-25")}, active, "2026-02-25",
			want{outcome: Generate, due: "2026-02-25", trigger: ByCalendar, nextDate: "2026-03-07"}},
		{"daily plan down for a year",
			Plan{Calendar: Interval{1, Days}, Mode: Fixed, Active: true, NextDueDate: d("2025-03-15")}, active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByCalendar, missed: 365, nextDate: "2026-03-16"}},

		// Month ends and leap days.
		{"Jan 31 + 1 month = Feb 28, anchor stays 31", monthly("2026-01-31"), active, "2026-01-31",
			want{outcome: Generate, due: "2026-01-31", trigger: ByCalendar, nextDate: "2026-02-28", anchor: 31}},
		{"Jan 31 + 1 month = Feb 29 in a leap year", monthly("2028-01-31"), active, "2028-01-31",
			want{outcome: Generate, due: "2028-01-31", trigger: ByCalendar, nextDate: "2028-02-29", anchor: 31}},
		{"Feb 28 anchored on the 31st: next is Mar 31, not Mar 28",
			with(monthly("2026-02-28"), func(p *Plan) { p.AnchorDay = 31 }), active, "2026-02-28",
			want{outcome: Generate, due: "2026-02-28", trigger: ByCalendar, nextDate: "2026-03-31", anchor: 31}},
		{"Apr 30 anchored on the 31st: next is May 31",
			with(monthly("2026-04-30"), func(p *Plan) { p.AnchorDay = 31 }), active, "2026-04-30",
			want{outcome: Generate, due: "2026-04-30", trigger: ByCalendar, nextDate: "2026-05-31", anchor: 31}},
		{"an anchor that does not match the date (moved by hand) is dropped",
			with(monthly("2026-02-15"), func(p *Plan) { p.AnchorDay = 31 }), active, "2026-02-15",
			want{outcome: Generate, due: "2026-02-15", trigger: ByCalendar, nextDate: "2026-03-15", anchor: 15}},
		{"missed across month ends keeps the anchor",
			with(monthly("2026-01-31"), func(p *Plan) { p.AnchorDay = 31 }), active, "2026-05-01",
			want{outcome: Generate, due: "2026-04-30", trigger: ByCalendar, missed: 3, nextDate: "2026-05-31", anchor: 31}},
		{"quarterly from Nov 30 lands on Feb 28",
			Plan{Calendar: Interval{3, Months}, Mode: Fixed, Active: true, NextDueDate: d("2025-11-30")}, active, "2026-02-28",
			want{outcome: Generate, due: "2026-02-28", trigger: ByCalendar, missed: 1, nextDate: "2026-05-30", anchor: 30}},
		{"month-end occurrence later in the month than today is not yet due",
			with(monthly("2026-01-31"), func(p *Plan) { p.AnchorDay = 31 }), active, "2026-03-30",
			want{outcome: Generate, due: "2026-02-28", trigger: ByCalendar, missed: 1, nextDate: "2026-03-31", anchor: 31}},
		{"Feb 29 + 1 year = Feb 28",
			Plan{Calendar: Interval{1, Years}, Mode: Fixed, Active: true, NextDueDate: d("2024-02-29")}, active, "2024-02-29",
			want{outcome: Generate, due: "2024-02-29", trigger: ByCalendar, nextDate: "2025-02-28", anchor: 29}},
		{"a yearly Feb 29 schedule is back on the 29th in a leap year",
			Plan{Calendar: Interval{1, Years}, Mode: Fixed, Active: true, NextDueDate: d("2027-02-28"), AnchorDay: 29}, active, "2027-02-28",
			want{outcome: Generate, due: "2027-02-28", trigger: ByCalendar, nextDate: "2028-02-29", anchor: 29}},
		{"yearly Feb 29 with missed years",
			Plan{Calendar: Interval{1, Years}, Mode: Fixed, Active: true, NextDueDate: d("2024-02-29")}, active, "2026-03-01",
			want{outcome: Generate, due: "2026-02-28", trigger: ByCalendar, missed: 2, nextDate: "2027-02-28", anchor: 29}},

		// Unscheduled calendar plans.
		{"never scheduled and never done: due today",
			Plan{Calendar: Interval{6, Months}, Mode: Fixed, Active: true}, active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByCalendar, nextDate: "2026-09-15", anchor: 15}},
		{"never scheduled: one interval after the last completion",
			Plan{Calendar: Interval{1, Months}, Mode: Fixed, Active: true, LastCompletedDate: d("2026-01-15")}, active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByCalendar, missed: 1, nextDate: "2026-04-15", anchor: 15}},

		// Plan and asset state.
		{"inactive plan", with(monthly("2026-03-01"), func(p *Plan) { p.Active = false }), active, "2026-03-15", want{outcome: PlanInactive}},
		{"INACTIVE asset", monthly("2026-03-01"), Asset{Status: "INACTIVE"}, "2026-03-15", want{outcome: AssetInactive}},
		{"IN_MAINTENANCE asset", monthly("2026-03-01"), Asset{Status: "IN_MAINTENANCE"}, "2026-03-15", want{outcome: AssetInactive}},
		{"RETIRED asset", monthly("2026-03-01"), Asset{Status: "RETIRED"}, "2026-03-15", want{outcome: AssetInactive}},
		{"past the end date", with(monthly("2026-03-01"), func(p *Plan) { p.EndDate = d("2026-03-10") }), active, "2026-03-15",
			want{outcome: Ended}},
		{"due on the end date", with(monthly("2026-03-15"), func(p *Plan) { p.EndDate = d("2026-03-15") }), active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByCalendar, nextDate: "2026-04-15", anchor: 15}},
		{"next occurrence after the end date, even inside the lead window",
			with(monthly("2026-03-20"), func(p *Plan) { p.LeadDays, p.EndDate = 10, d("2026-03-18") }), active, "2026-03-15",
			want{outcome: Ended}},
		{"open work order: skipped, not advanced",
			with(monthly("2025-12-10"), func(p *Plan) { p.OpenWorkOrder = true }), active, "2026-03-15",
			want{outcome: SkippedOpen, due: "2026-03-10", trigger: ByCalendar, missed: 3}},
		{"open work order but nothing due: not due",
			with(monthly("2026-04-10"), func(p *Plan) { p.OpenWorkOrder = true }), active, "2026-03-15", want{outcome: NotDue}},

		// Meter plans.
		{"km threshold passed", meterOnly(15000, Km, f(45000)), Asset{Status: "ACTIVE", MeterReading: 45200}, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByMeter, nextMeter: f(60000)}},
		{"km exactly at the threshold", meterOnly(15000, Km, f(45000)), Asset{Status: "ACTIVE", MeterReading: 45000}, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByMeter, nextMeter: f(60000)}},
		{"km just below the threshold", meterOnly(15000, Km, f(45000)), Asset{Status: "ACTIVE", MeterReading: 44999.9}, "2026-03-15",
			want{outcome: NotDue}},
		{"km thresholds missed: the next is the first above the reading",
			meterOnly(15000, Km, f(30000)), Asset{Status: "ACTIVE", MeterReading: 62000}, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByMeter, missed: 2, nextMeter: f(75000)}},
		{"engine hours, not the odometer",
			meterOnly(250, Hours, f(1000)), Asset{Status: "ACTIVE", MeterReading: 999999, EngineHours: 1200}, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByMeter, nextMeter: f(1250)}},
		{"engine hours not reached", meterOnly(250, Hours, f(1250)), Asset{Status: "ACTIVE", MeterReading: 999999, EngineHours: 1200}, "2026-03-15",
			want{outcome: NotDue}},
		{"no threshold: one interval after the last completion",
			with(meterOnly(15000, Km, nil), func(p *Plan) { p.LastCompletedMeter = f(40000) }), Asset{Status: "ACTIVE", MeterReading: 56000}, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByMeter, nextMeter: f(70000)}},
		{"no threshold, never done: multiples of the interval from zero",
			meterOnly(15000, Km, nil), Asset{Status: "ACTIVE", MeterReading: 50000}, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByMeter, missed: 2, nextMeter: f(60000)}},
		{"meter in tenths compares exactly", meterOnly(0.1, Hours, f(100.3)), Asset{Status: "ACTIVE", EngineHours: 100.3}, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByMeter, nextMeter: f(100.4)}},
		{"meter plan of an inactive asset", meterOnly(15000, Km, f(45000)), Asset{Status: "INACTIVE", MeterReading: 90000}, "2026-03-15",
			want{outcome: AssetInactive}},
		{"meter plan past its end date",
			with(meterOnly(15000, Km, f(45000)), func(p *Plan) { p.EndDate = d("2026-03-14") }), Asset{Status: "ACTIVE", MeterReading: 90000}, "2026-03-15",
			want{outcome: Ended}},

		// Calendar and meter: whichever comes first.
		{"both: calendar first; the meter restarts from the reading",
			km(monthly("2026-03-10"), 15000, f(60000)), active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-10", trigger: ByCalendar, nextDate: "2026-04-10", anchor: 10, nextMeter: f(65000)}},
		{"both: meter first; the calendar restarts from today",
			km(monthly("2026-05-01"), 15000, f(50000)), Asset{Status: "ACTIVE", MeterReading: 50100}, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByMeter, nextDate: "2026-04-15", anchor: 15, nextMeter: f(65000)}},
		{"both due: the earlier calendar date wins, the meter moves past the reading",
			km(monthly("2026-03-01"), 15000, f(48000)), Asset{Status: "ACTIVE", MeterReading: 50100}, "2026-03-15",
			want{outcome: Generate, due: "2026-03-01", trigger: ByCalendar, nextDate: "2026-04-01", anchor: 1, nextMeter: f(63000)}},
		{"both: calendar in its lead window, meter due today: today is earlier",
			with(km(monthly("2026-03-20"), 15000, f(50000)), func(p *Plan) { p.LeadDays = 7 }), Asset{Status: "ACTIVE", MeterReading: 50000}, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByMeter, nextDate: "2026-04-15", anchor: 15, nextMeter: f(65000)}},
		{"both: calendar in its lead window, meter not due",
			with(km(monthly("2026-03-20"), 15000, f(60000)), func(p *Plan) { p.LeadDays = 7 }), Asset{Status: "ACTIVE", MeterReading: 50000}, "2026-03-15",
			want{outcome: Generate, due: "2026-03-20", trigger: ByCalendar, nextDate: "2026-04-20", anchor: 20, nextMeter: f(65000)}},
		{"both: missed is the larger count",
			km(monthly("2025-12-10"), 15000, f(20000)), active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-10", trigger: ByCalendar, missed: 3, nextDate: "2026-04-10", anchor: 10, nextMeter: f(65000)}},
		{"both: neither due", km(monthly("2026-04-10"), 15000, f(60000)), active, "2026-03-15", want{outcome: NotDue}},
		{"both: calendar past the end date, meter still fires",
			with(km(monthly("2026-04-10"), 15000, f(50000)), func(p *Plan) { p.EndDate = d("2026-03-31") }), active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-15", trigger: ByMeter, nextDate: "2026-04-15", anchor: 15, nextMeter: f(65000)}},

		// Floating plans advance provisionally, like fixed ones.
		{"floating: provisional next due as if done on the due date",
			with(monthly("2025-12-10"), func(p *Plan) { p.Mode = Floating }), active, "2026-03-15",
			want{outcome: Generate, due: "2026-03-10", trigger: ByCalendar, missed: 3, nextDate: "2026-04-10", anchor: 10}},

		// Malformed plans.
		{"no interval at all", Plan{Mode: Fixed, Active: true}, active, "2026-03-15", want{outcome: Invalid}},
		{"unknown unit", Plan{Calendar: Interval{1, "fortnights"}, Mode: Fixed, Active: true}, active, "2026-03-15", want{outcome: Invalid}},
		{"unknown meter unit", Plan{Meter: MeterInterval{100, "miles"}, Mode: Fixed, Active: true}, active, "2026-03-15", want{outcome: Invalid}},
		{"unknown mode", Plan{Calendar: Interval{1, Days}, Mode: "sometimes", Active: true}, active, "2026-03-15", want{outcome: Invalid}},
		{"anchor out of range", with(monthly("2026-03-15"), func(p *Plan) { p.AnchorDay = 32 }), active, "2026-03-15", want{outcome: Invalid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.check(t, Evaluate(tt.plan, tt.asset, d(tt.today)))
		})
	}
}

func TestComplete(t *testing.T) {
	floating := with(monthly("2026-04-15"), func(p *Plan) { p.Mode = Floating; p.AnchorDay = 15 })
	tests := []struct {
		name       string
		plan       Plan
		on         string
		meter      float64
		wantNext   string
		wantAnchor int
		wantMeter  *float64
		wantLast   *float64
	}{
		{"floating: re-anchored on a late completion", floating, "2026-03-20", 0, "2026-04-20", 20, nil, nil},
		{"floating: re-anchored on an early completion", floating, "2026-03-05", 0, "2026-04-05", 5, nil, nil},
		{"floating: completed on Jan 31", floating, "2026-01-31", 0, "2026-02-28", 31, nil, nil},
		{"floating weekly: no anchor day",
			Plan{Calendar: Interval{2, Weeks}, Mode: Floating, Active: true, NextDueDate: d("2026-04-01")}, "2026-03-20", 0, "2026-04-03", 0, nil, nil},
		{"floating meter and calendar",
			with(floating, func(p *Plan) { p.Meter, p.NextDueMeter = MeterInterval{15000, Km}, f(60000) }),
			"2026-03-20", 46000.04, "2026-04-20", 20, f(61000), f(46000)},
		{"fixed: the schedule stays",
			with(monthly("2026-04-15"), func(p *Plan) { p.Meter, p.NextDueMeter = MeterInterval{15000, Km}, f(60000) }),
			"2026-03-20", 46000, "2026-04-15", 15, f(60000), f(46000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Complete(tt.plan, d(tt.on), tt.meter)
			s := got.Schedule()
			if got.LastCompletedDate != d(tt.on) {
				t.Errorf("last completed %s, want %s", got.LastCompletedDate, tt.on)
			}
			if s.NextDueDate.String() != tt.wantNext || s.AnchorDay != tt.wantAnchor {
				t.Errorf("next %s (anchor %d), want %s (anchor %d)", s.NextDueDate, s.AnchorDay, tt.wantNext, tt.wantAnchor)
			}
			if fmt.Sprint(deref(s.NextDueMeter)) != fmt.Sprint(deref(tt.wantMeter)) {
				t.Errorf("next meter %v, want %v", deref(s.NextDueMeter), deref(tt.wantMeter))
			}
			if fmt.Sprint(deref(got.LastCompletedMeter)) != fmt.Sprint(deref(tt.wantLast)) {
				t.Errorf("last completed meter %v, want %v", deref(got.LastCompletedMeter), deref(tt.wantLast))
			}
		})
	}
}

// TestMonthEndScheduleDoesNotDrift runs a plan anchored on the 31st through
// two years of daily evaluations, completing every work order at once.
func TestMonthEndScheduleDoesNotDrift(t *testing.T) {
	p := monthly("2027-01-31")
	var dues []string
	for day := d("2027-01-01"); day.Before(d("2029-01-01")); day = day.AddDays(1) {
		dec := Evaluate(p, active, day)
		if dec.Outcome != Generate {
			continue
		}
		dues = append(dues, dec.DueDate.String())
		p.NextDueDate, p.AnchorDay, p.NextDueMeter = dec.Next.NextDueDate, dec.Next.AnchorDay, dec.Next.NextDueMeter
	}
	want := []string{
		"2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31", "2027-06-30",
		"2027-07-31", "2027-08-31", "2027-09-30", "2027-10-31", "2027-11-30", "2027-12-31",
		"2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30", "2028-05-31", "2028-06-30",
		"2028-07-31", "2028-08-31", "2028-09-30", "2028-10-31", "2028-11-30", "2028-12-31",
	}
	if fmt.Sprint(dues) != fmt.Sprint(want) {
		t.Fatalf("due dates\n %v\nwant\n %v", dues, want)
	}
}

// TestFloatingCycle follows a floating plan through generation, a late
// completion and the next generation.
func TestFloatingCycle(t *testing.T) {
	p := with(monthly("2026-03-10"), func(p *Plan) { p.Mode = Floating; p.LeadDays = 3 })
	dec := Evaluate(p, active, d("2026-03-07"))
	want{outcome: Generate, due: "2026-03-10", trigger: ByCalendar, nextDate: "2026-04-10", anchor: 10}.check(t, dec)
	p.NextDueDate, p.AnchorDay, p.OpenWorkOrder = dec.Next.NextDueDate, dec.Next.AnchorDay, true
	// Still open when the provisional date comes round: skipped.
	want{outcome: SkippedOpen, due: "2026-04-10", trigger: ByCalendar}.check(t, Evaluate(p, active, d("2026-04-08")))
	// Done on Apr 9: the next one is a month after the completion.
	p.OpenWorkOrder = false
	p = Complete(p, d("2026-04-09"), active.MeterReading)
	want{outcome: NotDue}.check(t, Evaluate(p, active, d("2026-04-10")))
	want{outcome: Generate, due: "2026-05-09", trigger: ByCalendar, nextDate: "2026-06-09", anchor: 9}.check(t, Evaluate(p, active, d("2026-05-06")))
}

func TestOutcomeString(t *testing.T) {
	for o := NotDue; o <= Invalid+1; o++ {
		if o.String() == "" {
			t.Errorf("Outcome(%d) has no name", o)
		}
	}
	dec := Evaluate(Plan{Mode: Fixed, Active: true}, active, d("2026-01-01"))
	if dec.Outcome != Invalid || dec.Err == nil {
		t.Errorf("a plan without intervals: %+v, want Invalid with an explanation", dec)
	}
}
