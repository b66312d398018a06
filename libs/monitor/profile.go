package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Score is the key of the score distribution in the PSI maps.
const Score = "score"

// Profile is a model's training profile: the histogram of every input
// feature and of the score over the rows the model was trained on, which
// scored data is compared with.
type Profile struct {
	ModelVersion string               `json:"model_version"`
	Rows         int                  `json:"rows"`
	Features     map[string]Histogram `json:"features"`
	Score        Histogram            `json:"score"`
}

// NewProfile profiles the rows X (one value per name of features, in that
// order) and their scores with NewHistogram into bins bins.
func NewProfile(version string, features []string, X [][]float64, scores []float64, bins int) (Profile, error) {
	if version == "" {
		return Profile{}, errors.New("monitor: profile needs a model version")
	}
	if bins < 1 {
		return Profile{}, fmt.Errorf("monitor: profile needs at least one bin, got %d", bins)
	}
	if len(X) == 0 {
		return Profile{}, errors.New("monitor: profile needs at least one row")
	}
	if err := checkShape(features, X, scores); err != nil {
		return Profile{}, err
	}
	p := Profile{ModelVersion: version, Rows: len(X), Features: make(map[string]Histogram, len(features))}
	for j, name := range features {
		if name == Score {
			return Profile{}, fmt.Errorf("monitor: feature name %q is reserved for the score", Score)
		}
		if _, dup := p.Features[name]; dup {
			return Profile{}, fmt.Errorf("monitor: feature %q appears twice", name)
		}
		p.Features[name] = NewHistogram(column(X, j), bins)
	}
	p.Score = NewHistogram(scores, bins)
	return p, nil
}

// checkShape checks that X has one score per row and one value per feature
// in every row.
func checkShape(features []string, X [][]float64, scores []float64) error {
	if len(X) != len(scores) {
		return fmt.Errorf("monitor: %d rows but %d scores", len(X), len(scores))
	}
	for i, row := range X {
		if len(row) != len(features) {
			return fmt.Errorf("monitor: row %d has %d values for %d features", i, len(row), len(features))
		}
	}
	return nil
}

func column(X [][]float64, j int) []float64 {
	out := make([]float64, len(X))
	for i, row := range X {
		out[i] = row[j]
	}
	return out
}

// Marshal encodes p as JSON (the profile.json stored beside the model).
func (p Profile) Marshal() ([]byte, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("monitor: encode profile of %s: %w", p.ModelVersion, err)
	}
	return data, nil
}

// LoadProfile decodes a profile written by Marshal and validates it.
func LoadProfile(data []byte) (Profile, error) {
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return Profile{}, fmt.Errorf("monitor: decode profile: %w", err)
	}
	if err := p.validate(); err != nil {
		return Profile{}, fmt.Errorf("monitor: profile of %q: %w", p.ModelVersion, err)
	}
	return p, nil
}

func (p Profile) validate() error {
	if p.ModelVersion == "" {
		return errors.New("no model version")
	}
	if p.Rows < 1 {
		return fmt.Errorf("%d rows, want at least 1", p.Rows)
	}
	for name, h := range p.Features {
		if err := h.validate(); err != nil {
			return fmt.Errorf("feature %q: %w", name, err)
		}
	}
	if err := p.Score.validate(); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	return nil
}

// PSI compares rows X (one value per name of features) and their scores with
// the profile: the PSI of every profiled feature present in features, and of
// the scores under the key Score. A profiled feature missing from features
// is left out; a feature not profiled is ignored.
func (p Profile) PSI(features []string, X [][]float64, scores []float64) (map[string]float64, error) {
	if len(X) == 0 {
		return nil, errors.New("monitor: no rows to compare with the profile")
	}
	if err := checkShape(features, X, scores); err != nil {
		return nil, err
	}
	// One pass over the rows, tallying every profiled column.
	type profiled struct {
		j int
		t *tally
	}
	var cols []profiled
	for j, name := range features {
		if h, ok := p.Features[name]; ok {
			cols = append(cols, profiled{j, newTally(h)})
		}
	}
	for _, row := range X {
		for _, c := range cols {
			c.t.add(row[c.j])
		}
	}
	out := make(map[string]float64, len(cols)+1)
	for _, c := range cols {
		out[features[c.j]] = psi(c.t.h.Fractions, c.t.shares())
	}
	out[Score] = p.Score.PSI(scores)
	return out, nil
}
