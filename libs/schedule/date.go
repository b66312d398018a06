package schedule

import (
	"fmt"
	"time"
)

// Date is a civil date: a day on the calendar, in no particular time zone.
// The zero Date means "no date".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// D returns the date y-m-d, normalised like time.Date (Feb 30 is Mar 2).
func D(y int, m time.Month, d int) Date {
	return DateOf(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
}

// DateOf is the calendar date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}
}

// Today is the calendar date of the instant now in loc: at 23:30 UTC it is
// already tomorrow in Asia/Tokyo.
func Today(now time.Time, loc *time.Location) Date {
	return DateOf(now.In(loc))
}

// ParseDate parses YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("invalid date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// String formats d as YYYY-MM-DD, or "" for the zero Date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// Time is midnight UTC at the start of d, the form pgx reads and writes for a
// PostgreSQL date.
func (d Date) Time() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
}

// AddDays returns the date n days after d (before, for negative n).
func (d Date) AddDays(n int) Date { return DateOf(d.Time().AddDate(0, 0, n)) }

// DaysSince is the number of days from e to d (negative when d is earlier).
func (d Date) DaysSince(e Date) int {
	return int((d.Time().Unix() - e.Time().Unix()) / 86400)
}

// Compare returns -1, 0 or +1 as d is before, equal to or after e.
func (d Date) Compare(e Date) int {
	switch {
	case d.Year != e.Year:
		return sign(d.Year - e.Year)
	case d.Month != e.Month:
		return sign(int(d.Month) - int(e.Month))
	default:
		return sign(d.Day - e.Day)
	}
}

// Before reports whether d is before e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// After reports whether d is after e.
func (d Date) After(e Date) bool { return d.Compare(e) > 0 }

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// DaysIn is the number of days in month m of year y.
func DaysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// AddMonths returns the date n months after d on day anchorDay of the target
// month, clamped to that month's last day: AddMonths(Jan 31, 1, 31) is Feb 28
// (29 in a leap year) and AddMonths(Feb 28, 1, 31) is Mar 31. An anchorDay of
// 0 means d's own day. Stepping a schedule with its original anchor keeps it
// from drifting to the 28th after February.
func AddMonths(d Date, n, anchorDay int) Date {
	if anchorDay <= 0 {
		anchorDay = d.Day
	}
	months := int(d.Month) - 1 + n
	y := d.Year + floorDiv(months, 12)
	m := time.Month(months-12*floorDiv(months, 12)) + 1
	return Date{Year: y, Month: m, Day: min(anchorDay, DaysIn(y, m))}
}

// monthsBetween is the number of whole calendar months from a's month to b's
// month, ignoring the days.
func monthsBetween(a, b Date) int {
	return (b.Year-a.Year)*12 + int(b.Month) - int(a.Month)
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
