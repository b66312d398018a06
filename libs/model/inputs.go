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
	return appendInputs(make([]float64, 0, len(inputIndex)), r)
}

func appendInputs(dst []float64, r features.Row) []float64 {
	return r.AppendVehicleTypeOneHot(r.AppendVector(dst))
}

// inputIndex is each input's position in Inputs.
var inputIndex = func() map[string]int {
	idx := map[string]int{}
	for i, name := range InputNames() {
		idx[name] = i
	}
	return idx
}()

// Vector builds the input vector of r in the order of m.Features, so a model
// fitted on an older or newer input schema still scores rows by name. An
// input the row cannot supply is an error.
func (m *Model) Vector(r features.Row) ([]float64, error) {
	X, err := m.Vectors([]features.Row{r})
	if err != nil {
		return nil, err
	}
	return X[0], nil
}

// Vectors is Vector of every row, their values in one allocation.
func (m *Model) Vectors(rows []features.Row) ([][]float64, error) {
	pos := make([]int, len(m.Features))
	for j, name := range m.Features {
		i, ok := inputIndex[name]
		if !ok {
			return nil, fmt.Errorf("model %s: input %q is not a feature of the row schema", m.Version, name)
		}
		pos[j] = i
	}
	d := len(pos)
	flat := make([]float64, len(rows)*d)
	X := make([][]float64, len(rows))
	in := make([]float64, 0, len(inputIndex))
	for i, r := range rows {
		in = appendInputs(in[:0], r)
		x := flat[i*d : (i+1)*d : (i+1)*d]
		for j, p := range pos {
			x[j] = in[p]
		}
		X[i] = x
	}
	return X, nil
}

// PredictRow is Predict on m.Vector(r).
func (m *Model) PredictRow(r features.Row) (float64, error) {
	x, err := m.Vector(r)
	if err != nil {
		return 0, err
	}
	return m.Predict(x)
}
