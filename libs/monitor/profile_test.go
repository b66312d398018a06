package monitor

import (
	"math"
	"strings"
	"testing"
)

// trainingRows are 10 rows of features a (1..10) and b (constant 0) with
// scores 0.1..1.0.
func trainingRows() ([][]float64, []float64) {
	X := make([][]float64, 10)
	scores := make([]float64, 10)
	for i := range X {
		X[i] = []float64{float64(i + 1), 0}
		scores[i] = float64(i+1) / 10
	}
	return X, scores
}

func TestProfileRoundTripAndOwnPSI(t *testing.T) {
	X, scores := trainingRows()
	p, err := NewProfile("v1", []string{"a", "b"}, X, scores, 5)
	if err != nil {
		t.Fatal(err)
	}
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	q, err := LoadProfile(data)
	if err != nil {
		t.Fatal(err)
	}
	if q.ModelVersion != "v1" || q.Rows != 10 || len(q.Features) != 2 || len(q.Features["b"].Fractions) != 1 {
		t.Errorf("loaded profile %+v", q)
	}
	psi, err := q.PSI([]string{"a", "b"}, X, scores)
	if err != nil {
		t.Fatal(err)
	}
	if len(psi) != 3 {
		t.Errorf("PSI %v, want a, b and %s", psi, Score)
	}
	for name, v := range psi {
		if v != 0 {
			t.Errorf("PSI of %s on the training rows %v, want 0", name, v)
		}
	}
}

func TestProfilePSIByName(t *testing.T) {
	X, scores := trainingRows()
	p, err := NewProfile("v1", []string{"a", "b"}, X, scores, 5)
	if err != nil {
		t.Fatal(err)
	}
	// Columns in another order, b absent, c unknown to the profile; every a
	// is 100, above the training range: a's whole share lands in its top
	// bin (1 − .2 expected) and the four others are empty (1e-4):
	// (1−.2)·ln(1/.2) + 4·(1e-4−.2)·ln(1e-4/.2)
	// = .8·1.609438 + 4·(−.1999)·(−7.600902) = 1.287550 + 6.077681 ≈ 7.365231.
	rows := [][]float64{{5, 100}, {5, 100}}
	psi, err := p.PSI([]string{"c", "a"}, rows, []float64{.1, .6})
	if err != nil {
		t.Fatal(err)
	}
	want := .8*math.Log(5) + 4*(1e-4-.2)*math.Log(1e-4/.2)
	if len(psi) != 2 || !near(psi["a"], want) {
		t.Errorf("PSI %v, want a %v and %s only", psi, want, Score)
	}
	// Scores .1 and .6 fall in the bins (-inf,.2] and (.4,.6] of 5:
	// 2·(.5−.2)·ln(.5/.2) + 3·(1e-4−.2)·ln(1e-4/.2).
	if want := 2*.3*math.Log(2.5) + 3*(1e-4-.2)*math.Log(1e-4/.2); !near(psi[Score], want) {
		t.Errorf("score PSI %v, want %v", psi[Score], want)
	}
}

func TestProfileErrors(t *testing.T) {
	X, scores := trainingRows()
	if _, err := NewProfile("v1", []string{"a"}, X, scores, 5); err == nil || !strings.Contains(err.Error(), "row 0 has 2 values for 1 features") {
		t.Errorf("narrow schema: %v", err)
	}
	if _, err := NewProfile("v1", []string{"a", "b"}, X, scores[:3], 5); err == nil || !strings.Contains(err.Error(), "10 rows but 3 scores") {
		t.Errorf("short scores: %v", err)
	}
	if _, err := NewProfile("v1", []string{"a", "a"}, X, scores, 5); err == nil || !strings.Contains(err.Error(), `"a" appears twice`) {
		t.Errorf("duplicate feature: %v", err)
	}
	if _, err := NewProfile("v1", []string{"a", Score}, X, scores, 5); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("feature named score: %v", err)
	}
	if _, err := NewProfile("", []string{"a", "b"}, X, scores, 5); err == nil {
		t.Error("no version: no error")
	}
	if _, err := NewProfile("v1", []string{"a", "b"}, nil, nil, 5); err == nil {
		t.Error("no rows: no error")
	}
	p, err := NewProfile("v1", []string{"a", "b"}, X, scores, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PSI([]string{"a", "b"}, X[:2], scores); err == nil || !strings.Contains(err.Error(), "2 rows but 10 scores") {
		t.Errorf("PSI shape mismatch: %v", err)
	}
	if _, err := p.PSI([]string{"a", "b"}, nil, nil); err == nil {
		t.Error("PSI of no rows: no error")
	}
}

func TestLoadProfileRejects(t *testing.T) {
	const score = `"score":{"edges":[0.5],"fractions":[0.5,0.5]}`
	tests := []struct{ name, json, want string }{
		{"not JSON", `{`, "decode profile"},
		{"no version", `{"rows":1,"features":{},` + score + `}`, "no model version"},
		{"no rows", `{"model_version":"v1","rows":0,"features":{},` + score + `}`, "0 rows"},
		{"edges not ascending", `{"model_version":"v1","rows":1,"features":{"a":{"edges":[2,1],"fractions":[0.2,0.3,0.5]}},` + score + `}`, `feature "a": edges not ascending`},
		{"fraction count", `{"model_version":"v1","rows":1,"features":{"a":{"edges":[1],"fractions":[1]}},` + score + `}`, "1 fractions for 1 edges, want 2"},
		{"fractions sum", `{"model_version":"v1","rows":1,"features":{"a":{"edges":[1],"fractions":[0.5,0.4]}},` + score + `}`, "sum to 0.9"},
		{"negative fraction", `{"model_version":"v1","rows":1,"features":{"a":{"edges":[1],"fractions":[1.5,-0.5]}},` + score + `}`, "fraction 0 is 1.5"},
		{"bad score", `{"model_version":"v1","rows":1,"features":{},"score":{"edges":[],"fractions":[]}}`, "score: 0 fractions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadProfile([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
