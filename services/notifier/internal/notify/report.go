package notify

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
)

// headlineFigures are the report figures the email's text lists, in order.
var headlineFigures = []struct{ key, name, unit string }{
	{"wo_opened", "Work orders opened", ""},
	{"wo_completed", "Work orders completed", ""},
	{"wo_in_progress", "In progress (end of week)", ""},
	{"wo_pending", "Pending (end of week)", ""},
	{"wo_overdue", "Overdue (end of week)", ""},
	{"mttr_hours", "MTTR", " h"},
	{"pm_compliance_pct", "PM compliance", " %"},
	{"planned_maintenance_pct", "Planned maintenance", " %"},
	{"inventory_at_or_below_reorder", "Items at or below reorder level", ""},
	{"ml_high_risk", "Assets at high risk", ""},
	{"ml_critical", "Assets at critical risk", ""},
}

// ReportGenerated is the weekly KPI report pipeline's notify step: the
// report's HTML as the email body (charts as inline images), the PDF
// attached, to the report recipients — once per run. If the provider refuses
// the message as too large, the email goes out with a link to the PDF
// instead of the attachment. Then the alert rules on KPIs are evaluated
// (period: the ISO week).
func (n *Notifier) ReportGenerated(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	var p eventsv1.ReportGenerated
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	if p.IsoWeek == "" || p.GetPdf().GetName() == "" || p.GetHtml().GetName() == "" {
		return eventing.StepResult{}, eventing.Permanent(errors.New("report.generated without iso_week, pdf or html"))
	}
	if n.cfg.Bucket == nil {
		return eventing.StepResult{}, eventing.Permanent(errors.New("notifier has no bucket to read the report from"))
	}
	var ds []delivery
	if len(n.cfg.Reports) > 0 {
		d, err := n.planReport(ctx, ev, &p)
		if err != nil {
			return eventing.StepResult{}, err
		}
		ds = append(ds, d)
	}
	if err := n.deliver(ctx, ev, ds); err != nil {
		return eventing.StepResult{}, err
	}
	if err := n.evaluate(ctx, ev, rules.SourceReport, p.IsoWeek, rules.Inputs{KPIs: p.Kpis}); err != nil {
		return eventing.StepResult{}, err
	}
	res, err := n.result(ctx, ds)
	if err != nil {
		return eventing.StepResult{}, err
	}
	res.Summary = fmt.Sprintf("report %s: %d emails sent, %d failed", p.IsoWeek,
		int(res.Figures["emails_sent"]), int(res.Figures["failures"]))
	return res, nil
}

func (n *Notifier) planReport(ctx context.Context, ev eventing.Event, p *eventsv1.ReportGenerated) (delivery, error) {
	read := func(name string) ([]byte, error) {
		b, err := n.cfg.Bucket.Get(ctx, name)
		if errors.Is(err, objstore.ErrNotExist) {
			return nil, eventing.Permanent(fmt.Errorf("report file missing: %w", err))
		}
		return b, err
	}
	doc, err := read(p.Html.Name)
	if err != nil {
		return delivery{}, err
	}
	pdf, err := read(p.Pdf.Name)
	if err != nil {
		return delivery{}, err
	}
	body, images := email.InlineImages(string(doc))
	r := email.Report{
		Week: p.IsoWeek, RunID: ev.RunID, Pipeline: ev.Pipeline, Folder: n.link(p.Pdf, path.Dir(p.Pdf.Name)+"/"),
		PDFBytes: int64(len(pdf)),
	}
	for _, f := range headlineFigures {
		if v, ok := p.Kpis[f.key]; ok {
			r.Figures = append(r.Figures, email.Figure{Name: f.name, Value: strconv.FormatFloat(v, 'f', -1, 64) + f.unit})
		}
	}
	subject, text, err := email.RenderReport(r)
	if err != nil {
		return delivery{}, eventing.Permanent(fmt.Errorf("render report email: %w", err))
	}
	r.Link = n.link(p.Pdf, p.Pdf.Name)
	_, linkText, err := email.RenderReport(r)
	if err != nil {
		return delivery{}, eventing.Permanent(fmt.Errorf("render report email: %w", err))
	}
	return delivery{
		Key: key(ev.RunID, ChannelEmail, "report-recipients", email.KindWeeklyReport), Channel: ChannelEmail,
		Kind: email.KindWeeklyReport, Recipient: email.FormatAddressList(n.cfg.Reports),
		Subject: subject, Body: text, BodyHTML: body,
		Attachments: append(images, email.Attachment{Filename: "kpi-report-" + p.IsoWeek + ".pdf", ContentType: "application/pdf", Content: pdf}),
		TooLarge: &fallback{
			Body: linkText, BodyHTML: email.PrependNotice(body, email.LinkNotice("PDF report", r.Link, r.PDFBytes)),
			Attachments: images,
			Note:        fmt.Sprintf("PDF (%d bytes) too large to attach: sent a link instead (%s)", len(pdf), r.Link),
		},
	}, nil
}

// link is where a reader finds object name: under the public base URL when
// configured, else its gs:// URI.
func (n *Notifier) link(o *eventsv1.StoredObject, name string) string {
	if n.cfg.ReportLinkBase != "" {
		return strings.TrimRight(n.cfg.ReportLinkBase, "/") + "/" + name
	}
	if name == o.Name && o.Uri != "" {
		return o.Uri
	}
	if b, ok := strings.CutPrefix(o.Uri, "gs://"); ok {
		bucket, _, _ := strings.Cut(b, "/")
		return "gs://" + bucket + "/" + name
	}
	return name
}
