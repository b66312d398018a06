package render_test

import (
	"bytes"
	"encoding/csv"
	stdhtml "html"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/monitor"
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/kpi"
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/render"
)

// sample is a report as Compute would return it, with an undefined MTBF,
// MTTR and previous inventory.
func sample(t *testing.T) *kpi.Report {
	t.Helper()
	w, err := kpi.ParseWeek("2026-W47")
	if err != nil {
		t.Fatal(err)
	}
	r := &kpi.Report{Week: w, TimeZone: "UTC", MTBFWindowDays: 365, GeneratedAt: time.Date(2026, 11, 23, 8, 0, 5, 0, time.UTC)}
	r.Current = kpi.Period{Week: w,
		WorkOrders: kpi.WorkOrders{Opened: 41, Completed: 37, CompletedPreventive: 22, InProgress: 9, Pending: 15, Overdue: 4,
			OpenedByPriority: map[string]int64{"CRITICAL": 3, "HIGH": 10, "MEDIUM": 20, "LOW": 8}},
		Repairs: 15, MTTR: kpi.Some(4.25),
		ByType: []kpi.TypeFigures{
			{VehicleType: "bus", Assets: 12, OperatingDays: 4380, Failures: 30, MTBF: kpi.MTBF(4380, 30), Repairs: 3, MTTR: kpi.Some(6)},
			{VehicleType: "truck", Assets: 40, OperatingDays: 14600, Failures: 81, MTBF: kpi.MTBF(14600, 81), Repairs: 12, MTTR: kpi.Some(3.8)},
			{VehicleType: "van", Assets: 5, OperatingDays: 1825, MTBF: kpi.MTBF(1825, 0)},
		},
		PMDue: 25, PMOnTime: 21, PMCompliance: kpi.Percent(21, 25), PlannedPct: kpi.Percent(22, 37),
		ML: kpi.ML{Assets: 57, High: 6, Critical: 2, AvgProbability: kpi.Some(0.213), Top: []kpi.Prediction{
			{AssetTag: "TRK-0001", Name: "Volvo FH16 #1", VehicleType: "truck", RiskLevel: "critical", Probability: 0.91, ModelVer: "v3", PredictedAt: r.GeneratedAt},
			{AssetTag: "BUS-0007", Name: "Citaro #7", VehicleType: "bus", RiskLevel: "high", Probability: 0.74, ModelVer: "v3", PredictedAt: r.GeneratedAt},
		}},
	}
	r.Previous = kpi.Period{Week: w.Add(-1), WorkOrders: kpi.WorkOrders{Opened: 35, Completed: 40, OpenedByPriority: map[string]int64{}},
		MTTR: kpi.NA, PMCompliance: kpi.NA, PlannedPct: kpi.NA}
	r.Inventory = kpi.Inventory{Items: 60, AtOrBelowReorder: 7, StockValue: 12345.5}
	for i := range 12 {
		r.Trend = append(r.Trend, kpi.TrendPoint{Week: w.Add(i - 11), Opened: int64(30 + i%4*3), Completed: int64(28 + i%3*4)})
	}
	return r
}

func TestRender(t *testing.T) {
	r := sample(t)
	f, err := render.All(r)
	if err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("RENDER_OUT"); out != "" { // for looking at the files
		_ = os.MkdirAll(out, 0o755)
		_ = os.WriteFile(filepath.Join(out, "report.pdf"), f.PDF, 0o644)
		_ = os.WriteFile(filepath.Join(out, "report.html"), f.HTML, 0o644)
		for _, c := range f.Charts {
			_ = os.WriteFile(filepath.Join(out, c.Name), c.PNG, 0o644)
		}
	}

	// Charts: three PNGs of the stated size.
	if len(f.Charts) != 3 {
		t.Fatalf("%d charts", len(f.Charts))
	}
	for _, c := range f.Charts {
		img, err := png.Decode(bytes.NewReader(c.PNG))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if b := img.Bounds(); b.Dx() != 768 || b.Dy() != 432 {
			t.Errorf("%s is %dx%d, want 768x432", c.Name, b.Dx(), b.Dy())
		}
	}

	// HTML: self-contained, charts inline, n/a shown, appendix present.
	html := string(f.HTML)
	if n := strings.Count(html, `src="data:image/png;base64,`); n != 3 {
		t.Errorf("%d inline charts in the HTML", n)
	}
	for _, want := range []string{"Weekly maintenance KPI report 2026-W47", "Mon 16 Nov 2026 - Sun 22 Nov 2026", "2026-W46",
		"MTBF, van", "n/a", "TRK-0001", "Appendix: definitions and formulas", "operating days / number of failures",
		"the hours from started_at to completed_at",
		"146.0 d", "180.2 d", "84.0 %", "12,345.50"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	text := regexp.MustCompile(`data:image/png;base64,[A-Za-z0-9+/=]+`).ReplaceAllString(html, "")
	if strings.Contains(text, "Inf") || strings.Contains(text, "NaN") {
		t.Error("HTML shows an infinite or NaN figure")
	}

	// CSV: a header and one line per KPI row.
	recs, err := csv.NewReader(bytes.NewReader(f.CSV)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(kpi.Rows(r))+1 || strings.Join(recs[0], ",") != "iso_week,previous_week,section,key,kpi,current,previous,change" {
		t.Fatalf("csv header %v, %d lines", recs[0], len(recs))
	}
	byKey := map[string][]string{}
	for _, rec := range recs[1:] {
		byKey[rec[3]] = rec
	}
	if got := byKey["mtbf_days_van"]; got[5] != "n/a" || got[7] != "n/a" {
		t.Errorf("van MTBF in CSV %v", got)
	}
	if got := byKey["wo_opened"]; got[0] != "2026-W47" || got[5] != "41" || got[6] != "35" || got[7] != "6" {
		t.Errorf("opened in CSV %v", got)
	}

	// PDF: page 1 (the charts) renders to a PNG.
	if !bytes.HasPrefix(f.PDF, []byte("%PDF-")) {
		t.Fatal("not a PDF")
	}
	dir := t.TempDir()
	pdfPath := filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(pdfPath, f.PDF, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", pdfPath, filepath.Join(dir, "page")).CombinedOutput()
	if err != nil {
		t.Fatalf("pdftoppm (Debian package poppler-utils): %v\n%s", err, out)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "page*.png"))
	if len(pages) != 1 {
		t.Fatalf("pdftoppm wrote %v", pages)
	}
	b, err := os.ReadFile(pages[0])
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// A4 at 60 dpi: 8.27 x 11.69 in.
	if bd := img.Bounds(); bd.Dx() < 490 || bd.Dx() > 500 || bd.Dy() < 695 || bd.Dy() > 705 {
		t.Errorf("page 1 is %dx%d, want about 496x702", bd.Dx(), bd.Dy())
	}
	// The page is not blank: the charts put colour on it.
	colored := 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 2 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			if max(r, g, b)-min(r, g, b) > 0x3000 {
				colored++
			}
		}
	}
	if colored < 200 {
		t.Errorf("page 1 has %d coloured sample pixels: charts missing?", colored)
	}
}

// pdfText is the text of a PDF (pdftotext, Debian package poppler-utils).
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(path, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return string(out)
}

// The model-health section: the champion's drift and realized performance
// beside the shadow's, in the HTML and the PDF; a clear sentence without
// monitoring data.
func TestRenderModelHealth(t *testing.T) {
	r := sample(t)
	r.Drift = monitor.DefaultThresholds
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	perf := func(auc, precision kpi.Opt) *kpi.Performance {
		return &kpi.Performance{SnapshotDate: day("2026-08-20"), LabelWindowDays: 90, Labelled: 120, Positives: 14,
			ROCAUC: auc, CriticalPrecision: precision}
	}
	r.Health = kpi.ModelHealth{
		Champion: &kpi.ModelStatus{Version: "v20261101-abc", Role: "champion", Pipeline: "model_monitoring",
			SnapshotDate: day("2026-11-21"), MaxPSI: kpi.Some(0.912), Drift: "alert",
			Drifting:    []kpi.FeatureDrift{{Feature: "asset_age_days", PSI: 0.912, Level: "alert"}, {Feature: "engine_hours", PSI: 0.12, Level: "warn"}},
			Performance: perf(kpi.Some(0.71), kpi.Some(50))},
		Shadow: &kpi.ModelStatus{Version: "v20261115-def", Role: "shadow", Pipeline: "model_monitoring",
			SnapshotDate: day("2026-11-21"), MaxPSI: kpi.Some(0.05), Drift: "ok", Performance: perf(kpi.Some(0.74), kpi.NA)},
	}
	f, err := render.All(r)
	if err != nil {
		t.Fatal(err)
	}
	html, pdf := stdhtml.UnescapeString(string(f.HTML)), pdfText(t, f.PDF)
	for _, want := range []string{"Model health", "v20261101-abc", "v20261115-def", "2026-11-21 (model_monitoring)",
		"0.912", "asset_age_days 0.912 (alert), engine_hours 0.120 (warn)", "0.710", "0.740", "50.0 %",
		"120 assets, 14 failed, 2026-08-20 + 90 d",
		"Shadow v20261115-def vs champion v20261101-abc: realized ROC AUC +0.030 on the same labels.",
		"at the warn level from a PSI of 0.1, at the alert level from 0.25"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
		if !strings.Contains(strings.Join(strings.Fields(pdf), " "), want) {
			t.Errorf("PDF lacks %q", want)
		}
	}
	if strings.Contains(html, "No monitoring data yet") || strings.Contains(pdf, "No monitoring data yet") {
		t.Error("a monitored model reads as not monitored")
	}

	r.Health = kpi.ModelHealth{}
	if f, err = render.All(r); err != nil {
		t.Fatal(err)
	}
	const none = "No monitoring data yet: no model scoring was recorded before the end of the week."
	if html, pdf := string(f.HTML), strings.Join(strings.Fields(pdfText(t, f.PDF)), " "); !strings.Contains(html, none) ||
		!strings.Contains(pdf, none) || strings.Contains(html, "Critical precision") || strings.Contains(pdf, "Critical precision") {
		t.Errorf("without monitoring data: HTML has the sentence %v, PDF %v, and neither a table",
			strings.Contains(html, none), strings.Contains(pdf, none))
	}
}
