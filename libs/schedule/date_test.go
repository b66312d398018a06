package schedule

import (
	"testing"
	"time"
)

// d parses a YYYY-MM-DD date; "" is the zero Date.
func d(s string) Date {
	if s == "" {
		return Date{}
	}
	v, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return v
}

func TestAddMonths(t *testing.T) {
	tests := []struct {
		from   string
		n      int
		anchor int
		want   string
	}{
		{"2026-01-31", 1, 31, "2026-02-28"}, // Jan 31 + 1 month clamps to the end of February
		{"2028-01-31", 1, 31, "2028-02-29"}, // leap year
		{"2026-02-28", 1, 31, "2026-03-31"}, // the anchor comes back after February
		{"2026-03-31", 1, 31, "2026-04-30"},
		{"2026-04-30", 1, 31, "2026-05-31"},
		{"2026-01-31", 1, 0, "2026-02-28"}, // anchor 0: the date's own day
		{"2026-02-28", 1, 0, "2026-03-28"},
		{"2026-01-30", 1, 30, "2026-02-28"},
		{"2025-12-31", 2, 31, "2026-02-28"}, // across a year end
		{"2026-11-15", 3, 15, "2027-02-15"},
		{"2026-03-31", -1, 31, "2026-02-28"}, // backwards
		{"2026-01-15", -13, 15, "2024-12-15"},
		{"2024-02-29", 12, 29, "2025-02-28"}, // Feb 29 + 1 year
		{"2024-02-29", 48, 29, "2028-02-29"}, // and back on the 29th four years on
		{"2026-06-10", 0, 10, "2026-06-10"},
	}
	for _, tt := range tests {
		if got := AddMonths(d(tt.from), tt.n, tt.anchor).String(); got != tt.want {
			t.Errorf("AddMonths(%s, %d, %d) = %s, want %s", tt.from, tt.n, tt.anchor, got, tt.want)
		}
	}
}

func TestToday(t *testing.T) {
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	tests := []struct {
		now  string
		zone string
		want string
	}{
		{"2026-11-27T23:30:00Z", "UTC", "2026-11-27"},
		{"2026-11-27T23:30:00Z", "Asia/Tokyo", "2026-11-28"}, // already tomorrow in Tokyo
		{"2026-11-27T14:59:59Z", "Asia/Tokyo", "2026-11-27"},
		{"2026-11-27T15:00:00Z", "Asia/Tokyo", "2026-11-28"},
		{"2026-11-27T05:00:00Z", "America/Los_Angeles", "2026-11-26"}, // still yesterday
		{"2026-11-27T10:00:00Z", "Pacific/Kiritimati", "2026-11-28"},  // UTC+14
		{"2026-12-31T23:30:00Z", "Asia/Tokyo", "2027-01-01"},          // across a year end
		{"2026-03-29T00:30:00Z", "Europe/Berlin", "2026-03-29"},       // the night clocks go forward
		{"2026-11-27T06:00:00+09:00", "UTC", "2026-11-26"},            // the instant counts, not its offset
	}
	for _, tt := range tests {
		now, err := time.Parse(time.RFC3339, tt.now)
		if err != nil {
			t.Fatal(err)
		}
		if got := Today(now, load(tt.zone)).String(); got != tt.want {
			t.Errorf("Today(%s, %s) = %s, want %s", tt.now, tt.zone, got, tt.want)
		}
	}
}

func TestDate(t *testing.T) {
	for _, s := range []string{"", "2026-02-30", "2026-1-05", "26-01-05", "2026-01-05T00:00:00Z", "tomorrow"} {
		if _, err := ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) accepted", s)
		}
	}
	if got := d("2026-12-31").AddDays(1); got != (Date{2027, time.January, 1}) {
		t.Errorf("AddDays across a year end = %v", got)
	}
	if got := d("2024-03-01").AddDays(-1).String(); got != "2024-02-29" {
		t.Errorf("AddDays backwards into a leap day = %s", got)
	}
	if got := d("2026-03-01").DaysSince(d("2026-02-01")); got != 28 {
		t.Errorf("DaysSince = %d, want 28", got)
	}
	if got := d("2025-01-01").DaysSince(d("2026-01-01")); got != -365 {
		t.Errorf("DaysSince backwards = %d, want -365", got)
	}
	if !d("2026-01-31").Before(d("2026-02-01")) || d("2026-02-01").Before(d("2026-02-01")) || !d("2027-01-01").After(d("2026-12-31")) {
		t.Error("Before/After wrong")
	}
	if (Date{}).String() != "" || !(Date{}).IsZero() || D(2026, time.February, 30) != d("2026-03-02") {
		t.Error("zero Date or D normalisation wrong")
	}
	if got := d("2026-05-07").Time(); !got.Equal(time.Date(2026, 5, 7, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Time() = %v", got)
	}
}
