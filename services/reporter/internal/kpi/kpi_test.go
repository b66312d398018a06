package kpi_test

import (
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/services/reporter/internal/kpi"
)

func TestParseWeek(t *testing.T) {
	for _, tt := range []struct {
		in     string
		want   string
		monday string
		err    bool
	}{
		{in: "2026-W47", want: "2026-W47", monday: "2026-11-16"},
		{in: "2026-W01", want: "2026-W01", monday: "2025-12-29"}, // week 1 starts in the previous year
		{in: "2026-W53", want: "2026-W53", monday: "2026-12-28"}, // 2026 has 53 weeks
		{in: "2020-W53", want: "2020-W53", monday: "2020-12-28"},
		{in: "2025-W53", err: true}, // 2025 has 52
		{in: "2026-W00", err: true},
		{in: "2026-W54", err: true},
		{in: "2026-47", err: true},
		{in: "2026-W7", err: true},
		{in: " 2026-W47", err: true},
		{in: "", err: true},
	} {
		w, err := kpi.ParseWeek(tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("ParseWeek(%q) = %v, want an error", tt.in, w)
			}
			continue
		}
		if err != nil || w.String() != tt.want || w.Monday().Format(time.DateOnly) != tt.monday {
			t.Errorf("ParseWeek(%q) = %v (Monday %s), %v; want %s (Monday %s)", tt.in, w, w.Monday().Format(time.DateOnly), err, tt.want, tt.monday)
		}
	}
}

func TestReportingWeek(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		logical string
		loc     *time.Location
		want    string
	}{
		{"2026-11-23T08:00:00Z", time.UTC, "2026-W47"},        // the Monday run reports the week just ended
		{"2026-11-29T23:59:59Z", time.UTC, "2026-W47"},        // any day of W48
		{"2026-11-29T23:30:00Z", berlin, "2026-W48"},          // already Monday 00:30 in Berlin
		{"2026-01-05T08:00:00Z", time.UTC, "2026-W01"},        // W02's Monday
		{"2026-01-01T08:00:00Z", time.UTC, "2025-W52"},        // 1 Jan 2026 is in 2026-W01
		{"2021-01-04T08:00:00Z", time.UTC, "2020-W53"},        // across a 53-week year
		{"2027-01-04T08:00:00Z", time.UTC, "2026-W53"},        //
		{"2026-03-30T06:30:00Z", berlin, "2026-W13"},          // the Monday after the DST change
		{"2026-11-16T00:00:00+01:00", berlin, "2026-W46"},     // Monday midnight local
		{"2026-11-15T23:59:59.999+01:00", berlin, "2026-W45"}, // just before it
		{"2026-11-23T08:00:00-08:00", time.UTC, "2026-W47"},   // 16:00 UTC
		{"2026-11-22T20:00:00-08:00", time.UTC, "2026-W47"},   // 04:00 UTC Monday
		{"2026-11-22T20:00:00-08:00", time.FixedZone("PST", -8*3600), "2026-W46"},
	} {
		at, err := time.Parse(time.RFC3339Nano, tt.logical)
		if err != nil {
			t.Fatal(err)
		}
		if got := kpi.ReportingWeek(at, tt.loc).String(); got != tt.want {
			t.Errorf("ReportingWeek(%s, %s) = %s, want %s", tt.logical, tt.loc, got, tt.want)
		}
	}
}

func TestWeekBoundsAcrossDST(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	s, e := week(t, "2026-W13").Bounds(berlin) // 23-29 Mar 2026; clocks go forward on the 29th
	if e.Sub(s) != 7*24*time.Hour-time.Hour || s.Format(time.RFC3339) != "2026-03-23T00:00:00+01:00" {
		t.Fatalf("bounds %s %s (%s)", s, e, e.Sub(s))
	}
	if got := week(t, "2026-W01").Add(-1).String(); got != "2025-W52" {
		t.Fatalf("Add(-1) = %s", got)
	}
	if got := week(t, "2026-W53").Add(1).String(); got != "2027-W01" {
		t.Fatalf("Add(1) = %s", got)
	}
}

func TestRatios(t *testing.T) {
	for _, tt := range []struct {
		name  string
		got   kpi.Opt
		want  float64
		valid bool
	}{
		{"MTBF no failure", kpi.MTBF(365, 0), 0, false},
		{"MTBF no failure, no time", kpi.MTBF(0, 0), 0, false},
		{"MTBF one failure", kpi.MTBF(3, 1), 3, true},
		{"MTBF", kpi.MTBF(386, 4), 96.5, true},
		{"Percent", kpi.Percent(2, 3), 200.0 / 3, true},
		{"Percent of nothing", kpi.Percent(0, 0), 0, false},
		{"Percent zero", kpi.Percent(0, 5), 0, true},
		{"Ratio", kpi.Ratio(1, 4), 0.25, true},
		{"Sub", kpi.Sub(kpi.Some(5), kpi.Some(7)), -2, true},
		{"Sub n/a", kpi.Sub(kpi.Some(5), kpi.NA), 0, false},
		{"Sub n/a first", kpi.Sub(kpi.NA, kpi.Some(5)), 0, false},
	} {
		wantOpt(t, tt.name, tt.got, tt.want, tt.valid)
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		v      kpi.Opt
		f      kpi.Format
		value  string
		asDiff string
	}{
		{kpi.Some(1234567), kpi.Integer, "1,234,567", "+1,234,567"},
		{kpi.Some(-12), kpi.Integer, "-12", "-12"},
		{kpi.Some(0), kpi.Integer, "0", "0"},
		{kpi.Some(999), kpi.Integer, "999", "+999"},
		{kpi.Some(4.333), kpi.Hours, "4.3 h", "+4.3 h"},
		{kpi.Some(-0.04), kpi.Hours, "0.0 h", "0"}, // rounds to no change
		{kpi.Some(1523.26), kpi.Days, "1,523.3 d", "+1,523.3 d"},
		{kpi.Some(66.666), kpi.Pct, "66.7 %", "+66.7 pp"},
		{kpi.Some(-16.666), kpi.Pct, "-16.7 %", "-16.7 pp"},
		{kpi.Some(1234.5), kpi.Money, "1,234.50", "+1,234.50"},
		{kpi.Some(0.7251), kpi.Probability, "0.725", "+0.725"},
		{kpi.NA, kpi.Integer, "n/a", "n/a"},
		{kpi.NA, kpi.Days, "n/a", "n/a"},
	} {
		if got := kpi.FormatValue(tt.v, tt.f); got != tt.value {
			t.Errorf("FormatValue(%+v, %d) = %q, want %q", tt.v, tt.f, got, tt.value)
		}
		if got := kpi.FormatDelta(tt.v, tt.f); got != tt.asDiff {
			t.Errorf("FormatDelta(%+v, %d) = %q, want %q", tt.v, tt.f, got, tt.asDiff)
		}
	}
}

func TestHeadlineLeavesOutNA(t *testing.T) {
	h := kpi.Headline([]kpi.Row{
		{Key: "a", Cur: kpi.Some(2)},
		{Key: "b", Cur: kpi.NA, Prev: kpi.Some(1)},
	})
	if len(h) != 1 || h["a"] != 2 {
		t.Fatalf("headline %v", h)
	}
}
