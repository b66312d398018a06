package predictor

// Risk levels of a failure probability p. The thresholds are half-open
// intervals, each level including its lower bound:
//
//	low       p < 0.25
//	medium    0.25 ≤ p < 0.50
//	high      0.50 ≤ p < 0.75
//	critical  0.75 ≤ p
//
// They are the values of ml_predictions.risk_level (its CHECK constraint).
const (
	Low      = "low"
	Medium   = "medium"
	High     = "high"
	Critical = "critical"
)

// The lower bounds of medium, high and critical.
const (
	MediumFrom   = 0.25
	HighFrom     = 0.50
	CriticalFrom = 0.75
)

// Levels lists the risk levels from lowest to highest.
var Levels = []string{Low, Medium, High, Critical}

// RiskLevel maps a failure probability to its risk level. A NaN counts as
// low (Predict never returns one).
func RiskLevel(p float64) string {
	switch {
	case p >= CriticalFrom:
		return Critical
	case p >= HighFrom:
		return High
	case p >= MediumFrom:
		return Medium
	default:
		return Low
	}
}
