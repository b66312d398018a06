package render

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/services/reporter/internal/kpi"
)

// Formula is one entry of the report's appendix.
type Formula struct {
	Term, Definition string
}

// Appendix is how every figure is computed, written out for the reader.
func Appendix(r *kpi.Report) []Formula {
	return []Formula{
		{"Reporting week", fmt.Sprintf("ISO 8601 week, Monday 00:00 to the next Monday 00:00 in time zone %s. "+
			"A run reports on the week before the one containing its logical date (the Monday 08:00 run covers the week "+
			"just ended); the run configuration key \"week\" (e.g. 2026-W47) overrides it.", r.TimeZone)},
		{"Opened", "Work orders with created_at in the week (cancelled ones included), also by priority."},
		{"Completed", "Work orders, not cancelled, with completed_at in the week."},
		{"In progress (end of week)", "Not cancelled, created before the week's end, started_at before the week's end, " +
			"and not completed before it (completed_at empty or later)."},
		{"Pending / open (end of week)", "As in progress, but not started before the week's end."},
		{"Overdue (end of week)", "In progress or pending at the week's end with a due_date on or before the week's Sunday."},
		{"MTTR", "Mean time to repair = sum(repair hours) / count, over corrective work orders (not cancelled) completed " +
			"in the week; overall and per vehicle type. A work order's repair hours are its repair_hours or, when those " +
			"are missing, the hours from started_at to completed_at; one with neither is left out."},
		{"MTBF", fmt.Sprintf("Mean time between failures, per vehicle type = sum of operating days / number of failures, "+
			"over a trailing window of %d days ending with the week. Operating days of an asset = calendar days in the "+
			"window from its commissioned_date (or the window's start, if later) to the window's end. A failure = a "+
			"corrective work order (not cancelled) opened in the window. Retired assets are left out (no retirement date "+
			"is recorded). A type with no failure has no MTBF: shown as n/a.", r.MTBFWindowDays)},
		{"PM compliance", "Preventive work orders due in the week (not cancelled) that were completed on or before " +
			"their due date (a day in the report's time zone) / preventive work orders due in the week x 100."},
		{"Planned maintenance percentage", "Preventive work orders completed in the week / all work orders completed " +
			"in the week x 100."},
		{"Inventory", "Taken when the report is generated (stock keeps no history, so there is no previous week): " +
			"number of items; items with quantity <= reorder_level; total stock value = sum(quantity x unit_cost)."},
		{"Failure risk (ML)", "Each non-retired asset's latest prediction made before the week's end. High risk = " +
			"risk level high; critical = risk level critical; average failure probability = mean over the scored " +
			"assets; the top 10 are the highest probabilities. n/a when no asset has a score."},
		{"Model health", fmt.Sprintf("The champion model's latest scoring recorded before the week's end (the ETL's batch "+
			"scoring or the daily model_monitoring run) and the shadow challenger scored in the same run. Drift: the "+
			"population stability index (PSI) of each feature and of the score against the model's training profile, "+
			"sum over the profile's quantile bins of (actual share - expected share) x ln(actual share / expected share), "+
			"each share at least 0.0001; max PSI is "+
			"the highest, and a feature drifts at the warn level from a PSI of %g, at the alert level from %g. Realized "+
			"performance, from the latest monitoring run that evaluated the champion: a past scoring's failure probabilities "+
			"against whether each asset had a corrective work order in the label window after it; ROC AUC, and the "+
			"precision of the critical band = critical assets that had one / critical assets x 100. Champion and shadow are "+
			"evaluated on the same labels. n/a when undefined (one class only, no critical asset, no training profile).",
			r.Drift.Warn, r.Drift.Alert)},
		{"Change", "This week minus the previous week; for percentages in percentage points (pp). n/a when either " +
			"figure is n/a."},
	}
}

// Files is every file of one report.
type Files struct {
	HTML   []byte
	PDF    []byte
	CSV    []byte
	Charts []Chart
}

// All renders every file of r.
func All(r *kpi.Report) (*Files, error) {
	charts, err := Charts(r)
	if err != nil {
		return nil, err
	}
	f := &Files{Charts: charts}
	if f.HTML, err = HTML(r, charts); err != nil {
		return nil, err
	}
	if f.PDF, err = PDF(r, charts); err != nil {
		return nil, err
	}
	if f.CSV, err = CSV(r); err != nil {
		return nil, err
	}
	return f, nil
}

// CSV is the KPI table: one line per figure, numbers unformatted
// (n/a when undefined).
func CSV(r *kpi.Report) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	num := func(o kpi.Opt) string {
		if !o.Valid {
			return "n/a"
		}
		return strconv.FormatFloat(o.V, 'f', -1, 64)
	}
	_ = w.Write([]string{"iso_week", "previous_week", "section", "key", "kpi", "current", "previous", "change"})
	for _, row := range kpi.Rows(r) {
		_ = w.Write([]string{r.Week.String(), r.Previous.Week.String(), row.Section, row.Key, row.Name,
			num(row.Cur), num(row.Prev), num(row.Delta())})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// section is a titled group of KPI rows.
type section struct {
	Title string
	Rows  []kpi.Row
}

func sections(r *kpi.Report) []section {
	var out []section
	for _, row := range kpi.Rows(r) {
		if len(out) == 0 || out[len(out)-1].Title != row.Section {
			out = append(out, section{Title: row.Section})
		}
		out[len(out)-1].Rows = append(out[len(out)-1].Rows, row)
	}
	return out
}

// typeRow is one line of the per-vehicle-type reliability table.
type typeRow struct {
	Type, Assets, OperatingDays, Failures, MTBF, Repairs, MTTR string
}

func typeRows(r *kpi.Report) []typeRow {
	var out []typeRow
	for _, t := range kpi.VehicleTypes(r) {
		f := r.Current.Type(t)
		out = append(out, typeRow{
			Type: t, Assets: kpi.FormatValue(kpi.Count(f.Assets), kpi.Integer),
			OperatingDays: kpi.FormatValue(kpi.Some(f.OperatingDays), kpi.Integer),
			Failures:      kpi.FormatValue(kpi.Count(f.Failures), kpi.Integer),
			MTBF:          kpi.FormatValue(f.MTBF, kpi.Days),
			Repairs:       kpi.FormatValue(kpi.Count(f.Repairs), kpi.Integer),
			MTTR:          kpi.FormatValue(f.MTTR, kpi.Hours),
		})
	}
	return out
}

// riskRow is one line of the riskiest-assets table.
type riskRow struct {
	Rank                                   int
	Tag, Name, Type, Risk, Prob, Model, At string
}

func riskRows(r *kpi.Report) []riskRow {
	var out []riskRow
	for i, p := range r.Current.ML.Top {
		out = append(out, riskRow{Rank: i + 1, Tag: p.AssetTag, Name: p.Name, Type: p.VehicleType, Risk: p.RiskLevel,
			Prob: strconv.FormatFloat(p.Probability, 'f', 3, 64), Model: p.ModelVer, At: p.PredictedAt.UTC().Format("2006-01-02")})
	}
	return out
}

// healthRow is one model's line of the model-health table.
type healthRow struct {
	Role, Version, Scored, MaxPSI, Drift, Drifting, AUC, Precision, Labels string
}

func healthRows(r *kpi.Report) []healthRow {
	var out []healthRow
	for _, m := range []*kpi.ModelStatus{r.Health.Champion, r.Health.Shadow} {
		if m == nil {
			continue
		}
		row := healthRow{Role: m.Role, Version: m.Version,
			Scored:   m.SnapshotDate.Format(time.DateOnly) + " (" + m.Pipeline + ")",
			MaxPSI:   kpi.FormatValue(m.MaxPSI, kpi.Probability),
			Drift:    m.Drift,
			Drifting: "none",
			AUC:      "n/a", Precision: "n/a", Labels: "not yet: no label window has passed",
		}
		if len(m.Drifting) > 0 {
			var fs []string
			for _, f := range m.Drifting {
				fs = append(fs, fmt.Sprintf("%s %.3f (%s)", f.Feature, f.PSI, f.Level))
			}
			row.Drifting = strings.Join(fs, ", ")
		}
		if p := m.Performance; p != nil {
			row.AUC = kpi.FormatValue(p.ROCAUC, kpi.Probability)
			row.Precision = kpi.FormatValue(p.CriticalPrecision, kpi.Pct)
			row.Labels = fmt.Sprintf("%d assets, %d failed, %s + %d d", p.Labelled, p.Positives,
				p.SnapshotDate.Format(time.DateOnly), p.LabelWindowDays)
		}
		out = append(out, row)
	}
	return out
}

// healthNote is the model-health section's sentence: that there is no
// monitoring data, or how the shadow's realized ROC AUC compares with the
// champion's ("" when either is undefined).
func healthNote(r *kpi.Report) string {
	h := r.Health
	if h.Champion == nil {
		return "No monitoring data yet: no model scoring was recorded before the end of the week."
	}
	if h.Shadow == nil || h.Shadow.Performance == nil || h.Champion.Performance == nil {
		return ""
	}
	d := kpi.Sub(h.Shadow.Performance.ROCAUC, h.Champion.Performance.ROCAUC)
	if !d.Valid {
		return ""
	}
	return fmt.Sprintf("Shadow %s vs champion %s: realized ROC AUC %s on the same labels.",
		h.Shadow.Version, h.Champion.Version, kpi.FormatDelta(d, kpi.Probability))
}

// Title is the report's title.
func Title(r *kpi.Report) string { return "Weekly maintenance KPI report " + r.Week.String() }

type htmlData struct {
	Title, Range, Previous, TimeZone, Generated string
	Sections                                    []section
	Types                                       []typeRow
	Risk                                        []riskRow
	Health                                      []healthRow
	HealthNote                                  string
	Charts                                      []htmlChart
	Appendix                                    []Formula
	Window                                      int
}

type htmlChart struct {
	Title string
	Src   template.HTMLAttr // src="data:…": as an attribute, so the base64 is not entity-escaped
}

var htmlTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
</head>
<body style="margin:0;padding:0;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;color:#1f2933;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f7;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="800" cellpadding="0" cellspacing="0" style="max-width:800px;width:100%;background:#ffffff;border-radius:6px;">
<tr><td style="padding:20px 24px;border-bottom:1px solid #e4e7eb;">
<div style="font-size:13px;color:#52606d;">cmmsflow</div>
<h1 style="font-size:22px;margin:6px 0 4px;">{{.Title}}</h1>
<div style="font-size:14px;color:#52606d;">{{.Range}} ({{.TimeZone}}) · compared with {{.Previous}} · generated {{.Generated}}</div>
</td></tr>
<tr><td style="padding:16px 24px;font-size:14px;line-height:1.4;">
<h2 style="font-size:17px;margin:8px 0;">Key figures</h2>
<table cellpadding="6" cellspacing="0" width="100%" style="border-collapse:collapse;font-size:13px;">
<tr style="background:#f0f4f8;text-align:left;"><th>KPI</th><th style="text-align:right;">This week</th><th style="text-align:right;">Previous week</th><th style="text-align:right;">Change</th></tr>
{{range .Sections}}<tr><td colspan="4" style="padding-top:12px;font-weight:bold;color:#1f6fb2;border-bottom:2px solid #e4e7eb;">{{.Title}}</td></tr>
{{range .Rows}}<tr style="border-bottom:1px solid #e4e7eb;"><td>{{.Name}}</td><td style="text-align:right;font-weight:bold;">{{.CurText}}</td><td style="text-align:right;">{{.PrevText}}</td><td style="text-align:right;color:#52606d;">{{.DeltaText}}</td></tr>
{{end}}{{end}}</table>

<h2 style="font-size:17px;margin:20px 0 8px;">Reliability by vehicle type</h2>
<table cellpadding="6" cellspacing="0" width="100%" style="border-collapse:collapse;font-size:13px;">
<tr style="background:#f0f4f8;text-align:left;"><th>Vehicle type</th><th style="text-align:right;">Assets</th><th style="text-align:right;">Operating days ({{.Window}} d)</th><th style="text-align:right;">Failures</th><th style="text-align:right;">MTBF</th><th style="text-align:right;">Repairs (week)</th><th style="text-align:right;">MTTR</th></tr>
{{range .Types}}<tr style="border-bottom:1px solid #e4e7eb;"><td>{{.Type}}</td><td style="text-align:right;">{{.Assets}}</td><td style="text-align:right;">{{.OperatingDays}}</td><td style="text-align:right;">{{.Failures}}</td><td style="text-align:right;font-weight:bold;">{{.MTBF}}</td><td style="text-align:right;">{{.Repairs}}</td><td style="text-align:right;font-weight:bold;">{{.MTTR}}</td></tr>
{{else}}<tr><td colspan="7">No vehicles.</td></tr>
{{end}}</table>

<h2 style="font-size:17px;margin:20px 0 8px;">Top 10 riskiest assets</h2>
{{if .Risk}}<table cellpadding="6" cellspacing="0" width="100%" style="border-collapse:collapse;font-size:13px;">
<tr style="background:#f0f4f8;text-align:left;"><th>#</th><th>Asset</th><th>Name</th><th>Type</th><th>Risk</th><th style="text-align:right;">Failure probability</th><th>Model</th><th>Scored</th></tr>
{{range .Risk}}<tr style="border-bottom:1px solid #e4e7eb;"><td>{{.Rank}}</td><td>{{.Tag}}</td><td>{{.Name}}</td><td>{{.Type}}</td><td>{{.Risk}}</td><td style="text-align:right;font-weight:bold;">{{.Prob}}</td><td>{{.Model}}</td><td>{{.At}}</td></tr>
{{end}}</table>{{else}}<p>n/a: no failure-risk predictions before the end of the week.</p>{{end}}

<h2 style="font-size:17px;margin:20px 0 8px;">Model health</h2>
{{if .Health}}<table cellpadding="6" cellspacing="0" width="100%" style="border-collapse:collapse;font-size:13px;">
<tr style="background:#f0f4f8;text-align:left;"><th>Role</th><th>Model</th><th>Scored</th><th style="text-align:right;">Max PSI</th><th>Drift</th><th>Features at warn / alert</th><th style="text-align:right;">ROC AUC</th><th style="text-align:right;">Critical precision</th><th>Labels</th></tr>
{{range .Health}}<tr style="border-bottom:1px solid #e4e7eb;vertical-align:top;"><td>{{.Role}}</td><td>{{.Version}}</td><td>{{.Scored}}</td><td style="text-align:right;font-weight:bold;">{{.MaxPSI}}</td><td>{{.Drift}}</td><td>{{.Drifting}}</td><td style="text-align:right;font-weight:bold;">{{.AUC}}</td><td style="text-align:right;">{{.Precision}}</td><td>{{.Labels}}</td></tr>
{{end}}</table>{{end}}{{if .HealthNote}}<p>{{.HealthNote}}</p>{{end}}

<h2 style="font-size:17px;margin:20px 0 8px;">Charts</h2>
{{range .Charts}}<p style="margin:0 0 16px;"><img {{.Src}} alt="{{.Title}}" width="752" style="max-width:100%;height:auto;display:block;border:1px solid #e4e7eb;"></p>
{{end}}
<h2 style="font-size:17px;margin:20px 0 8px;">Appendix: definitions and formulas</h2>
<table cellpadding="6" cellspacing="0" width="100%" style="border-collapse:collapse;font-size:12px;">
{{range .Appendix}}<tr style="border-bottom:1px solid #e4e7eb;vertical-align:top;"><td style="font-weight:bold;width:28%;">{{.Term}}</td><td>{{.Definition}}</td></tr>
{{end}}</table>
</td></tr>
<tr><td style="padding:16px 24px;border-top:1px solid #e4e7eb;font-size:12px;color:#7b8794;">Generated by cmmsflow reporter</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
`))

// HTML is the report as one self-contained HTML document: inline styles and
// tables (as mail clients need) and the charts inline as data: URIs.
func HTML(r *kpi.Report, charts []Chart) ([]byte, error) {
	d := htmlData{
		Title: Title(r), Range: kpi.DateRange(r.Week), Previous: r.Previous.Week.String(), TimeZone: r.TimeZone,
		Generated: r.GeneratedAt.UTC().Format("2006-01-02 15:04 UTC"), Sections: sections(r), Types: typeRows(r),
		Risk: riskRows(r), Health: healthRows(r), HealthNote: healthNote(r), Appendix: Appendix(r), Window: r.MTBFWindowDays,
	}
	for _, c := range charts {
		d.Charts = append(d.Charts, htmlChart{Title: c.Title,
			Src: template.HTMLAttr(`src="data:image/png;base64,` + base64.StdEncoding.EncodeToString(c.PNG) + `"`)})
	}
	var buf bytes.Buffer
	if err := htmlTemplate.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("render: html: %w", err)
	}
	return buf.Bytes(), nil
}

// ascii replaces what the PDF's core fonts (cp1252) would garble.
func ascii(s string) string {
	return strings.NewReplacer("·", "-", "–", "-", "—", "-", "…", "...", "≤", "<=").Replace(s)
}
