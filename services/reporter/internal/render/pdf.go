package render

import (
	"bytes"
	"fmt"

	"codeberg.org/go-pdf/fpdf"

	"github.com/cmmsflow/cmmsflow/services/reporter/internal/kpi"
)

// PDF is the report as an A4 PDF with the same content as the HTML: the
// charts on page 1, then the key figures, reliability by vehicle type, the
// riskiest assets, the model's health and the appendix.
func PDF(r *kpi.Report, charts []Chart) ([]byte, error) {
	d := newPDFDoc(r)
	d.title(r)
	d.charts(charts)
	d.AddPage()
	d.keyFigures(r)
	d.reliability(r)
	d.riskiest(r)
	d.modelHealth(r)
	d.appendix(r)
	if err := d.Error(); err != nil {
		return nil, fmt.Errorf("render: pdf: %w", err)
	}
	var buf bytes.Buffer
	if err := d.Output(&buf); err != nil {
		return nil, fmt.Errorf("render: pdf: %w", err)
	}
	return buf.Bytes(), nil
}

// pdfWidth is the width between the PDF's margins, in mm.
const pdfWidth = 180.0

// pdfDoc is the PDF being written, with its headings and tables.
type pdfDoc struct {
	*fpdf.Fpdf
}

// newPDFDoc is an A4 document about r, with its metadata and page footer.
func newPDFDoc(r *kpi.Report) pdfDoc {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle(Title(r), false)
	pdf.SetCreator("cmmsflow reporter", false)
	pdf.SetCreationDate(r.GeneratedAt)
	pdf.SetModificationDate(r.GeneratedAt)
	pdf.SetMargins(15, 15, 15)
	pdf.SetAutoPageBreak(true, 15)
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(120, 120, 120)
		pdf.CellFormat(0, 5, fmt.Sprintf("cmmsflow - %s - page %d/{nb}", Title(r), pdf.PageNo()), "", 0, "C", false, 0, "")
	})
	pdf.AliasNbPages("")
	pdf.AddPage()
	return pdfDoc{pdf}
}

// title writes the report's title and the line under it.
func (d pdfDoc) title(r *kpi.Report) {
	d.SetFont("Helvetica", "B", 18)
	d.SetTextColor(31, 41, 51)
	d.CellFormat(0, 9, Title(r), "", 1, "L", false, 0, "")
	d.SetFont("Helvetica", "", 10)
	d.SetTextColor(82, 96, 109)
	d.CellFormat(0, 6, ascii(fmt.Sprintf("%s (%s) - compared with %s - generated %s", kpi.DateRange(r.Week), r.TimeZone,
		r.Previous.Week, r.GeneratedAt.UTC().Format("2006-01-02 15:04 UTC"))), "", 1, "L", false, 0, "")
	d.Ln(2)
}

// charts writes the charts, centred, keeping the PNG's aspect ratio.
func (d pdfDoc) charts(charts []Chart) {
	const chartW = 140.0
	chartH := chartW * float64(ChartHeight) / float64(ChartWidth)
	for _, c := range charts {
		if d.GetY()+chartH > 282 {
			d.AddPage()
		}
		opt := fpdf.ImageOptions{ImageType: "PNG"}
		d.RegisterImageOptionsReader(c.Name, opt, bytes.NewReader(c.PNG))
		d.ImageOptions(c.Name, 15+(pdfWidth-chartW)/2, d.GetY(), chartW, chartH, false, opt, 0, "")
		d.SetY(d.GetY() + chartH + 3)
	}
}

func (d pdfDoc) keyFigures(r *kpi.Report) {
	d.heading("Key figures")
	kw := []float64{84, 32, 32, 32}
	d.header([]string{"KPI", "This week", "Previous week", "Change"}, kw, "LRRR")
	d.SetDrawColor(228, 231, 235)
	for _, s := range sections(r) {
		d.SetFont("Helvetica", "B", 9)
		d.SetTextColor(31, 111, 178)
		d.CellFormat(pdfWidth, 6, ascii(s.Title), "", 1, "L", false, 0, "")
		d.SetTextColor(31, 41, 51)
		for _, rw := range s.Rows {
			d.row([]string{rw.Name, rw.CurText(), rw.PrevText(), rw.DeltaText()}, kw, "LRRR", map[int]bool{1: true})
		}
	}
}

func (d pdfDoc) reliability(r *kpi.Report) {
	d.heading("Reliability by vehicle type")
	tw := []float64{24, 16, 38, 20, 26, 30, 26}
	d.header([]string{"Vehicle type", "Assets", fmt.Sprintf("Operating days (%d d)", r.MTBFWindowDays), "Failures", "MTBF",
		"Repairs (week)", "MTTR"}, tw, "LRRRRRR")
	types := typeRows(r)
	if len(types) == 0 {
		d.row([]string{"No vehicles."}, []float64{pdfWidth}, "L", nil)
	}
	for _, t := range types {
		d.row([]string{t.Type, t.Assets, t.OperatingDays, t.Failures, t.MTBF, t.Repairs, t.MTTR}, tw, "LRRRRRR",
			map[int]bool{4: true, 6: true})
	}
}

func (d pdfDoc) riskiest(r *kpi.Report) {
	d.heading("Top 10 riskiest assets")
	risk := riskRows(r)
	if len(risk) == 0 {
		d.SetFont("Helvetica", "", 9)
		d.CellFormat(pdfWidth, 6, "n/a: no failure-risk predictions before the end of the week.", "", 1, "L", false, 0, "")
		return
	}
	rw := []float64{8, 24, 46, 20, 18, 24, 20, 20}
	d.header([]string{"#", "Asset", "Name", "Type", "Risk", "Probability", "Model", "Scored"}, rw, "LLLLLRLL")
	for _, p := range risk {
		d.row([]string{fmt.Sprint(p.Rank), p.Tag, p.Name, p.Type, p.Risk, p.Prob, p.Model, p.At}, rw, "LLLLLRLL",
			map[int]bool{5: true})
	}
}

// modelHealth writes the model-health table (its features at warn or alert
// on a line under each model, as they do not fit a column) and its note.
func (d pdfDoc) modelHealth(r *kpi.Report) {
	d.heading("Model health")
	hw := []float64{18, 36, 42, 18, 14, 18, 34}
	rows := healthRows(r)
	if len(rows) > 0 {
		d.header([]string{"Role", "Model", "Scored", "Max PSI", "Drift", "ROC AUC", "Critical precision"}, hw, "LLLRLRR")
	}
	for _, h := range rows {
		d.row([]string{h.Role, h.Version, h.Scored, h.MaxPSI, h.Drift, h.AUC, h.Precision}, hw, "LLLRLRR",
			map[int]bool{3: true, 5: true})
		d.SetFont("Helvetica", "", 9)
		d.MultiCell(pdfWidth, 5, ascii("Features at warn / alert: "+h.Drifting), "", "L", false)
		d.MultiCell(pdfWidth, 5, ascii("Labels: "+h.Labels), "", "L", false)
		d.Ln(1.5)
	}
	if note := healthNote(r); note != "" {
		d.SetFont("Helvetica", "", 9)
		d.MultiCell(pdfWidth, 5, ascii(note), "", "L", false)
	}
}

func (d pdfDoc) appendix(r *kpi.Report) {
	d.heading("Appendix: definitions and formulas")
	for _, f := range Appendix(r) {
		d.SetFont("Helvetica", "B", 9)
		d.SetTextColor(31, 41, 51)
		d.MultiCell(pdfWidth, 5, ascii(f.Term), "", "L", false)
		d.SetFont("Helvetica", "", 9)
		d.SetTextColor(62, 76, 89)
		d.MultiCell(pdfWidth, 4.5, ascii(f.Definition), "", "L", false)
		d.Ln(1.5)
	}
}

// heading writes a section heading, on a new page if little room is left.
func (d pdfDoc) heading(s string) {
	if d.GetY() > 250 {
		d.AddPage()
	}
	d.Ln(2)
	d.SetFont("Helvetica", "B", 13)
	d.SetTextColor(31, 41, 51)
	d.CellFormat(0, 8, ascii(s), "", 1, "L", false, 0, "")
}

// header writes a table's header row; aligns has one letter per column.
func (d pdfDoc) header(cols []string, widths []float64, aligns string) {
	d.SetFont("Helvetica", "B", 9)
	d.SetFillColor(240, 244, 248)
	d.SetTextColor(31, 41, 51)
	for i, c := range cols {
		d.CellFormat(widths[i], 6, ascii(c), "B", 0, string(aligns[i]), true, 0, "")
	}
	d.Ln(-1)
}

// row writes a table row, cell i in bold if bold[i]; aligns has one letter
// per column.
func (d pdfDoc) row(cells []string, widths []float64, aligns string, bold map[int]bool) {
	for i, c := range cells {
		style := ""
		if bold[i] {
			style = "B"
		}
		d.SetFont("Helvetica", style, 9)
		d.CellFormat(widths[i], 5.5, ascii(c), "B", 0, string(aligns[i]), false, 0, "")
	}
	d.Ln(-1)
}
