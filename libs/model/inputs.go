package model

import (
	"fmt"

	"github.com/cmmsflow/cmmsflow/libs/features"
)

// VehicleTypePrefix names the one-hot inputs of the vehicle_type category:
// "vehicle_type=car", "vehicle_type=van", ...
const VehicleTypePrefix = "vehicle_type="

// InputNames is the input schema the trainer fits models on: the numeric
// features (features.Numeric) followed by vehicle_type one-hot over
// features.VehicleTypes.
func InputNames() []string {
	names := append([]string(nil), features.Numeric...)
	for _, t := range features.VehicleTypes {
		names = append(names, VehicleTypePrefix+t)
	}
	return names
}

// Inputs is r's values for InputNames, in that order.
func Inputs(r features.Row) []float64 {
	return append(r.Vector(), r.VehicleTypeOneHot()...)
}

// Vector builds the input vector of r in the order of m.Features, so a model
// fitted on an older or newer input schema still scores rows by name. An
// input the row cannot supply is an error.
func (m *Model) Vector(r features.Row) ([]float64, error) {
	values := make(map[string]float64, len(features.Numeric)+len(features.VehicleTypes))
	for i, v := range r.Vector() {
		values[features.Numeric[i]] = v
	}
	for i, v := range r.VehicleTypeOneHot() {
		values[VehicleTypePrefix+features.VehicleTypes[i]] = v
	}
	out := make([]float64, len(m.Features))
	for j, name := range m.Features {
		v, ok := values[name]
		if !ok {
			return nil, fmt.Errorf("model %s: input %q is not a feature of the row schema", m.Version, name)
		}
		out[j] = v
	}
	return out, nil
}

// PredictRow is Predict on m.Vector(r).
func (m *Model) PredictRow(r features.Row) (float64, error) {
	x, err := m.Vector(r)
	if err != nil {
		return 0, err
	}
	return m.Predict(x)
}
