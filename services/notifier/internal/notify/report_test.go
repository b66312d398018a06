package notify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/notify"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

const reportRun = "scheduled__2026-11-23T08:00:00+00:00"

// A 1×1 PNG.
var pixel, _ = base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")

// limited is a sender refusing, as SendGrid does past 30 MB, any message
// whose attachments add up to more than max bytes.
type limited struct {
	email.Sender
	max int
}

func (l limited) Send(ctx context.Context, m email.Message) error {
	total := 0
	for _, a := range m.Attachments {
		total += len(a.Content)
	}
	if total > l.max {
		return fmt.Errorf("%w: %d bytes of attachments", email.ErrTooLarge, total)
	}
	return l.Sender.Send(ctx, m)
}

type reportFixture struct {
	t      *testing.T
	pool   *pgxpool.Pool
	router *eventing.Router
	store  *objstore.Store
	outbox *email.Outbox
	pdf    []byte
}

func newReportFixture(t *testing.T, maxAttachment int, linkBase string, rs ...rules.Rule) *reportFixture {
	t.Helper()
	f := &reportFixture{t: t, pool: pgtest.New(t), store: objstoretest.New(t)}
	out, err := email.NewOutbox(filepath.Join(t.TempDir(), "outbox"))
	if err != nil {
		t.Fatal(err)
	}
	f.outbox = out
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.router = eventing.NewRouter(eventing.RouterConfig{Service: events.Notifier, Pool: f.pool, Log: log})
	notify.New(f.pool, limited{Sender: out, max: maxAttachment}, webhook.NewPoster(nil), notify.Config{
		From:    mail.Address{Name: "cmmsflow", Address: "cmmsflow@fleet.test"},
		Admins:  admins,
		Reports: []mail.Address{{Name: "Board", Address: "board@fleet.test"}},
		Bucket:  f.store, ReportLinkBase: linkBase, Rules: rs,
	}, log).Register(f.router)

	ctx := context.Background()
	f.pdf = append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("report "), 2000)...)
	html := `<!DOCTYPE html><html><body style="margin:0"><h1>Weekly maintenance KPI report 2026-W47</h1>` +
		`<img src="data:image/png;base64,` + base64.StdEncoding.EncodeToString(pixel) + `" alt="chart"></body></html>`
	for name, data := range map[string][]byte{"reports/2026-W47/report.pdf": f.pdf, "reports/2026-W47/report.html": []byte(html)} {
		if err := f.store.Put(ctx, name, "application/octet-stream", data); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *reportFixture) event() eventing.Event {
	f.t.Helper()
	obj := func(name, ctype string, n int) *eventsv1.StoredObject {
		return &eventsv1.StoredObject{Name: name, Uri: f.store.URI(name), Bytes: int64(n), ContentType: ctype}
	}
	return eventingtest.Event(f.t, events.ReportGenerated, reportRun, events.WeeklyKPIReport,
		&eventsv1.ReportGenerated{
			IsoWeek: "2026-W47",
			Pdf:     obj("reports/2026-W47/report.pdf", "application/pdf", len(f.pdf)),
			Html:    obj("reports/2026-W47/report.html", "text/html; charset=utf-8", 100),
			Csv:     obj("reports/2026-W47/kpis.csv", "text/csv", 10),
			Kpis:    map[string]float64{"wo_opened": 41, "mttr_hours": 4.25, "pm_compliance_pct": 84},
		})
}

// part is one leaf of a MIME message, decoded.
type part struct {
	ctype, disposition, filename, cid string
	body                              []byte
}

func parts(t *testing.T, path string) (*mail.Message, []part) {
	t.Helper()
	msg, err := email.ReadOutboxFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []part
	var walk func(ctype string, h map[string][]string, r io.Reader)
	walk = func(ctype string, h map[string][]string, r io.Reader) {
		mt, params, err := mime.ParseMediaType(ctype)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(r, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p.Header.Get("Content-Type"), p.Header, p)
			}
		}
		get := func(k string) string {
			if v := h[k]; len(v) > 0 {
				return v[0]
			}
			return ""
		}
		var body []byte
		switch get("Content-Transfer-Encoding") {
		case "base64":
			body, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, r))
		case "quoted-printable":
			body, err = io.ReadAll(quotedprintable.NewReader(r))
		default:
			body, err = io.ReadAll(r)
		}
		if err != nil {
			t.Fatal(err)
		}
		disp, dparams, _ := mime.ParseMediaType(get("Content-Disposition"))
		out = append(out, part{ctype: mt, disposition: disp, filename: dparams["filename"],
			cid: strings.Trim(get("Content-Id"), "<>"), body: body})
	}
	walk(msg.Header.Get("Content-Type"), msg.Header, msg.Body)
	return msg, out
}

func (f *reportFixture) emails() []string {
	f.t.Helper()
	files, err := filepath.Glob(filepath.Join(f.outbox.Dir(), "*.eml"))
	if err != nil {
		f.t.Fatal(err)
	}
	return files
}

func (f *reportFixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func TestReportEmailedWithPDFOnce(t *testing.T) {
	f := newReportFixture(t, email.MaxMessageBytes, "")
	ev := f.event()
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Duplicate)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Duplicate)
	// The same report republished (a new event id) for the same run.
	eventingtest.Deliver(t, f.router, f.event().Message(), eventing.Handled)

	files := f.emails()
	if len(files) != 1 {
		t.Fatalf("%d emails in the outbox, want 1", len(files))
	}
	msg, ps := parts(t, files[0])
	if got := msg.Header.Get("Subject"); got != "[cmmsflow] Weekly maintenance KPI report 2026-W47" {
		t.Fatalf("subject %q", got)
	}
	if to := msg.Header.Get("To"); !strings.Contains(to, "board@fleet.test") || strings.Contains(to, "ops@fleet.test") {
		t.Fatalf("to %q", to)
	}
	var pdf, img, html, text *part
	for i := range ps {
		p := &ps[i]
		switch {
		case p.ctype == "application/pdf":
			pdf = p
		case p.ctype == "image/png":
			img = p
		case p.ctype == "text/html":
			html = p
		case p.ctype == "text/plain":
			text = p
		}
	}
	if pdf == nil || !bytes.Equal(pdf.body, f.pdf) || pdf.disposition != "attachment" || pdf.filename != "kpi-report-2026-W47.pdf" {
		t.Fatalf("pdf attachment %+v", pdf)
	}
	if img == nil || img.disposition != "inline" || !bytes.Equal(img.body, pixel) || html == nil ||
		!strings.Contains(string(html.body), `src="cid:`+img.cid+`"`) || strings.Contains(string(html.body), "data:image") {
		t.Fatalf("inline chart: img %+v, html %q", img, html)
	}
	if text == nil || !strings.Contains(string(text.body), "attached as a PDF") || !strings.Contains(string(text.body), "MTTR") ||
		!strings.Contains(string(text.body), "4.25 h") {
		t.Fatalf("text %q", text)
	}
	if n := f.count(`SELECT count(*) FROM notifications WHERE run_id = $1 AND kind = 'weekly_report' AND status = 'sent' AND error = ''`, reportRun); n != 1 {
		t.Fatalf("%d sent report notifications", n)
	}
	n := 0
	for _, s := range eventingtest.Emitted(t, f.pool, events.StepSucceeded, "", func() *eventsv1.StepSucceeded { return &eventsv1.StepSucceeded{} }) {
		if s.GetFigures()["emails_sent"] == 1 {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d step.succeeded with one email sent, want 2 (one per handled event)", n)
	}
}

// Over the size limit the email goes out without the PDF, with a link.
func TestReportTooLargeSendsLink(t *testing.T) {
	for _, tt := range []struct {
		base, link string
	}{
		{"", "gs://test-bucket/reports/2026-W47/report.pdf"},
		{"https://storage.example.test/reports-bucket/", "https://storage.example.test/reports-bucket/reports/2026-W47/report.pdf"},
	} {
		t.Run(tt.link, func(t *testing.T) {
			f := newReportFixture(t, 1000, tt.base)
			eventingtest.Deliver(t, f.router, f.event().Message(), eventing.Handled)
			files := f.emails()
			if len(files) != 1 {
				t.Fatalf("%d emails", len(files))
			}
			_, ps := parts(t, files[0])
			var sawText, sawHTML, sawImage bool
			for _, p := range ps {
				switch p.ctype {
				case "application/pdf":
					t.Fatal("the PDF is attached")
				case "image/png":
					sawImage = true
				case "text/plain":
					sawText = strings.Contains(string(p.body), "too large to attach") && strings.Contains(string(p.body), tt.link)
				case "text/html":
					sawHTML = strings.Contains(string(p.body), `href="`+tt.link+`"`)
				}
			}
			if !sawText || !sawHTML || !sawImage {
				t.Fatalf("link fallback: text %v html %v image %v", sawText, sawHTML, sawImage)
			}
			if n := f.count(`SELECT count(*) FROM notifications WHERE kind = 'weekly_report' AND status = 'sent' AND error LIKE '%sent a link instead%'`); n != 1 {
				t.Fatal("fallback not noted on the notification")
			}
		})
	}
}

// A report whose files are gone cannot be sent: dead-lettered, the step
// failed.
func TestReportMissingFileFailsTheStep(t *testing.T) {
	f := newReportFixture(t, email.MaxMessageBytes, "")
	ev := eventingtest.Event(t, events.ReportGenerated, reportRun, events.WeeklyKPIReport,
		&eventsv1.ReportGenerated{IsoWeek: "2026-W48",
			Pdf:  &eventsv1.StoredObject{Name: "reports/2026-W48/report.pdf"},
			Html: &eventsv1.StoredObject{Name: "reports/2026-W48/report.html"}})
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.DeadLettered)
	if n := f.count(`SELECT count(*) FROM dead_letters WHERE consumer = 'notifier' AND reason LIKE '%report file missing%'`); n != 1 {
		t.Fatalf("%d dead letters", n)
	}
	if len(f.emails()) != 0 {
		t.Fatal("email sent")
	}
}

// A report's KPIs are observed for its ISO week: a rule breached there
// opens its alert for the week, once however often the report comes.
func TestReportKPIRuleObservesTheWeek(t *testing.T) {
	f := newReportFixture(t, email.MaxMessageBytes, "", rules.Rule{Name: "pm-low", Metric: "kpi.pm_compliance_pct",
		Comparator: "<", Threshold: 85, For: 1, Severity: "warning", Channels: []string{rules.ChannelEmail}})
	eventingtest.Deliver(t, f.router, f.event().Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, f.event().Message(), eventing.Handled)
	if n := f.count(`SELECT count(*) FROM alert_observations WHERE rule = 'pm-low' AND period = '2026-W47' AND value = 84 AND breached`); n != 1 {
		t.Fatalf("%d observations for the week, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM alerts WHERE dedup_key = 'cmmsflow/rule/pm-low/2026-W47' AND status = 'open'`); n != 1 {
		t.Fatal("the week's alert is not open")
	}
	if files := f.emails(); len(files) != 2 {
		t.Fatalf("%d emails, want the report and one alert", len(files))
	}
}
