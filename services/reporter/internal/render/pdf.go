package render

import (
	"bytes"
	"fmt"

	"codeberg.org/go-pdf/fpdf"

	"github.com/cmmsflow/cmmsflow/services/reporter/internal/kpi"
)

// PDF is the report as an A4 PDF with the same content as the HTML: the
// charts on page 1, then the key figures, reliability by vehicle type, the
// riskiest assets and the appendix.
func PDF(r *kpi.Report, charts []Chart) ([]byte, error) {
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
	const width = 180.0

	pdf.SetFont("Helvetica", "B", 18)
	pdf.SetTextColor(31, 41, 51)
	pdf.CellFormat(0, 9, Title(r), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	pdf.SetTextColor(82, 96, 109)
	pdf.CellFormat(0, 6, ascii(fmt.Sprintf("%s (%s) - compared with %s - generated %s", kpi.DateRange(r.Week), r.TimeZone,
		r.Previous.Week, r.GeneratedAt.UTC().Format("2006-01-02 15:04 UTC"))), "", 1, "L", false, 0, "")
	pdf.Ln(2)

	heading := func(s string) {
		if pdf.GetY() > 250 {
			pdf.AddPage()
		}
		pdf.Ln(2)
		pdf.SetFont("Helvetica", "B", 13)
		pdf.SetTextColor(31, 41, 51)
		pdf.CellFormat(0, 8, ascii(s), "", 1, "L", false, 0, "")
	}
	header := func(cols []string, widths []float64, aligns string) {
		pdf.SetFont("Helvetica", "B", 9)
		pdf.SetFillColor(240, 244, 248)
		pdf.SetTextColor(31, 41, 51)
		for i, c := range cols {
			pdf.CellFormat(widths[i], 6, ascii(c), "B", 0, string(aligns[i]), true, 0, "")
		}
		pdf.Ln(-1)
	}
	row := func(cells []string, widths []float64, aligns string, bold map[int]bool) {
		for i, c := range cells {
			style := ""
			if bold[i] {
				style = "B"
			}
			pdf.SetFont("Helvetica", style, 9)
			pdf.CellFormat(widths[i], 5.5, ascii(c), "B", 0, string(aligns[i]), false, 0, "")
		}
		pdf.Ln(-1)
	}

	// Page 1: the charts, centred, keeping the PNG's aspect ratio.
	const chartW = 140.0
	chartH := chartW * float64(ChartHeight) / float64(ChartWidth)
	for _, c := range charts {
		if pdf.GetY()+chartH > 282 {
			pdf.AddPage()
		}
		opt := fpdf.ImageOptions{ImageType: "PNG"}
		pdf.RegisterImageOptionsReader(c.Name, opt, bytes.NewReader(c.PNG))
		pdf.ImageOptions(c.Name, 15+(width-chartW)/2, pdf.GetY(), chartW, chartH, false, opt, 0, "")
		pdf.SetY(pdf.GetY() + chartH + 3)
	}
	pdf.AddPage()

	heading("Key figures")
	kw := []float64{84, 32, 32, 32}
	header([]string{"KPI", "This week", "Previous week", "Change"}, kw, "LRRR")
	pdf.SetDrawColor(228, 231, 235)
	for _, s := range sections(r) {
		pdf.SetFont("Helvetica", "B", 9)
		pdf.SetTextColor(31, 111, 178)
		pdf.CellFormat(width, 6, ascii(s.Title), "", 1, "L", false, 0, "")
		pdf.SetTextColor(31, 41, 51)
		for _, rw := range s.Rows {
			row([]string{rw.Name, rw.CurText(), rw.PrevText(), rw.DeltaText()}, kw, "LRRR", map[int]bool{1: true})
		}
	}

	heading("Reliability by vehicle type")
	tw := []float64{24, 16, 38, 20, 26, 30, 26}
	header([]string{"Vehicle type", "Assets", fmt.Sprintf("Operating days (%d d)", r.MTBFWindowDays), "Failures", "MTBF",
		"Repairs (week)", "MTTR"}, tw, "LRRRRRR")
	types := typeRows(r)
	if len(types) == 0 {
		row([]string{"No vehicles."}, []float64{width}, "L", nil)
	}
	for _, t := range types {
		row([]string{t.Type, t.Assets, t.OperatingDays, t.Failures, t.MTBF, t.Repairs, t.MTTR}, tw, "LRRRRRR",
			map[int]bool{4: true, 6: true})
	}

	heading("Top 10 riskiest assets")
	risk := riskRows(r)
	if len(risk) == 0 {
		pdf.SetFont("Helvetica", "", 9)
		pdf.CellFormat(width, 6, "n/a: no failure-risk predictions before the end of the week.", "", 1, "L", false, 0, "")
	} else {
		rw := []float64{8, 24, 46, 20, 18, 24, 20, 20}
		header([]string{"#", "Asset", "Name", "Type", "Risk", "Probability", "Model", "Scored"}, rw, "LLLLLRLL")
		for _, p := range risk {
			row([]string{fmt.Sprint(p.Rank), p.Tag, p.Name, p.Type, p.Risk, p.Prob, p.Model, p.At}, rw, "LLLLLRLL",
				map[int]bool{5: true})
		}
	}

	heading("Appendix: definitions and formulas")
	for _, f := range Appendix(r) {
		pdf.SetFont("Helvetica", "B", 9)
		pdf.SetTextColor(31, 41, 51)
		pdf.MultiCell(width, 5, ascii(f.Term), "", "L", false)
		pdf.SetFont("Helvetica", "", 9)
		pdf.SetTextColor(62, 76, 89)
		pdf.MultiCell(width, 4.5, ascii(f.Definition), "", "L", false)
		pdf.Ln(1.5)
	}
	if err := pdf.Error(); err != nil {
		return nil, fmt.Errorf("render: pdf: %w", err)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("render: pdf: %w", err)
	}
	return buf.Bytes(), nil
}
