package monitor

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestBandsLevel(t *testing.T) {
	tests := []struct {
		p    float64
		want string
	}{
		{0, Low}, {0.2499, Low}, {0.25, Medium}, {0.4999, Medium}, {0.5, High}, {0.7499, High}, {0.75, Critical}, {1, Critical}, {math.NaN(), Low},
	}
	for _, tt := range tests {
		if got := DefaultBands.Level(tt.p); got != tt.want {
			t.Errorf("Level(%v) = %s, want %s", tt.p, got, tt.want)
		}
	}
}

func TestBandsValidate(t *testing.T) {
	for _, bad := range []Bands{{0, 0.5, 0.75}, {0.5, 0.5, 0.75}, {0.25, 0.8, 0.75}, {0.25, 0.5, 1.1}, {math.NaN(), 0.5, 0.75}} {
		if bad.Validate() == nil {
			t.Errorf("%+v valid, want an error", bad)
		}
	}
	if err := (Bands{0.1, 0.2, 1}).Validate(); err != nil {
		t.Errorf("critical at 1: %v", err)
	}
}

func TestParseRiskBands(t *testing.T) {
	tests := []struct {
		in   string
		want RiskBands
		err  string
	}{
		{"", RiskBands{Default: DefaultBands}, ""},
		{" 0.2, 0.4 ,0.7 ", RiskBands{Default: Bands{0.2, 0.4, 0.7}}, ""},
		{"0.2,0.4,0.7;bus=0.3,0.5,0.8; truck = 0.1,0.2,0.3", RiskBands{Default: Bands{0.2, 0.4, 0.7},
			ByVehicleType: map[string]Bands{"bus": {0.3, 0.5, 0.8}, "truck": {0.1, 0.2, 0.3}}}, ""},
		{"bus=0.3,0.5,0.8", RiskBands{Default: DefaultBands, ByVehicleType: map[string]Bands{"bus": {0.3, 0.5, 0.8}}}, ""},
		{"0.2,0.4", RiskBands{}, `part 1 "0.2,0.4": want three bounds medium,high,critical, got 2`},
		{"0.2,x,0.7", RiskBands{}, `part 1 "0.2,x,0.7": bound 2: strconv.ParseFloat: parsing "x"`},
		{"0.4,0.2,0.7", RiskBands{}, `part 1 "0.4,0.2,0.7": monitor: risk bands 0.4,0.2,0.7: want 0 < medium < high < critical ≤ 1`},
		{"0.2,0.4,0.7;boat=0.3,0.5,0.8", RiskBands{}, `part 2 "boat=0.3,0.5,0.8": unknown vehicle type "boat", want one of car, van`},
		{"bus=0.3,0.5,0.8;bus=0.2,0.5,0.8", RiskBands{}, `part 2 "bus=0.2,0.5,0.8": vehicle type "bus" set twice`},
		{"bus=0.3,0.5,0.8;0.2,0.4,0.7", RiskBands{}, `part 2 "0.2,0.4,0.7": only the first part may set the default bands`},
		{"0.2,0.4,0.7;", RiskBands{}, `part 2 "": empty part`},
		{"van=0.3,0.5,1.5", RiskBands{}, `part 1 "van=0.3,0.5,1.5": monitor: risk bands 0.3,0.5,1.5`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRiskBands(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("parsed bands invalid: %v", err)
			}
		})
	}
}

func TestRiskBandsByVehicleType(t *testing.T) {
	r, err := ParseRiskBands("0.2,0.4,0.7;bus=0.3,0.5,0.8")
	if err != nil {
		t.Fatal(err)
	}
	// 0.75 is critical by default but only high for a bus.
	if got := r.Level(0.75, "bus"); got != High {
		t.Errorf("bus 0.75: %s, want high", got)
	}
	if got := r.Level(0.75, "van"); got != Critical {
		t.Errorf("van 0.75: %s, want critical", got)
	}
	if got := r.For("unknown"); got != r.Default {
		t.Errorf("unknown type bands %+v, want the default", got)
	}
	r.ByVehicleType["car"] = Bands{0.5, 0.4, 0.9}
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), `vehicle type "car"`) {
		t.Errorf("Validate: %v", err)
	}
	if err := (RiskBands{}).Validate(); err == nil || !strings.Contains(err.Error(), "default") {
		t.Errorf("Validate zero: %v", err)
	}
}
