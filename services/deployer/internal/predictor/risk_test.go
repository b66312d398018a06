package predictor

import (
	"math"
	"testing"
)

func TestRiskLevel(t *testing.T) {
	for _, c := range []struct {
		p    float64
		want string
	}{
		{0, Low},
		{0.1, Low},
		{math.Nextafter(0.25, 0), Low},
		{0.25, Medium},
		{0.4999, Medium},
		{0.5, High},
		{math.Nextafter(0.75, 0), High},
		{0.75, Critical},
		{0.99, Critical},
		{1, Critical},
		{math.NaN(), Low},
	} {
		if got := RiskLevel(c.p); got != c.want {
			t.Errorf("RiskLevel(%v) = %q, want %q", c.p, got, c.want)
		}
	}
	if len(Levels) != 4 || Levels[0] != Low || Levels[3] != Critical {
		t.Errorf("Levels = %v", Levels)
	}
}
