package monitor

import (
	"maps"
	"math"
	"testing"
)

func TestThresholdsLevel(t *testing.T) {
	tests := []struct {
		psi  float64
		want string
	}{
		{0, LevelOK}, {0.0999, LevelOK}, {0.1, LevelWarn}, {0.2499, LevelWarn}, {0.25, LevelAlert}, {7, LevelAlert},
	}
	for _, tt := range tests {
		if got := DefaultThresholds.Level(tt.psi); got != tt.want {
			t.Errorf("Level(%v) = %s, want %s", tt.psi, got, tt.want)
		}
	}
}

func TestThresholdsDriftAndAlerting(t *testing.T) {
	psi := map[string]float64{"a": 0.05, "b": 0.3, Score: 0.12, "c": 0.25}
	if got := DefaultThresholds.Drift(psi); got != LevelAlert {
		t.Errorf("Drift = %s, want alert", got)
	}
	if got := DefaultThresholds.Drift(map[string]float64{"a": 0.05, Score: 0.12}); got != LevelWarn {
		t.Errorf("Drift = %s, want warn", got)
	}
	if got := DefaultThresholds.Drift(nil); got != LevelNone {
		t.Errorf("Drift of nothing = %s, want none", got)
	}
	want := map[string]float64{"b": 0.3, "c": 0.25}
	if got := DefaultThresholds.Alerting(psi); !maps.Equal(got, want) {
		t.Errorf("Alerting = %v, want %v", got, want)
	}
}

func TestMaxPSI(t *testing.T) {
	if name, v := MaxPSI(map[string]float64{"b": 0.3, "a": 0.1, "c": 0.3}); name != "b" || v != 0.3 {
		t.Errorf("MaxPSI = %s %v, want b 0.3 (first name among equals)", name, v)
	}
	if name, v := MaxPSI(nil); name != "" || v != 0 {
		t.Errorf("MaxPSI of nothing = %q %v", name, v)
	}
}

func TestThresholdsValidate(t *testing.T) {
	for _, bad := range []Thresholds{{0, 0.25}, {0.3, 0.25}, {0.1, 0.1}, {0.1, math.Inf(1)}, {math.NaN(), 0.25}} {
		if bad.Validate() == nil {
			t.Errorf("%+v valid, want an error", bad)
		}
	}
	if err := DefaultThresholds.Validate(); err != nil {
		t.Error(err)
	}
}
