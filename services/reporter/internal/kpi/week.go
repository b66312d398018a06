package kpi

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Week is an ISO 8601 week: Monday to Sunday, week 1 being the week with the
// year's first Thursday.
type Week struct {
	Year int
	Num  int
}

var weekRE = regexp.MustCompile(`^(\d{4})-W(\d{2})$`)

// ParseWeek parses "2026-W47". The week must exist in that ISO year (53 only
// in years that have it).
func ParseWeek(s string) (Week, error) {
	m := weekRE.FindStringSubmatch(s)
	if m == nil {
		return Week{}, fmt.Errorf("week %q: want an ISO week such as 2026-W47", s)
	}
	y, _ := strconv.Atoi(m[1])
	n, _ := strconv.Atoi(m[2])
	if y < 1900 || y > 9999 {
		return Week{}, fmt.Errorf("week %q: year out of range", s)
	}
	if n < 1 || n > WeeksIn(y) {
		return Week{}, fmt.Errorf("week %q: %d has weeks 1 to %d", s, y, WeeksIn(y))
	}
	return Week{Year: y, Num: n}, nil
}

// WeeksIn is the number of ISO weeks of year y (52 or 53): December 28 is
// always in the year's last week.
func WeeksIn(y int) int {
	_, w := time.Date(y, time.December, 28, 12, 0, 0, 0, time.UTC).ISOWeek()
	return w
}

// WeekOf is the ISO week that contains t's calendar day in loc.
func WeekOf(t time.Time, loc *time.Location) Week {
	y, w := t.In(loc).ISOWeek()
	return Week{Year: y, Num: w}
}

// String is the ISO form, e.g. 2026-W47.
func (w Week) String() string { return fmt.Sprintf("%04d-W%02d", w.Year, w.Num) }

// Monday is the week's first day (a date at UTC midnight).
func (w Week) Monday() time.Time {
	jan4 := time.Date(w.Year, time.January, 4, 0, 0, 0, 0, time.UTC)
	offset := (int(jan4.Weekday()) + 6) % 7 // days since Monday
	return jan4.AddDate(0, 0, -offset+7*(w.Num-1))
}

// Sunday is the week's last day.
func (w Week) Sunday() time.Time { return w.Monday().AddDate(0, 0, 6) }

// Add moves n weeks (negative: back).
func (w Week) Add(n int) Week {
	y, num := w.Monday().AddDate(0, 0, 7*n).ISOWeek()
	return Week{Year: y, Num: num}
}

// Bounds is the week as the half-open interval [start, end) of instants in
// loc: Monday 00:00 to the next Monday 00:00, local time (a week across a
// daylight saving change is an hour shorter or longer).
func (w Week) Bounds(loc *time.Location) (start, end time.Time) {
	m := w.Monday()
	start = time.Date(m.Year(), m.Month(), m.Day(), 0, 0, 0, 0, loc)
	end = time.Date(m.Year(), m.Month(), m.Day()+7, 0, 0, 0, 0, loc)
	return start, end
}

// ReportingWeek is the week a report covers: the ISO week before the one
// containing the logical date (in loc), so the Monday 08:00 run reports on
// the full week that just ended.
func ReportingWeek(logical time.Time, loc *time.Location) Week {
	return WeekOf(logical, loc).Add(-1)
}
