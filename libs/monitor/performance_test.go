package monitor

import (
	"maps"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestRealizedByHand(t *testing.T) {
	labels := []bool{true, false, true, false, false}
	scores := []float64{0.9, 0.8, 0.4, 0.3, 0.1}
	levels := []string{Critical, Critical, Medium, Medium, Low}
	p, err := Realized(labels, scores, levels)
	if err != nil {
		t.Fatal(err)
	}
	// 2 failures × 3 survivors = 6 pairs. The failure at .9 outscores all
	// three survivors (.8, .3, .1): 3; the one at .4 outscores .3 and .1
	// but not .8: 2. AUC = (3+2)/6 = 5/6. Of the two critical assets (.9,
	// .8) one failed: precision 1/2.
	want := Performance{Labelled: 5, Positives: 2, Critical: 2, ROCAUC: 5. / 6, HasAUC: true, CriticalPrecision: 0.5, HasPrecision: true}
	if p.Labelled != want.Labelled || p.Positives != want.Positives || p.Critical != want.Critical ||
		!near(p.ROCAUC, want.ROCAUC) || !p.HasAUC || p.CriticalPrecision != 0.5 || !p.HasPrecision {
		t.Errorf("got %+v, want %+v", p, want)
	}
	wantMetrics := map[string]float64{"labelled": 5, "positives": 2, "critical": 2, "roc_auc": p.ROCAUC, "critical_precision": 0.5}
	if got := p.Metrics(); !maps.Equal(got, wantMetrics) {
		t.Errorf("Metrics = %v, want %v", got, wantMetrics)
	}
}

func TestRealizedUndefined(t *testing.T) {
	// One class (no failure) and no critical asset: neither figure defined.
	p, err := Realized([]bool{false, false}, []float64{0.9, 0.1}, []string{High, Low})
	if err != nil {
		t.Fatal(err)
	}
	if p.HasAUC || p.HasPrecision || p.Labelled != 2 || p.Positives != 0 {
		t.Errorf("got %+v, want no AUC nor precision", p)
	}
	if got, want := p.Metrics(), map[string]float64{"labelled": 2, "positives": 0, "critical": 0}; !maps.Equal(got, want) {
		t.Errorf("Metrics = %v, want %v", got, want)
	}
	if p, err := Realized(nil, nil, nil); err != nil || p.HasAUC || p.Labelled != 0 {
		t.Errorf("no labels: %+v, %v", p, err)
	}
}

func TestRealizedErrors(t *testing.T) {
	if _, err := Realized([]bool{true}, []float64{0.5, 0.1}, []string{Low}); err == nil || !strings.Contains(err.Error(), "1 labels, 2 scores and 1 risk levels") {
		t.Errorf("length mismatch: %v", err)
	}
	if _, err := Realized([]bool{true}, []float64{0.5}, []string{"severe"}); err == nil || !strings.Contains(err.Error(), `risk level "severe" of row 0`) {
		t.Errorf("unknown level: %v", err)
	}
	if _, err := Realized([]bool{true, false}, []float64{math.NaN(), 0.1}, []string{Low, Low}); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("NaN score: %v", err)
	}
}

func measured(labelled, positives int, auc float64) Performance {
	return Performance{Labelled: labelled, Positives: positives, ROCAUC: auc, HasAUC: true}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name             string
		champion, shadow Performance
		promote          bool
		reason           string
	}{
		{"promote", measured(100, 10, 0.70), measured(100, 10, 0.75), true,
			"promoted the shadow: shadow ROC AUC 0.7500 vs champion 0.7000 (+0.0500, margin 0.0200) on 100 labelled assets with 10 failures"},
		{"margin not met", measured(100, 10, 0.70), measured(100, 10, 0.71), false,
			"kept the champion: shadow ROC AUC 0.7100 vs champion 0.7000 (+0.0100, margin 0.0200)"},
		{"worse shadow", measured(100, 10, 0.80), measured(100, 10, 0.60), false, "(-0.2000, margin 0.0200)"},
		{"too few labels", measured(40, 10, 0.60), measured(40, 10, 0.90), false,
			"kept the champion: 40 labelled assets, need at least 50"},
		{"too few failures", measured(100, 4, 0.60), measured(100, 4, 0.90), false,
			"kept the champion: 4 failures among 100 labelled assets, need at least 5"},
		{"undefined AUC", Performance{Labelled: 100, Positives: 10}, measured(100, 10, 0.90), false,
			"kept the champion: ROC AUC undefined on 100 labelled assets with 10 failures"},
		{"different labels", measured(100, 10, 0.60), measured(90, 10, 0.90), false,
			"kept the champion: not measured on the same labels (champion 100 labelled, 10 failed; shadow 90 labelled, 10 failed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			promote, reason := DefaultPromotionRule.Decide(tt.champion, tt.shadow)
			if promote != tt.promote || !strings.Contains(reason, tt.reason) {
				t.Errorf("Decide = %v %q, want %v and a reason containing %q", promote, reason, tt.promote, tt.reason)
			}
		})
	}
}

// scoredAssets simulates n assets whose failure follows a hidden risk, a
// "good" scorer that sees the risk with a little noise and a "noisy" one that
// sees it through much more.
func scoredAssets(n int, seed uint64) (labels []bool, good, noisy []float64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	labels = make([]bool, n)
	good = make([]float64, n)
	noisy = make([]float64, n)
	for i := range labels {
		risk := rng.Float64()
		labels[i] = rng.Float64() < risk*risk // about a third fail
		good[i] = clamp(risk + 0.05*rng.NormFloat64())
		noisy[i] = clamp(risk + 0.6*rng.NormFloat64())
	}
	return labels, good, noisy
}

func clamp(p float64) float64 { return min(1, max(0, p)) }

func realized(t *testing.T, labels []bool, scores []float64) Performance {
	t.Helper()
	levels := make([]string, len(scores))
	for i, s := range scores {
		levels[i] = DefaultBands.Level(s)
	}
	p, err := Realized(labels, scores, levels)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShadowPromotionOnLabelledData(t *testing.T) {
	labels, good, noisy := scoredAssets(2000, 17)
	g, n := realized(t, labels, good), realized(t, labels, noisy)
	t.Logf("good: AUC %.4f critical precision %.4f; noisy: AUC %.4f critical precision %.4f", g.ROCAUC, g.CriticalPrecision, n.ROCAUC, n.CriticalPrecision)
	if promote, reason := DefaultPromotionRule.Decide(n, g); !promote {
		t.Errorf("good shadow over noisy champion not promoted: %s", reason)
	}
	if promote, reason := DefaultPromotionRule.Decide(g, n); promote {
		t.Errorf("noisy shadow over good champion promoted: %s", reason)
	}
	if promote, reason := DefaultPromotionRule.Decide(g, g); promote {
		t.Errorf("shadow equal to the champion promoted: %s", reason)
	}
}
