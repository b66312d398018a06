package api

import (
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

func TestCheckFormat(t *testing.T) {
	cases := []struct {
		f  events.ConfFormat
		v  string
		ok bool
	}{
		{events.ConfDate, "2026-01-31", true},
		{events.ConfDate, "2024-02-29", true},
		{events.ConfDate, "2025-02-29", false},
		{events.ConfDate, "2026-13-01", false},
		{events.ConfDate, "26-01-01", false},
		{events.ConfDate, "2026-01-01\n", false},
		{events.ConfDate, "２０２６-01-01", false},
		{events.ConfISOWeek, "2020-W53", true},
		{events.ConfISOWeek, "2021-W53", false},
		{events.ConfISOWeek, "2021-W52", true},
		{events.ConfISOWeek, "2021-w10", false},
		{events.ConfISOWeek, "2021-W1", false},
		{"other", "x", false},
	}
	for _, c := range cases {
		if err := checkFormat(c.f, c.v); (err == nil) != c.ok {
			t.Errorf("%s %q: %v", c.f, c.v, err)
		}
	}
}

func TestWeeksIn(t *testing.T) {
	for year, want := range map[int]int{2015: 53, 2020: 53, 2021: 52, 2026: 53, 2027: 52} {
		if got := weeksIn(year); got != want {
			t.Errorf("%d: %d weeks, want %d", year, got, want)
		}
	}
}

func TestPageSizeAndToken(t *testing.T) {
	for in, want := range map[int32]int{0: DefaultPageSize, 1: 1, 100: 100, 101: MaxPageSize, 1 << 30: MaxPageSize} {
		if got, err := pageSize(in); err != nil || got != want {
			t.Errorf("pageSize(%d) = %d %v", in, got, err)
		}
	}
	if _, err := pageSize(-1); err == nil {
		t.Error("negative page size accepted")
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	tok, err := decodeToken(encodeToken(at, "run-1", "f"), "f")
	if err != nil || !tok.time().Equal(at) || tok.ID != "run-1" {
		t.Fatalf("round trip: %v %v", tok, err)
	}
	for _, bad := range []string{"!", "e30", encodeToken(at, "", "f"), encodeToken(at, "x", "g")} {
		if _, err := decodeToken(bad, "f"); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}
