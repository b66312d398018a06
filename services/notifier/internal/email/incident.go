package email

// Kinds of the incident emails: an alert opened (by an alert rule or drift)
// and its resolution.
const (
	KindIncident         = "incident"
	KindIncidentResolved = "incident_resolved"
)

// Incident is an alert opened or resolved.
type Incident struct {
	Title    string // e.g. the rule's name, or "Drift of model v3"
	Severity string // info, warning, error or critical
	Summary  string // one line: what crossed what
	Period   string // the period observed (an ISO week or a date)
	DedupKey string
	Resolved bool
	Details  []Detail
}

// Detail is one label/value line of an incident.
type Detail struct {
	Label, Value string
}

// RenderIncident renders the admins' email of an alert opened or resolved.
func RenderIncident(in Incident) (Rendered, error) { return render(KindIncident, in) }
