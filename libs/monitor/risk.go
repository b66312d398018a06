package monitor

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cmmsflow/cmmsflow/libs/features"
)

// Risk levels of a failure probability, the values of
// ml_predictions.risk_level (its CHECK constraint).
const (
	Low      = "low"
	Medium   = "medium"
	High     = "high"
	Critical = "critical"
)

// Levels lists the risk levels from lowest to highest.
var Levels = []string{Low, Medium, High, Critical}

// Bands are the lower bounds of the medium, high and critical risk levels.
// The levels are half-open intervals, each including its lower bound:
//
//	low       p < Medium
//	medium    Medium ≤ p < High
//	high      High ≤ p < Critical
//	critical  Critical ≤ p
type Bands struct {
	Medium   float64 `json:"medium"`
	High     float64 `json:"high"`
	Critical float64 `json:"critical"`
}

// DefaultBands are the bands of the original system.
var DefaultBands = Bands{Medium: 0.25, High: 0.50, Critical: 0.75}

// Validate checks 0 < medium < high < critical ≤ 1.
func (b Bands) Validate() error {
	if !(0 < b.Medium && b.Medium < b.High && b.High < b.Critical && b.Critical <= 1) {
		return fmt.Errorf("monitor: risk bands %v,%v,%v: want 0 < medium < high < critical ≤ 1", b.Medium, b.High, b.Critical)
	}
	return nil
}

// Level maps a failure probability to its risk level. A NaN counts as low.
func (b Bands) Level(p float64) string {
	switch {
	case p >= b.Critical:
		return Critical
	case p >= b.High:
		return High
	case p >= b.Medium:
		return Medium
	default:
		return Low
	}
}

// RiskBands are the default bands and the bands of the vehicle types that
// differ from them.
type RiskBands struct {
	Default       Bands            `json:"default"`
	ByVehicleType map[string]Bands `json:"by_vehicle_type,omitempty"`
}

// ParseRiskBands parses the RISK_BANDS setting: parts separated by ";", each
// three bounds "medium,high,critical". A first part without a name sets the
// default bands (DefaultBands when absent); a part "type=medium,high,critical"
// sets the bands of a vehicle type (one of features.VehicleTypes). The empty
// string is the defaults. Example: "0.2,0.4,0.7;bus=0.3,0.5,0.8".
func ParseRiskBands(s string) (RiskBands, error) {
	r := RiskBands{Default: DefaultBands}
	if strings.TrimSpace(s) == "" {
		return r, nil
	}
	for i, part := range strings.Split(s, ";") {
		if err := r.parsePart(i, strings.TrimSpace(part)); err != nil {
			return RiskBands{}, fmt.Errorf("monitor: RISK_BANDS part %d %q: %w", i+1, part, err)
		}
	}
	return r, nil
}

// parsePart adds the i-th part of a RISK_BANDS setting to r.
func (r *RiskBands) parsePart(i int, part string) error {
	if part == "" {
		return errors.New("empty part")
	}
	name, bounds, named := strings.Cut(part, "=")
	if !named {
		if i > 0 {
			return errors.New("only the first part may set the default bands, name the vehicle type (type=medium,high,critical)")
		}
		b, err := parseBands(part)
		if err != nil {
			return err
		}
		r.Default = b
		return nil
	}
	name = strings.TrimSpace(name)
	if !slices.Contains(features.VehicleTypes, name) {
		return fmt.Errorf("unknown vehicle type %q, want one of %s", name, strings.Join(features.VehicleTypes, ", "))
	}
	if _, dup := r.ByVehicleType[name]; dup {
		return fmt.Errorf("vehicle type %q set twice", name)
	}
	b, err := parseBands(bounds)
	if err != nil {
		return err
	}
	if r.ByVehicleType == nil {
		r.ByVehicleType = map[string]Bands{}
	}
	r.ByVehicleType[name] = b
	return nil
}

// parseBands parses and validates "medium,high,critical".
func parseBands(s string) (Bands, error) {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return Bands{}, fmt.Errorf("want three bounds medium,high,critical, got %d", len(fields))
	}
	var v [3]float64
	for i, f := range fields {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return Bands{}, fmt.Errorf("bound %d: %w", i+1, err)
		}
		v[i] = x
	}
	b := Bands{Medium: v[0], High: v[1], Critical: v[2]}
	return b, b.Validate()
}

// Validate checks the default bands and those of every vehicle type.
func (r RiskBands) Validate() error {
	if err := r.Default.Validate(); err != nil {
		return fmt.Errorf("default: %w", err)
	}
	for name, b := range r.ByVehicleType {
		if err := b.Validate(); err != nil {
			return fmt.Errorf("vehicle type %q: %w", name, err)
		}
	}
	return nil
}

// For returns the bands of a vehicle type, the default bands for a type
// without its own.
func (r RiskBands) For(vehicleType string) Bands {
	if b, ok := r.ByVehicleType[vehicleType]; ok {
		return b
	}
	return r.Default
}

// Level is the risk level of p for a vehicle type.
func (r RiskBands) Level(p float64, vehicleType string) string {
	return r.For(vehicleType).Level(p)
}
