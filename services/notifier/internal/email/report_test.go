package email_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
)

func TestInlineImages(t *testing.T) {
	png := []byte("\x89PNG fake")
	enc := base64.StdEncoding.EncodeToString(png)
	for _, tt := range []struct {
		name, in, want string
		n              int
	}{
		{"none", `<p>no images</p>`, `<p>no images</p>`, 0},
		{"two", `<img src="data:image/png;base64,` + enc + `"><img alt="x" src="data:image/jpeg;base64,` + enc + `">`,
			`<img src="cid:image1@cmmsflow"><img alt="x" src="cid:image2@cmmsflow">`, 2},
		{"undecodable left alone", `<img src="data:image/png;base64,@@@">`, `<img src="data:image/png;base64,@@@">`, 0},
		{"remote image untouched", `<img src="https://example.test/a.png">`, `<img src="https://example.test/a.png">`, 0},
	} {
		got, atts := email.InlineImages(tt.in)
		if got != tt.want || len(atts) != tt.n {
			t.Errorf("%s: %q with %d attachments, want %q with %d", tt.name, got, len(atts), tt.want, tt.n)
			continue
		}
		for i, a := range atts {
			if string(a.Content) != string(png) || a.ContentID == "" || !strings.HasPrefix(a.ContentType, "image/") || a.Filename == "" {
				t.Errorf("%s: attachment %d %+v", tt.name, i, a)
			}
		}
	}
}

func TestPrependNotice(t *testing.T) {
	for in, want := range map[string]string{
		`<html><body style="x"><p>r</p></body></html>`: `<html><body style="x"><b>!</b><p>r</p></body></html>`,
		`<p>r</p>`: `<b>!</b><p>r</p>`,
	} {
		if got := email.PrependNotice(in, "<b>!</b>"); got != want {
			t.Errorf("PrependNotice(%q) = %q, want %q", in, got, want)
		}
	}
	if n := email.LinkNotice("PDF report", `gs://b/r.pdf?a="1"`, 42); !strings.Contains(n, `href="gs://b/r.pdf?a=&#34;1&#34;"`) || !strings.Contains(n, "42 bytes") {
		t.Errorf("notice %q", n)
	}
}

func TestRenderReport(t *testing.T) {
	r := email.Report{Week: "2026-W47", RunID: "run-1", Pipeline: "weekly_kpi_report", Folder: "gs://b/reports/2026-W47/",
		Figures: []email.Figure{{Name: "MTTR", Value: "4.25 h"}}}
	subject, text, err := email.RenderReport(r)
	if err != nil {
		t.Fatal(err)
	}
	if subject != "[cmmsflow] Weekly maintenance KPI report 2026-W47" || !strings.Contains(text, "attached as a PDF") ||
		!strings.Contains(text, "4.25 h") || strings.Contains(text, "too large") {
		t.Fatalf("%q\n%s", subject, text)
	}
	r.Link, r.PDFBytes = "gs://b/reports/2026-W47/report.pdf", 31_000_000
	_, text, err = email.RenderReport(r)
	if err != nil || !strings.Contains(text, "too large to attach (31000000 bytes)") || !strings.Contains(text, r.Link) {
		t.Fatalf("link text %v\n%s", err, text)
	}
}
