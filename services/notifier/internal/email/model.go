package email

// KindModelDeployed is the notifications.kind of the admins' email at the
// end of an ETL and ML training run: the gate's decision, the holdout
// metrics and the fleet's scores.
const KindModelDeployed = "model_deployed"

// Metric is a holdout metric of the model trained in the run, formatted,
// with the champion's on the same holdout when it was compared with one.
type Metric struct {
	Name     string
	Value    string
	Champion string // "" when there was no champion to compare with
}

// ModelDeployed is an ETL and ML training run's outcome.
type ModelDeployed struct {
	RunID        string
	Pipeline     string
	ModelVersion string // the model now serving, which scored the fleet
	Promoted     bool   // whether the model trained in the run became the champion
	GateReason   string
	Endpoint     string
	ScoredAssets int
	RiskLevels   []Count  // low, medium, high, critical (then any other level)
	Metrics      []Metric // holdout metrics of the model trained in the run
	HasChampion  bool     // some metric has the champion's value beside it
	Holdout      string   // e.g. "1,234 rows, 56 positive"; "" if unknown
}

// RenderModelDeployed renders the admins' ETL and ML training summary.
func RenderModelDeployed(m ModelDeployed) (Rendered, error) { return render(KindModelDeployed, m) }
