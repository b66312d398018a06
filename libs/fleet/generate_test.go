package fleet

import (
	"testing"
	"time"
)

func TestAddInterval(t *testing.T) {
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		from time.Time
		v    int
		unit string
		want time.Time
	}{
		{d(2025, 1, 31), 1, "months", d(2025, 2, 28)},
		{d(2024, 1, 31), 1, "months", d(2024, 2, 29)},
		{d(2025, 11, 30), 3, "months", d(2026, 2, 28)},
		{d(2024, 2, 29), 1, "years", d(2025, 2, 28)},
		{d(2025, 3, 15), 2, "weeks", d(2025, 3, 29)},
		{d(2025, 12, 31), 1, "days", d(2026, 1, 1)},
		{d(2025, 8, 31), 6, "months", d(2026, 2, 28)},
	} {
		if got := addInterval(tc.from, tc.v, tc.unit); !got.Equal(tc.want) {
			t.Errorf("%s + %d %s = %s, want %s", tc.from.Format(time.DateOnly), tc.v, tc.unit, got.Format(time.DateOnly), tc.want.Format(time.DateOnly))
		}
	}
}
