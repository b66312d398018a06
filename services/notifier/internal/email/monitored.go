package email

// KindModelMonitored is the notifications.kind of the admins' email about a
// monitoring run in which something happened: drift, a shadow promoted, a
// retraining triggered.
const KindModelMonitored = "model_monitored"

// ModelMonitored is a monitoring run's outcome.
type ModelMonitored struct {
	RunID, Pipeline string
	ModelVersion    string // the champion monitored
	SnapshotDate    string
	Drift           string   // ok, warn or alert
	PSI             []Metric // the highest PSIs of the features and score, highest first
	Realized        []Metric // the champion's realized performance (Champion unused)
	Promoted        string   // the shadow promoted by the run, if any
	RetrainReason   string   // why retraining was triggered; "" if it was not
}

// RenderModelMonitored renders the admins' monitoring email.
func RenderModelMonitored(m ModelMonitored) (Rendered, error) { return render(KindModelMonitored, m) }
