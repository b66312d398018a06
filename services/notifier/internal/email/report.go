package email

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"regexp"
	"strings"
)

// KindWeeklyReport is the notifications.kind of the weekly KPI report email.
const KindWeeklyReport = "weekly_report"

// Figure is a named, formatted figure.
type Figure struct {
	Name  string
	Value string
}

// Report is the weekly KPI report email's text part.
type Report struct {
	Week     string
	RunID    string
	Pipeline string
	Folder   string // where the report's files are (gs:// or a public URL)
	Figures  []Figure
	Link     string // set when the PDF is linked instead of attached
	PDFBytes int64
}

// RenderReport renders the report email's subject and plain-text body; the
// HTML body is the report itself (see InlineImages).
func RenderReport(r Report) (subject, text string, err error) {
	var s, t bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&s, KindWeeklyReport+".subject", r); err != nil {
		return "", "", err
	}
	if err := textTemplates.ExecuteTemplate(&t, KindWeeklyReport+".text", r); err != nil {
		return "", "", err
	}
	return strings.Join(strings.Fields(s.String()), " "), t.String(), nil
}

var dataImage = regexp.MustCompile(`src="data:(image/(?:png|jpeg|gif));base64,([A-Za-z0-9+/=\s]+)"`)

// InlineImages rewrites the data: URI images of an HTML document as cid:
// references to inline attachments, which mail clients show (many block
// data: URIs). Images that do not decode are left as they are.
func InlineImages(doc string) (string, []Attachment) {
	var atts []Attachment
	out := dataImage.ReplaceAllStringFunc(doc, func(m string) string {
		sub := dataImage.FindStringSubmatch(m)
		content, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sub[2]), ""))
		if err != nil {
			return m
		}
		n := len(atts) + 1
		ext := strings.TrimPrefix(sub[1], "image/")
		cid := fmt.Sprintf("image%d@cmmsflow", n)
		atts = append(atts, Attachment{Filename: fmt.Sprintf("image%d.%s", n, ext), ContentType: sub[1], Content: content, ContentID: cid})
		return `src="cid:` + cid + `"`
	})
	return out, atts
}

// PrependNotice puts an HTML notice at the top of a document's body (or
// before everything when it has no body tag).
func PrependNotice(doc, noticeHTML string) string {
	i := strings.Index(strings.ToLower(doc), "<body")
	if i < 0 {
		return noticeHTML + doc
	}
	j := strings.Index(doc[i:], ">")
	if j < 0 {
		return noticeHTML + doc
	}
	at := i + j + 1
	return doc[:at] + noticeHTML + doc[at:]
}

// LinkNotice is the notice that replaces an attachment too large to send.
func LinkNotice(what, link string, bytes int64) string {
	return fmt.Sprintf(`<div style="margin:12px;padding:12px 16px;background:#fff4e5;border:1px solid #e07b12;border-radius:4px;font-family:Arial,Helvetica,sans-serif;font-size:14px;">`+
		`The %s (%d bytes) is too large to attach: <a href="%s">%s</a></div>`,
		html.EscapeString(what), bytes, html.EscapeString(link), html.EscapeString(link))
}
