package events

import "testing"

func TestCheckConfValue(t *testing.T) {
	cases := []struct {
		f  ConfFormat
		v  string
		ok bool
	}{
		{ConfDate, "2026-01-31", true},
		{ConfDate, "2024-02-29", true},
		{ConfDate, "2025-02-29", false},
		{ConfDate, "2026-13-01", false},
		{ConfDate, "26-01-01", false},
		{ConfDate, "2026-01-01\n", false},
		{ConfDate, "２０２６-01-01", false},
		{ConfISOWeek, "2020-W53", true},
		{ConfISOWeek, "2021-W53", false},
		{ConfISOWeek, "2021-W52", true},
		{ConfISOWeek, "2021-w10", false},
		{ConfISOWeek, "2021-W1", false},
		{"other", "x", false},
	}
	for _, c := range cases {
		if err := CheckConfValue(c.f, c.v); (err == nil) != c.ok {
			t.Errorf("%s %q: %v", c.f, c.v, err)
		}
	}
}

func TestISOWeeksIn(t *testing.T) {
	for year, want := range map[int]int{2015: 53, 2020: 53, 2021: 52, 2026: 53, 2027: 52} {
		if got := ISOWeeksIn(year); got != want {
			t.Errorf("%d: %d weeks, want %d", year, got, want)
		}
	}
}
