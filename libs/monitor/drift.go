package monitor

import (
	"fmt"
	"math"
)

// Drift levels of a PSI, and the level of no measurement.
const (
	LevelOK    = "ok"
	LevelWarn  = "warn"
	LevelAlert = "alert"
	LevelNone  = "none"
)

// Thresholds are the PSI lower bounds of the warn and alert levels.
type Thresholds struct {
	Warn, Alert float64
}

// DefaultThresholds are the customary PSI bounds: below 0.1 stable, from
// 0.25 a significant shift.
var DefaultThresholds = Thresholds{Warn: 0.1, Alert: 0.25}

// Validate checks 0 < Warn < Alert, both finite.
func (t Thresholds) Validate() error {
	if !(t.Warn > 0 && t.Warn < t.Alert && !math.IsInf(t.Alert, 1)) {
		return fmt.Errorf("monitor: PSI thresholds warn %v, alert %v: want 0 < warn < alert, finite", t.Warn, t.Alert)
	}
	return nil
}

// Level is the drift level of a PSI: "ok" below Warn, "warn" from Warn and
// below Alert, "alert" from Alert.
func (t Thresholds) Level(psi float64) string {
	switch {
	case psi >= t.Alert:
		return LevelAlert
	case psi >= t.Warn:
		return LevelWarn
	default:
		return LevelOK
	}
}

// Drift is the level of the highest PSI of psi, "none" when psi is empty.
func (t Thresholds) Drift(psi map[string]float64) string {
	if len(psi) == 0 {
		return LevelNone
	}
	_, v := MaxPSI(psi)
	return t.Level(v)
}

// Alerting returns the entries of psi at or above Alert.
func (t Thresholds) Alerting(psi map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for name, v := range psi {
		if v >= t.Alert {
			out[name] = v
		}
	}
	return out
}

// MaxPSI returns the entry of psi with the highest value, the first name in
// order among equal values; "" and 0 for an empty map.
func MaxPSI(psi map[string]float64) (name string, v float64) {
	first := true
	for n, x := range psi {
		if first || x > v || (x == v && n < name) {
			name, v, first = n, x, false
		}
	}
	return name, v
}
