package email

import (
	"bytes"
	"embed"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
)

// Templates: for each kind, <kind>.txt defines "<kind>.subject" and
// "<kind>.text" (text/template), <kind>.html defines "<kind>.html"
// (html/template, with the shared layout of layout.html).
//
//go:embed templates/*.txt templates/*.html
var templateFS embed.FS

var funcs = map[string]any{
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
	"priorityColor": func(p string) string {
		switch p {
		case "CRITICAL":
			return "#c81e1e"
		case "HIGH":
			return "#b44d12"
		case "MEDIUM":
			return "#1f2933"
		default:
			return "#52606d"
		}
	},
	"riskColor": func(level string) string {
		switch level {
		case "critical":
			return "#c81e1e"
		case "high":
			return "#b44d12"
		default:
			return "#1f2933"
		}
	},
}

var (
	textTemplates = texttemplate.Must(texttemplate.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.txt"))
	htmlTemplates = htmltemplate.Must(htmltemplate.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))
)

// Template kinds; also the notifications.kind of what they render.
const (
	KindWorkOrderDigest = "wo_digest"
	KindPMSummary       = "pm_summary"
	KindAlert           = "alert"
	KindMissedTick      = "missed_tick"
)

// Rendered is a subject with its plain-text and HTML bodies.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

// WorkOrder is one work order line in a digest or summary.
type WorkOrder struct {
	Number             string
	Title              string
	Priority           string
	Status             string
	Due                string // YYYY-MM-DD, or empty
	AssetTag           string
	AssetName          string
	VehicleType        string
	Location           string
	SkippedOccurrences int
	Technician         string // the (inactive) assignee, in a summary's needs-assignment list
}

// AssetGroup is the work orders of one asset.
type AssetGroup struct {
	AssetTag    string
	AssetName   string
	VehicleType string
	Location    string
	WorkOrders  []WorkOrder
}

// Digest is one technician's work orders of a run, grouped by asset.
type Digest struct {
	Technician string
	AsOf       string
	RunID      string
	Pipeline   string
	Count      int
	Assets     []AssetGroup
}

// Count is a named count.
type Count struct {
	Name string
	N    int
}

// TechnicianCount is how many work orders a technician was sent.
type TechnicianCount struct {
	Name       string
	Email      string
	WorkOrders int
}

// PMSummary is the admins' summary of a preventive maintenance run.
type PMSummary struct {
	AsOf              string
	RunID             string
	Pipeline          string
	Created           int
	SkippedOpen       int
	Failed            int
	MissedOccurrences int
	ByVehicleType     []Count
	Technicians       []TechnicianCount
	NeedsAssignment   []WorkOrder
}

// Alert is a failed run.
type Alert struct {
	RunID    string
	Pipeline string
	Step     string
	Error    string
	At       time.Time
}

// RenderDigest renders a technician's work-order digest.
func RenderDigest(d Digest) (Rendered, error) { return render(KindWorkOrderDigest, d) }

// RenderPMSummary renders the admins' preventive maintenance summary.
func RenderPMSummary(s PMSummary) (Rendered, error) { return render(KindPMSummary, s) }

// RenderAlert renders a failed-run alert.
func RenderAlert(a Alert) (Rendered, error) { return render(KindAlert, a) }

// MissedTick is a cron tick that had no run.
type MissedTick struct {
	Pipeline string
	RunID    string // the run the tick should have had
	Tick     time.Time
	CaughtUp bool // control created that run itself
}

// RenderMissedTick renders a missed-tick alert.
func RenderMissedTick(m MissedTick) (Rendered, error) { return render(KindMissedTick, m) }

func render(kind string, data any) (Rendered, error) {
	var subject, text, html bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&subject, kind+".subject", data); err != nil {
		return Rendered{}, err
	}
	if err := textTemplates.ExecuteTemplate(&text, kind+".text", data); err != nil {
		return Rendered{}, err
	}
	if err := htmlTemplates.ExecuteTemplate(&html, kind+".html", data); err != nil {
		return Rendered{}, err
	}
	return Rendered{
		Subject: strings.Join(strings.Fields(subject.String()), " "),
		Text:    text.String(),
		HTML:    html.String(),
	}, nil
}
