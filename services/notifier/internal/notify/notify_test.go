package notify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pagerdutytest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email/sendgridtest"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/notify"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/pagerduty"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

const (
	runID  = "manual__2026-11-27T06:00:00+00:00"
	apiKey = "SG.notify-test"
)

var admins = []mail.Address{{Name: "Fleet Ops", Address: "ops@fleet.test"}, {Address: "chief@fleet.test"}}

// recorder counts what an email sender was asked to send.
type recorder struct {
	email.Sender
	mu    sync.Mutex
	sent  []email.Message
	block func(ctx context.Context) error // when set, runs before each send; an error fails it
}

func (r *recorder) Send(ctx context.Context, m email.Message) error {
	r.mu.Lock()
	block := r.block
	r.mu.Unlock()
	if block != nil {
		if err := block(ctx); err != nil {
			return err
		}
	}
	err := r.Sender.Send(ctx, m)
	if err == nil {
		r.mu.Lock()
		r.sent = append(r.sent, m)
		r.mu.Unlock()
	}
	return err
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

// hookServer is a fake webhook endpoint answering the statuses given, in
// turn (the last one repeats).
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
}

func newHook(t *testing.T, statuses ...int) *hookServer {
	h := &hookServer{statuses: statuses}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, b)
		code := h.statuses[min(len(h.bodies), len(h.statuses))-1]
		h.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) received() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bodies)
}

type fixture struct {
	t      *testing.T
	pool   *pgxpool.Pool
	n      *notify.Notifier
	router *eventing.Router
	http   *httptest.Server
	mail   *recorder
	outbox string // when sending to the outbox
	sg     *sendgridtest.Server
	techs  map[string]int64
}

type options struct {
	sendgrid    bool
	webhooks    string // NOTIFY_WEBHOOK_URLS, with {name} replaced by hook server URLs
	hooks       map[string]*hookServer
	maxAttempts int
	timeout     time.Duration // the router's per-event timeout
	sendTimeout time.Duration // notify.Config.SendTimeout
	pagerduty   *pagerdutytest.Server
	rules       []rules.Rule
}

func newFixture(t *testing.T, o options) *fixture {
	t.Helper()
	f := &fixture{t: t, pool: pgtest.New(t)}
	var sender email.Sender
	if o.sendgrid {
		f.sg = sendgridtest.New(t, apiKey)
		sg, err := email.NewSendGrid(email.SendGridConfig{APIKey: apiKey, BaseURL: f.sg.URL})
		if err != nil {
			t.Fatal(err)
		}
		sender = sg
	} else {
		f.outbox = filepath.Join(t.TempDir(), "outbox")
		out, err := email.NewOutbox(f.outbox)
		if err != nil {
			t.Fatal(err)
		}
		sender = out
	}
	f.mail = &recorder{Sender: sender}
	list := o.webhooks
	for name, h := range o.hooks {
		list = strings.ReplaceAll(list, "{"+name+"}", h.URL)
	}
	targets, err := webhook.ParseTargets(list)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.router = eventing.NewRouter(eventing.RouterConfig{Service: events.Notifier, Pool: f.pool, Log: log, Timeout: o.timeout})
	var pd *pagerduty.Client
	if o.pagerduty != nil {
		if pd, err = pagerduty.New(o.pagerduty.EventsURL(), routingKey, webhook.NewPoster(nil)); err != nil {
			t.Fatal(err)
		}
	}
	f.n = notify.New(f.pool, f.mail, webhook.NewPoster(nil), notify.Config{
		From:   mail.Address{Name: "cmmsflow", Address: "cmmsflow@fleet.test"},
		Admins: admins, Webhooks: targets, MaxAttempts: o.maxAttempts, SendTimeout: o.sendTimeout,
		PagerDuty: pd, Rules: o.rules,
	}, log)
	f.n.Register(f.router)
	f.http = httptest.NewServer(f.router)
	t.Cleanup(f.http.Close)
	f.seed()
	return f
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// seed builds a run's work orders by hand: Ann has three (two assets), Bob
// one, Dee one but no email address; one is unassigned, one is assigned to
// an inactive technician; another run's work order must not appear.
func (f *fixture) seed() {
	f.exec(`INSERT INTO technicians (code, name, email, active) VALUES
		('T-ANN', 'Ann Lee', 'ann@fleet.test', true),
		('T-BOB', 'Bob Kay', 'bob@fleet.test', true),
		('T-CID', 'Cid Old', 'cid@fleet.test', false),
		('T-DEE', 'Dee Noemail', '', true)`)
	f.exec(`INSERT INTO assets (asset_tag, name, vehicle_type, location, commissioned_date) VALUES
		('TRK-001', 'Volvo FH16 #1', 'truck', 'Depot North', '2020-01-01'),
		('VAN-002', 'Transit #2', 'van', 'Depot South', '2021-01-01'),
		('BUS-003', 'Citaro #3', 'bus', '', '2019-01-01')`)
	f.exec(`
		INSERT INTO work_orders (wo_number, asset_id, type, priority, title, due_date, assigned_technician_id, skipped_occurrences, run_id)
		SELECT v.num, a.id, 'PREVENTIVE', v.prio, v.title, v.due::date, t.id, v.skipped, v.run
		FROM (VALUES
			('PM-0001', 'TRK-001', 'HIGH',     'Oil and filter change',  '2026-11-27', 'T-ANN', 0, $1),
			('PM-0002', 'VAN-002', 'MEDIUM',   'Tyre rotation',          '2026-11-26', 'T-ANN', 2, $1),
			('PM-0003', 'TRK-001', 'CRITICAL', 'Brake inspection',       '2026-11-27', 'T-ANN', 0, $1),
			('PM-0004', 'BUS-003', 'LOW',      'Door seals',             '2026-11-28', 'T-BOB', 0, $1),
			('PM-0005', 'VAN-002', 'LOW',      'Wiper blades',           '2026-11-27', NULL,    0, $1),
			('PM-0006', 'BUS-003', 'HIGH',     'Emergency exits',        '2026-11-27', 'T-CID', 0, $1),
			('PM-0007', 'TRK-001', 'MEDIUM',   'Tachograph calibration', '2026-11-29', 'T-DEE', 0, $1),
			('PM-0099', 'BUS-003', 'HIGH',     'Other run',              '2026-11-27', 'T-BOB', 0, 'another-run')
		) AS v(num, tag, prio, title, due, tech, skipped, run)
		JOIN assets a ON a.asset_tag = v.tag
		LEFT JOIN technicians t ON t.code = v.tech`, runID)
	f.techs = map[string]int64{}
	rows, _ := f.pool.Query(context.Background(), `SELECT code, id FROM technicians`)
	for rows.Next() {
		var code string
		var id int64
		_ = rows.Scan(&code, &id)
		f.techs[code] = id
	}
	if rows.Err() != nil || len(f.techs) != 4 {
		f.t.Fatalf("technicians %v %v", f.techs, rows.Err())
	}
}

func generated(t *testing.T) eventing.Event {
	return eventingtest.Event(t, events.WorkOrdersGenerated, runID, events.PreventiveMaintenance, &eventsv1.WorkOrdersGenerated{
		AsOf: "2026-11-27", Created: 7, SkippedOpen: 2, Failed: 1, MissedOccurrences: 2,
		CreatedByVehicleType: map[string]int32{"truck": 3, "van": 2, "bus": 2},
	})
}

func stepFailed(t *testing.T, run, step, errText string, retrying bool) eventing.Event {
	return eventingtest.Event(t, events.StepFailed, run, events.PreventiveMaintenance, &eventsv1.StepFailed{Step: step, Error: errText, Retrying: retrying})
}

// push delivers ev over HTTP as a Pub/Sub push and returns the status.
func (f *fixture) push(ev eventing.Event, messageID string) (int, string) {
	f.t.Helper()
	code, body, err := push(f.http.URL, ev, messageID)
	if err != nil {
		f.t.Fatal(err)
	}
	return code, body
}

// push delivers ev to url as a Pub/Sub push and returns the answer.
func push(url string, ev eventing.Event, messageID string) (int, string, error) {
	m := ev.Message()
	body, _ := json.Marshal(map[string]any{
		"message": map[string]any{
			"data": base64.StdEncoding.EncodeToString(m.Data), "attributes": m.Attributes,
			"messageId": messageID, "publishTime": time.Now().UTC().Format(time.RFC3339Nano),
		},
		"subscription": "projects/p/subscriptions/workorders-generated--notifier",
	})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// pushUntilAcked pushes ev as Pub/Sub does: again, after a short backoff,
// while the answer is 503 "leased". It returns the final answer and how many
// times the delivery was leased.
func (f *fixture) pushUntilAcked(ev eventing.Event, messageID string) (code int, body string, leased int) {
	f.t.Helper()
	for range 200 {
		code, body = f.push(ev, messageID)
		if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "leased") {
			return code, body, leased
		}
		leased++
		time.Sleep(20 * time.Millisecond)
	}
	return code, body, leased
}

type row struct {
	Key, Channel, Kind, Recipient, Subject, Body, Status, Error string
	TechnicianID                                                *int64
	Attempts                                                    int
}

func (f *fixture) rows(where string, args ...any) []row {
	f.t.Helper()
	rs, err := f.pool.Query(context.Background(), `
		SELECT dedupe_key, channel, kind, recipient, subject, body, status, error, technician_id, attempts
		FROM notifications WHERE `+where+` ORDER BY dedupe_key`, args...)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.Key, &r.Channel, &r.Kind, &r.Recipient, &r.Subject, &r.Body, &r.Status, &r.Error, &r.TechnicianID, &r.Attempts); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func (f *fixture) row(key string) row {
	f.t.Helper()
	rs := f.rows("dedupe_key = $1", key)
	if len(rs) != 1 {
		f.t.Fatalf("no notification %q", key)
	}
	return rs[0]
}

// succeeded returns the figures of every step-succeeded event notifier emitted.
func (f *fixture) succeeded() []map[string]float64 {
	f.t.Helper()
	var out []map[string]float64
	for _, s := range eventingtest.Emitted(f.t, f.pool, events.StepSucceeded, "", func() *eventsv1.StepSucceeded { return &eventsv1.StepSucceeded{} }) {
		if s.Step != events.Notifier {
			f.t.Fatalf("step %q", s.Step)
		}
		out = append(out, s.Figures)
	}
	return out
}

type eml struct {
	to      []string
	subject string
	text    string
	html    string
}

// outboxFiles parses every .eml in the outbox, by file name.
func (f *fixture) outboxFiles() map[string]eml {
	f.t.Helper()
	entries, err := os.ReadDir(f.outbox)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]eml{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".eml") {
			f.t.Fatalf("stray file %s in the outbox", e.Name())
		}
		msg, err := email.ReadOutboxFile(filepath.Join(f.outbox, e.Name()))
		if err != nil {
			f.t.Fatal(err)
		}
		var m eml
		to, _ := msg.Header.AddressList("To")
		for _, a := range to {
			m.to = append(m.to, a.Address)
		}
		m.subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		raw, _ := io.ReadAll(msg.Body)
		// The bodies are quoted-printable; the tests look for short ASCII
		// phrases, so undo soft line breaks and the few escapes they use.
		s := strings.NewReplacer("=\r\n", "", "=3D", "=", "=20", " ", "\r\n", "\n").Replace(string(raw))
		if i := strings.Index(s, "Content-Type: text/html"); i >= 0 {
			m.text, m.html = s[:i], s[i:]
		} else {
			m.text = s
		}
		out[e.Name()] = m
	}
	return out
}

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

func lacks(t *testing.T, what, s string, nots ...string) {
	t.Helper()
	for _, w := range nots {
		if strings.Contains(s, w) {
			t.Errorf("%s has %q:\n%s", what, w, s)
		}
	}
}

func TestWorkOrdersGeneratedNotifiesEveryoneOnce(t *testing.T) {
	slack, generic := newHook(t, 200), newHook(t, 204)
	f := newFixture(t, options{webhooks: "slack={slack}/services/T/B/secret,json={generic}/hook",
		hooks: map[string]*hookServer{"slack": slack, "generic": generic}})
	ev := generated(t)

	// Three deliveries of the same event, as Pub/Sub push requests.
	var outcomes []string
	for i := range 3 {
		code, body := f.push(ev, fmt.Sprint("m", i))
		if code != http.StatusOK {
			t.Fatalf("delivery %d: %d %s", i, code, body)
		}
		outcomes = append(outcomes, body)
	}
	if want := `[{"outcome":"handled"} {"outcome":"duplicate"} {"outcome":"duplicate"}]`; fmt.Sprint(outcomes) != want {
		t.Fatalf("outcomes %v, want %s", outcomes, want)
	}

	// One inbox notification per assigned, active technician, their work
	// orders grouped by asset, soonest and most urgent first.
	inbox := f.rows("channel = 'inbox'")
	if len(inbox) != 3 {
		t.Fatalf("%d inbox notifications, want 3 (Ann, Bob, Dee): %+v", len(inbox), inbox)
	}
	byTech := map[int64]row{}
	for _, r := range inbox {
		if r.TechnicianID == nil || r.Status != notify.StatusSent || r.Kind != email.KindWorkOrderDigest {
			t.Errorf("inbox row %+v", r)
			continue
		}
		byTech[*r.TechnicianID] = r
	}
	ann := byTech[f.techs["T-ANN"]]
	if ann.Subject != "[cmmsflow] 3 preventive maintenance work orders assigned to you (2026-11-27)" {
		t.Errorf("Ann's subject %q", ann.Subject)
	}
	contains(t, "Ann's inbox", ann.Body, "Hello Ann Lee", "TRK-001 — Volvo FH16 #1 (truck, Depot North)",
		"- PM-0003 [CRITICAL, due 2026-11-27] Brake inspection\n  - PM-0001 [HIGH, due 2026-11-27] Oil and filter change",
		"VAN-002 — Transit #2 (van, Depot South)\n  - PM-0002 [MEDIUM, due 2026-11-26] Tyre rotation (2 missed occurrences folded in)")
	lacks(t, "Ann's inbox", ann.Body, "PM-0004", "PM-0005", "PM-0099")
	bob := byTech[f.techs["T-BOB"]]
	contains(t, "Bob's inbox", bob.Body, "PM-0004 [LOW, due 2026-11-28] Door seals")
	lacks(t, "Bob's inbox", bob.Body, "PM-0099", "PM-0001")
	if _, ok := byTech[f.techs["T-DEE"]]; !ok {
		t.Error("Dee (no email address) has no inbox notification")
	}
	if _, ok := byTech[f.techs["T-CID"]]; ok {
		t.Error("inactive Cid was notified")
	}

	// Emails: Ann, Bob, and the admins' summary; nothing twice.
	files := f.outboxFiles()
	if len(files) != 3 || f.mail.count() != 3 {
		t.Fatalf("%d outbox files, %d sends, want 3", len(files), f.mail.count())
	}
	annMail := files[email.FileName(runID+":email:technician-"+fmt.Sprint(f.techs["T-ANN"])+":wo_digest")]
	if fmt.Sprint(annMail.to) != "[ann@fleet.test]" || annMail.subject != ann.Subject {
		t.Errorf("Ann's email to %v subject %q", annMail.to, annMail.subject)
	}
	contains(t, "Ann's email", annMail.text, "PM-0003 [CRITICAL, due 2026-11-27] Brake inspection", "PM-0002")
	contains(t, "Ann's email HTML", annMail.html, "<h3", "Volvo FH16 #1", "Brake inspection", "2 missed occurrences")
	bobMail := files[email.FileName(runID+":email:technician-"+fmt.Sprint(f.techs["T-BOB"])+":wo_digest")]
	if fmt.Sprint(bobMail.to) != "[bob@fleet.test]" || !strings.Contains(bobMail.text, "PM-0004") {
		t.Errorf("Bob's email %+v", bobMail)
	}
	summary := files[email.FileName(runID+":email:admins:pm_summary")]
	if fmt.Sprint(summary.to) != "[ops@fleet.test chief@fleet.test]" ||
		summary.subject != "[cmmsflow] Preventive maintenance 2026-11-27: 7 work orders created, 1 failed" {
		t.Errorf("summary to %v subject %q", summary.to, summary.subject)
	}
	contains(t, "summary", summary.text, "Work orders created:            7", "Plans skipped (order open):     2",
		"Plans failed:                   1", "Missed occurrences folded in:   2",
		"bus          2", "truck        3", "van          2",
		"Ann Lee <ann@fleet.test>: 3 work orders", "Bob Kay <bob@fleet.test>: 1 work order", "Dee Noemail: 1 work order",
		"Needs assignment (2", "PM-0005 VAN-002 [LOW, due 2026-11-27] Wiper blades", "PM-0006 BUS-003 [HIGH, due 2026-11-27] Emergency exits (inactive: Cid Old)")
	contains(t, "summary HTML", summary.html, "Needs assignment (2)")

	// Webhooks: the summary once each, in each one's format.
	if s, g := slack.received(), generic.received(); len(s) != 1 || len(g) != 1 {
		t.Fatalf("webhook posts: slack %d, generic %d, want 1 each", len(s), len(g))
	}
	contains(t, "slack payload", string(slack.received()[0]), `"text":"[cmmsflow] Preventive maintenance 2026-11-27: 7 work orders created, 1 failed"`, `"blocks":`)
	var g map[string]any
	if err := json.Unmarshal(generic.received()[0], &g); err != nil || g["kind"] != "pm_summary" || g["run_id"] != runID ||
		g["data"].(map[string]any)["created"] != 7.0 {
		t.Errorf("generic payload %s", generic.received()[0])
	}
	hooks := f.rows("channel = 'webhook'")
	if len(hooks) != 2 || strings.Contains(hooks[0].Recipient+hooks[1].Recipient, "secret") {
		t.Errorf("webhook rows %+v", hooks)
	}

	// Every delivery row is sent, and the step reported its figures once.
	if n := f.count(`SELECT count(*) FROM notifications WHERE status <> 'sent'`); n != 0 {
		t.Errorf("%d notifications not sent: %+v", n, f.rows("status <> 'sent'"))
	}
	figs := f.succeeded()
	want := map[string]float64{"notifications_written": 3, "emails_sent": 3, "webhooks_sent": 2, "failures": 0}
	if len(figs) != 1 || fmt.Sprint(figs[0]) != fmt.Sprint(want) {
		t.Errorf("step figures %v, want one report of %v", figs, want)
	}

	// The same run's event published again under a new id (a regenerated
	// event) is handled, but every delivery already exists: nothing is sent.
	eventingtest.Deliver(t, f.router, generated(t).Message(), eventing.Handled)
	if f.mail.count() != 3 || len(f.outboxFiles()) != 3 || len(slack.received()) != 1 || len(generic.received()) != 1 {
		t.Fatalf("a second event for the run sent again: %d emails, %d slack", f.mail.count(), len(slack.received()))
	}
	if n := f.count(`SELECT count(*) FROM notifications`); n != 8 {
		t.Fatalf("%d notifications, want 8 (3 inbox, 3 email, 2 webhook)", n)
	}
}

// With a mapped source the CMMS keeps no run_id (the mapping gives NULL):
// the notifier finds the run's work orders through pmgen's
// plan_occurrences, and still only the run's.
func TestMappedSourceWorkOrdersFoundThroughOccurrences(t *testing.T) {
	f := newFixture(t, options{})
	f.exec(`INSERT INTO plan_occurrences (plan_id, due_date, wo_number, run_id)
		SELECT row_number() OVER (ORDER BY wo_number), due_date, wo_number, run_id FROM work_orders`)
	f.exec(`UPDATE work_orders SET run_id = NULL`)
	eventingtest.Deliver(t, f.router, generated(t).Message(), eventing.Handled)
	inbox := f.rows("channel = 'inbox'")
	if len(inbox) != 3 {
		t.Fatalf("%d inbox notifications, want 3 (Ann, Bob, Dee): %+v", len(inbox), inbox)
	}
	for _, r := range inbox {
		if r.TechnicianID != nil && *r.TechnicianID == f.techs["T-ANN"] {
			contains(t, "Ann's inbox", r.Body, "PM-0001", "PM-0002", "PM-0003")
			lacks(t, "Ann's inbox", r.Body, "PM-0099")
		}
	}
	if n := f.count(`SELECT count(*) FROM notifications WHERE body LIKE '%PM-0099%'`); n != 0 {
		t.Errorf("another run's work order notified %d times", n)
	}
}

// Concurrent deliveries of one event and of another event of the same run:
// each delivery is sent once. A delivery that finds the event leased, or the
// run's deliveries in another attempt's hands, is answered 503 "leased" and
// comes back, as Pub/Sub redelivers; each event is handled once, and each
// reports the run's final figures.
func TestConcurrentDeliveriesSendOnce(t *testing.T) {
	hook := newHook(t, 200)
	f := newFixture(t, options{webhooks: "teams={hook}/x", hooks: map[string]*hookServer{"hook": hook}})
	ev := generated(t)
	other := generated(t) // another event id for the same run
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string][]string{}
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := ev
			if i%2 == 1 {
				e = other
			}
			code, body, _ := f.pushUntilAcked(e, fmt.Sprint("c", i))
			if code != http.StatusOK {
				t.Errorf("delivery %d: %d %s", i, code, body)
			}
			mu.Lock()
			outcomes[e.ID()] = append(outcomes[e.ID()], body)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for id, got := range outcomes {
		slices.Sort(got)
		if want := `[{"outcome":"duplicate"} {"outcome":"duplicate"} {"outcome":"handled"}]`; fmt.Sprint(got) != want {
			t.Errorf("event %s: outcomes %v, want %s", id, got, want)
		}
	}
	if f.mail.count() != 3 || len(hook.received()) != 1 {
		t.Fatalf("%d emails and %d webhook posts from concurrent deliveries, want 3 and 1", f.mail.count(), len(hook.received()))
	}
	if n := f.count(`SELECT count(*) FROM notifications WHERE status = 'sent' AND attempts <= 1`); n != 7 {
		t.Fatalf("%d notifications sent in one attempt, want 7", n)
	}
	want := map[string]float64{"notifications_written": 3, "emails_sent": 3, "webhooks_sent": 1, "failures": 0}
	if figs := f.succeeded(); len(figs) != 2 || fmt.Sprint(figs[0]) != fmt.Sprint(want) || fmt.Sprint(figs[1]) != fmt.Sprint(want) {
		t.Errorf("step figures %v, want two reports of %v", figs, want)
	}
}

func TestFailingWebhookDoesNotBlockEmail(t *testing.T) {
	slack := newHook(t, http.StatusBadRequest)                        // permanent
	teams := newHook(t, http.StatusServiceUnavailable, http.StatusOK) // temporary, then fine
	f := newFixture(t, options{webhooks: "slack={slack}/bad,teams={teams}/flaky", hooks: map[string]*hookServer{"slack": slack, "teams": teams}})
	ev := generated(t)

	// First delivery: every email goes out; slack fails for good, teams
	// for now — the step is retried for teams alone.
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Retry)
	if f.mail.count() != 3 {
		t.Fatalf("%d emails sent, want 3 despite the failing webhooks", f.mail.count())
	}
	slackRow := f.rows("channel = 'webhook' AND recipient LIKE 'slack%'")[0]
	if slackRow.Status != notify.StatusFailed || !strings.Contains(slackRow.Error, "HTTP 400") || slackRow.Attempts != 1 {
		t.Errorf("slack row %+v", slackRow)
	}
	teamsRow := f.rows("channel = 'webhook' AND recipient LIKE 'teams%'")[0]
	if teamsRow.Status != notify.StatusFailed || !strings.Contains(teamsRow.Error, "HTTP 503") {
		t.Errorf("teams row %+v", teamsRow)
	}
	if n := eventingtest.Count(t, f.pool, events.StepFailed, ""); n != 1 {
		t.Errorf("%d step-failed (retrying) reports, want 1", n)
	}

	// Redelivery: teams goes out; slack is not retried; no email again.
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Duplicate)
	if f.mail.count() != 3 || len(slack.received()) != 1 || len(teams.received()) != 2 {
		t.Fatalf("after redelivery: %d emails, %d slack, %d teams posts; want 3, 1, 2",
			f.mail.count(), len(slack.received()), len(teams.received()))
	}
	if r := f.row(teamsRow.Key); r.Status != notify.StatusSent || r.Attempts != 2 || r.Error != "" {
		t.Errorf("teams row after retry %+v", r)
	}
	figs := f.succeeded()
	want := map[string]float64{"notifications_written": 3, "emails_sent": 3, "webhooks_sent": 1, "failures": 1}
	if len(figs) != 1 || fmt.Sprint(figs[0]) != fmt.Sprint(want) {
		t.Errorf("step figures %v, want %v", figs, want)
	}
}

func TestSendGridRateLimitRetriesOnlyWhatIsUnsent(t *testing.T) {
	f := newFixture(t, options{sendgrid: true})
	var mu sync.Mutex
	seen := map[string]int{}
	f.sg.Respond(func(r sendgridtest.Request) int {
		mu.Lock()
		defer mu.Unlock()
		seen[r.Key()]++
		if slices.Contains(r.To(), "bob@fleet.test") && seen[r.Key()] == 1 {
			return http.StatusTooManyRequests
		}
		return http.StatusAccepted
	})
	ev := generated(t)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Retry)
	bobKey := runID + ":email:technician-" + fmt.Sprint(f.techs["T-BOB"]) + ":wo_digest"
	if r := f.row(bobKey); r.Status != notify.StatusFailed || !strings.Contains(r.Error, "HTTP 429") || r.Attempts != 1 {
		t.Fatalf("Bob's row after 429 %+v", r)
	}
	if n := f.count(`SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'sent'`); n != 2 {
		t.Fatalf("%d emails sent in the first attempt, want 2", n)
	}

	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Duplicate)
	reqs := f.sg.Requests()
	if len(reqs) != 4 || len(f.sg.Malformed()) != 0 {
		t.Fatalf("%d requests to SendGrid (%v rejected), want 4: three emails and Bob's retry", len(reqs), f.sg.Malformed())
	}
	mu.Lock()
	for k, n := range seen {
		if want := map[bool]int{true: 2, false: 1}[k == bobKey]; n != want {
			t.Errorf("%s sent %d times, want %d", k, n, want)
		}
	}
	mu.Unlock()
	for _, r := range reqs {
		if r.From.Email != "cmmsflow@fleet.test" || r.Body("text/plain") == "" || r.Body("text/html") == "" || r.Authorization != "Bearer "+apiKey {
			t.Errorf("request %+v", r)
		}
		if r.Key() == runID+":email:admins:pm_summary" {
			if fmt.Sprint(r.To()) != "[ops@fleet.test chief@fleet.test]" || !strings.Contains(r.Body("text/plain"), "Work orders created:            7") {
				t.Errorf("summary request %+v", r)
			}
		}
	}
	if r := f.row(bobKey); r.Status != notify.StatusSent || r.Attempts != 2 {
		t.Fatalf("Bob's row after the retry %+v", r)
	}
	if figs := f.succeeded(); len(figs) != 1 || figs[0]["emails_sent"] != 3 || figs[0]["failures"] != 0 {
		t.Fatalf("figures %v", figs)
	}
}

func TestTemporaryFailuresStopAfterMaxAttempts(t *testing.T) {
	f := newFixture(t, options{sendgrid: true, maxAttempts: 2})
	f.sg.Respond(func(r sendgridtest.Request) int {
		if slices.Contains(r.To(), "bob@fleet.test") {
			return http.StatusBadGateway
		}
		return http.StatusAccepted
	})
	ev := generated(t)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Retry)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled) // second and last attempt: recorded as failed, step done
	bob := f.rows("channel = 'email' AND recipient LIKE '%bob@%'")[0]
	if bob.Status != notify.StatusFailed || !strings.HasPrefix(bob.Error, "gave up after 2 attempts: ") || bob.Attempts != 2 {
		t.Fatalf("Bob's row %+v", bob)
	}
	if n := len(f.sg.Requests()); n != 4 {
		t.Fatalf("%d SendGrid requests, want 4", n)
	}
	if figs := f.succeeded(); len(figs) != 1 || figs[0]["failures"] != 1 || figs[0]["emails_sent"] != 2 {
		t.Fatalf("figures %v", figs)
	}
}

func TestPermanentEmailFailureIsRecordedAndTheStepSucceeds(t *testing.T) {
	f := newFixture(t, options{sendgrid: true})
	f.exec(`UPDATE technicians SET email = 'not-an-address' WHERE code = 'T-BOB'`)
	f.sg.Respond(func(r sendgridtest.Request) int {
		if slices.Contains(r.To(), "ann@fleet.test") {
			return http.StatusForbidden
		}
		return http.StatusAccepted
	})
	eventingtest.Deliver(t, f.router, generated(t).Message(), eventing.Handled)
	failed := f.rows("status = 'failed'")
	if len(failed) != 2 {
		t.Fatalf("failed rows %+v, want Ann's (403) and Bob's (bad address)", failed)
	}
	for _, r := range failed {
		if r.Attempts != 1 || !(strings.Contains(r.Error, "HTTP 403") || strings.Contains(r.Error, "invalid message")) {
			t.Errorf("row %+v", r)
		}
	}
	if n := len(f.sg.Requests()); n != 2 {
		t.Fatalf("%d SendGrid requests, want 2 (Ann's refused, the summary)", n)
	}
}

func TestAbandonedClaimIsNotResent(t *testing.T) {
	f := newFixture(t, options{})
	annKey := runID + ":email:technician-" + fmt.Sprint(f.techs["T-ANN"]) + ":wo_digest"
	// An attempt claimed Ann's email an hour ago, then its process died:
	// whether the email went out is unknown.
	f.exec(`INSERT INTO notifications (dedupe_key, run_id, channel, technician_id, recipient, subject, body, status, attempts, claimed_at)
		VALUES ($1, $2, 'email', $3, 'ann@fleet.test', 's', 'b', 'sending', 1, now() - interval '1 hour')`, annKey, runID, f.techs["T-ANN"])
	eventingtest.Deliver(t, f.router, generated(t).Message(), eventing.Handled)
	if r := f.row(annKey); r.Status != notify.StatusFailed || r.Error != notify.ErrOutcomeUnknown {
		t.Fatalf("Ann's row %+v", r)
	}
	for _, m := range f.mail.sent {
		if m.Key == annKey {
			t.Fatal("Ann's email was sent again")
		}
	}
	if f.mail.count() != 2 {
		t.Fatalf("%d emails, want Bob's and the summary", f.mail.count())
	}
}

// A claim younger than its attempt's bound (twice the send timeout, the
// mark's 15 s and a 15 s margin: 40 s with a 5 s send timeout) belongs to a
// live attempt, maybe of another event of the run: it is neither resent nor
// swept; the rest is sent and the delivery is answered leased, so that it
// comes back. Once the claim is older than that, it is swept as unknown.
func TestLiveClaimIsLeftToItsAttempt(t *testing.T) {
	f := newFixture(t, options{sendTimeout: 5 * time.Second})
	annKey := runID + ":email:technician-" + fmt.Sprint(f.techs["T-ANN"]) + ":wo_digest"
	f.exec(`INSERT INTO notifications (dedupe_key, run_id, channel, technician_id, recipient, subject, body, status, attempts, claimed_at)
		VALUES ($1, $2, 'email', $3, 'ann@fleet.test', 's', 'b', 'sending', 1, now() - interval '30 seconds')`, annKey, runID, f.techs["T-ANN"])
	ev := generated(t)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Leased)
	if r := f.row(annKey); r.Status != notify.StatusSending || r.Attempts != 1 {
		t.Fatalf("Ann's row %+v, want still claimed", r)
	}
	if f.mail.count() != 2 || len(f.succeeded()) != 0 {
		t.Fatalf("%d emails, %d step reports: want Bob's and the summary, no report", f.mail.count(), len(f.succeeded()))
	}
	if n := eventingtest.Count(t, f.pool, events.StepFailed, ""); n != 0 {
		t.Errorf("%d step-failed reports for a leased delivery, want 0", n)
	}

	// The claim's attempt has not recorded its outcome 50 s after claiming.
	f.exec(`UPDATE notifications SET claimed_at = now() - interval '50 seconds' WHERE dedupe_key = $1`, annKey)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
	if r := f.row(annKey); r.Status != notify.StatusFailed || r.Error != notify.ErrOutcomeUnknown {
		t.Fatalf("Ann's row %+v, want swept as unknown", r)
	}
	if f.mail.count() != 2 {
		t.Fatalf("%d emails, want no more", f.mail.count())
	}
	want := map[string]float64{"notifications_written": 3, "emails_sent": 2, "webhooks_sent": 0, "failures": 1}
	if figs := f.succeeded(); len(figs) != 1 || fmt.Sprint(figs[0]) != fmt.Sprint(want) {
		t.Errorf("step figures %v, want %v", figs, want)
	}
}

func TestTimeoutHandsUnattemptedDeliveriesBack(t *testing.T) {
	f := newFixture(t, options{timeout: 500 * time.Millisecond})
	// The first email hangs until the handler's time is up.
	f.mail.block = func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}
	ev := generated(t)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Retry)
	if n := f.count(`SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'failed' AND retryable AND attempts = 1`); n != 1 {
		t.Fatalf("%d timed-out emails recorded as retryable, want 1: %+v", n, f.rows("channel = 'email'"))
	}
	if n := f.count(`SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'pending' AND attempts = 0`); n != 2 {
		t.Fatalf("%d unattempted emails handed back, want 2: %+v", n, f.rows("channel = 'email'"))
	}
	f.mail.mu.Lock()
	f.mail.block = nil
	f.mail.mu.Unlock()
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
	if f.mail.count() != 3 || f.count(`SELECT count(*) FROM notifications WHERE status = 'sent'`) != 6 {
		t.Fatalf("%d emails sent after the retry: %+v", f.mail.count(), f.rows("true"))
	}
}

func TestAlertOncePerFailedRun(t *testing.T) {
	slack := newHook(t, 200)
	f := newFixture(t, options{webhooks: "slack={slack}/alerts", hooks: map[string]*hookServer{"slack": slack}})

	// A failure that will be retried is not alerted.
	eventingtest.Deliver(t, f.router, stepFailed(t, runID, events.Pmgen, "database is starting up", true).Message(), eventing.Handled)
	if f.mail.count() != 0 || len(slack.received()) != 0 {
		t.Fatalf("alert sent for a retrying failure")
	}
	// A final failure is, once, to the admins.
	eventingtest.Deliver(t, f.router, stepFailed(t, runID, events.Pmgen, "plan 42: interval_unit \"fortnights\" unknown", false).Message(), eventing.Handled)
	files := f.outboxFiles()
	alert, ok := files[email.FileName("alert:"+runID)]
	if len(files) != 1 || !ok {
		t.Fatalf("outbox %v, want the alert", files)
	}
	if fmt.Sprint(alert.to) != "[ops@fleet.test chief@fleet.test]" ||
		alert.subject != "[cmmsflow] ALERT: preventive_maintenance run failed at step pmgen" {
		t.Errorf("alert to %v subject %q", alert.to, alert.subject)
	}
	contains(t, "alert", alert.text, runID+" failed at step pmgen", `plan 42: interval_unit "fortnights" unknown`)
	if len(slack.received()) != 1 || !strings.Contains(string(slack.received()[0]), "failed at step pmgen") {
		t.Errorf("slack alert %q", slack.received())
	}
	r := f.row("alert:" + runID)
	if r.Kind != email.KindAlert || r.Status != notify.StatusSent || r.Channel != notify.ChannelEmail {
		t.Errorf("alert row %+v", r)
	}

	// Another final failure report for the same run (another step, or the
	// report redelivered under a new id) alerts nobody again.
	eventingtest.Deliver(t, f.router, stepFailed(t, runID, events.Notifier, "something else", false).Message(), eventing.Handled)
	ev := stepFailed(t, runID, events.Pmgen, "again", false)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Duplicate)
	if f.mail.count() != 1 || len(slack.received()) != 1 {
		t.Fatalf("%d alert emails, %d slack posts for one run, want 1 each", f.mail.count(), len(slack.received()))
	}
	// Another run's failure is alerted.
	eventingtest.Deliver(t, f.router, stepFailed(t, "scheduled__2026-11-28T06:00:00+00:00", events.Pmgen, "boom", false).Message(), eventing.Handled)
	if f.mail.count() != 2 {
		t.Fatalf("%d alert emails for two failed runs, want 2", f.mail.count())
	}
	// An alert is not a step of its own: no step reports.
	if n := eventingtest.Count(t, f.pool, "", ""); n != 0 {
		t.Fatalf("%d events emitted while alerting, want 0", n)
	}
}

// TestReconcileAlertsAlertsWhatNoEventDid: a failed run whose step-failed
// event never arrived (dead-lettered while notifier was down) is alerted
// once, naming its failed step, after the grace; a run already alerted, a
// run still in its grace, an older one and a successful one are not; the
// late event afterwards sends nothing.
func TestReconcileAlertsAlertsWhatNoEventDid(t *testing.T) {
	slack := newHook(t, 200)
	f := newFixture(t, options{webhooks: "slack={slack}/alerts", hooks: map[string]*hookServer{"slack": slack}})
	f.exec(`INSERT INTO pipelines (id) VALUES ('preventive_maintenance') ON CONFLICT DO NOTHING`)
	f.exec(`INSERT INTO runs (run_id, pipeline, state, source, logical_date, ended_at, error) VALUES
		('lost',    'preventive_maintenance', 'failed',  'manual', now(), now() - interval '10 minutes', 'pmgen: failed'),
		('alerted', 'preventive_maintenance', 'failed',  'manual', now(), now() - interval '10 minutes', 'x'),
		('fresh',   'preventive_maintenance', 'failed',  'manual', now(), now() - interval '5 seconds', 'x'),
		('old',     'preventive_maintenance', 'failed',  'manual', now(), now() - interval '3 days', 'x'),
		('fine',    'preventive_maintenance', 'success', 'manual', now(), now() - interval '10 minutes', '')`)
	f.exec(`INSERT INTO runs (run_id, pipeline, state, source, logical_date, ended_at, error, state_set_by) VALUES
		('by-hand', 'preventive_maintenance', 'failed', 'manual', now(), now() - interval '10 minutes', 'marked failed by ops', 'ops')`)
	f.exec(`INSERT INTO steps (run_id, step, position, state, error) VALUES
		('lost', 'pmgen', 0, 'failed', 'plan 7: interval_unit "fortnights" unknown'),
		('lost', 'notifier', 1, 'pending', '')`)
	eventingtest.Deliver(t, f.router, stepFailed(t, "alerted", events.Pmgen, "boom", false).Message(), eventing.Handled)
	if f.mail.count() != 1 {
		t.Fatalf("%d emails before reconciling, want the one alert", f.mail.count())
	}

	n, err := f.n.ReconcileAlerts(t.Context(), time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("reconcile alerted %d runs (%v), want 1", n, err)
	}
	files := f.outboxFiles()
	alert, ok := files[email.FileName("alert:lost")]
	if !ok || f.mail.count() != 2 || len(slack.received()) != 2 {
		t.Fatalf("outbox %v, %d emails, %d slack posts", files, f.mail.count(), len(slack.received()))
	}
	contains(t, "alert", alert.text, "lost failed at step pmgen", `plan 7: interval_unit "fortnights" unknown`)

	// Again, and the late event: nothing more.
	if n, err := f.n.ReconcileAlerts(t.Context(), time.Minute); err != nil || n != 0 {
		t.Fatalf("second reconcile alerted %d runs (%v)", n, err)
	}
	eventingtest.Deliver(t, f.router, stepFailed(t, "lost", events.Pmgen, "late", false).Message(), eventing.Handled)
	if f.mail.count() != 2 || len(slack.received()) != 2 {
		t.Fatalf("%d emails, %d slack posts after the late event, want 2 each", f.mail.count(), len(slack.received()))
	}
	// With no grace, the fresh run is alerted too; never the old, the fine
	// or the one failed by hand.
	if n, err := f.n.ReconcileAlerts(t.Context(), 0); err != nil || n != 1 {
		t.Fatalf("reconcile without grace alerted %d runs (%v), want 1 (fresh)", n, err)
	}
	for _, run := range []string{"old", "fine", "by-hand"} {
		if c := f.count(`SELECT count(*) FROM notifications WHERE run_id = $1`, run); c != 0 {
			t.Errorf("run %s has %d notifications", run, c)
		}
	}
}

func TestAlertRetriesWhenEmailIsDown(t *testing.T) {
	f := newFixture(t, options{sendgrid: true})
	calls := 0
	var mu sync.Mutex
	f.sg.Respond(func(sendgridtest.Request) int {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusAccepted
	})
	ev := stepFailed(t, runID, events.Pmgen, "boom", false)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Retry)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Duplicate)
	reqs := f.sg.Requests()
	if len(reqs) != 2 || reqs[1].Key() != "alert:"+runID || !strings.Contains(reqs[1].Subject, "failed at step pmgen") {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestUndecodablePayloadIsDeadLettered(t *testing.T) {
	f := newFixture(t, options{})
	ev := generated(t)
	m := ev.Message()
	m.Data = []byte(`{"created":"many"}`)
	eventingtest.Deliver(t, f.router, m, eventing.DeadLettered)
	if f.mail.count() != 0 || f.count(`SELECT count(*) FROM notifications`) != 0 {
		t.Fatal("an undecodable event sent something")
	}
}

// A missed cron tick is alerted to the admins and the webhooks once per
// tick, whatever the number of reports, saying whether it was caught up.
func TestScheduleMissedAlertsOncePerTick(t *testing.T) {
	slack := newHook(t, 200)
	f := newFixture(t, options{webhooks: "slack={slack}/alerts", hooks: map[string]*hookServer{"slack": slack}})
	tick := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	missed := func(tick time.Time, caughtUp bool) eventing.Event {
		return eventingtest.Event(t, events.ScheduleMissed, "scheduled__"+tick.Format("2006-01-02T15:04:05-07:00"), events.PreventiveMaintenance,
			&eventsv1.ScheduleMissed{Tick: timestamppb.New(tick), CaughtUp: caughtUp})
	}
	ev := missed(tick, true)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Duplicate)
	eventingtest.Deliver(t, f.router, missed(tick, true).Message(), eventing.Handled) // reported again under a new id
	files := f.outboxFiles()
	key := "missed:preventive_maintenance:2026-11-28T06:00:00Z"
	mail, ok := files[email.FileName(key)]
	if len(files) != 1 || !ok || f.mail.count() != 1 || len(slack.received()) != 1 {
		t.Fatalf("outbox %v, %d emails, %d slack posts: want one alert", files, f.mail.count(), len(slack.received()))
	}
	if mail.subject != "[cmmsflow] ALERT: preventive_maintenance missed its scheduled run of 2026-11-28 06:00 UTC" {
		t.Errorf("subject %q", mail.subject)
	}
	contains(t, "missed tick", mail.text, "Caught up: control created the run scheduled__2026-11-28T06:00:00+00:00")
	if r := f.row(key); r.Kind != email.KindMissedTick || r.Status != notify.StatusSent {
		t.Errorf("row %+v", r)
	}
	// Another tick is alerted too; without catchup the email says how to
	// backfill it.
	eventingtest.Deliver(t, f.router, missed(tick.AddDate(0, 0, 1), false).Message(), eventing.Handled)
	next := f.outboxFiles()[email.FileName("missed:preventive_maintenance:2026-11-29T06:00:00Z")]
	contains(t, "not caught up", next.text, "Not caught up", "cmmsflow backfill preventive_maintenance --from 2026-11-29 --to 2026-11-29")
	if f.mail.count() != 2 || len(slack.received()) != 2 {
		t.Fatalf("%d emails, %d slack posts for two ticks", f.mail.count(), len(slack.received()))
	}
}

// A retried run (control's RetryRun) re-emits the notifier step's input
// under a new id: notifier performs the step again, and of the run's
// deliveries only the failed one goes out again — the keys are per run.
func TestRetriedRunSendsOnlyWhatFailed(t *testing.T) {
	f := newFixture(t, options{sendgrid: true})
	bobDown := true
	var mu sync.Mutex
	f.sg.Respond(func(r sendgridtest.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if slices.Contains(r.To(), "bob@fleet.test") && bobDown {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	ev := generated(t)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Retry) // Bob's email failed; the step would be retried
	inbox := f.count(`SELECT count(*) FROM notifications WHERE channel = 'inbox'`)
	mu.Lock()
	bobDown = false
	mu.Unlock()

	again, err := ev.Reissue("")
	if err != nil {
		t.Fatal(err)
	}
	eventingtest.Deliver(t, f.router, again.Message(), eventing.Handled)
	sent := map[string]int{}
	for _, r := range f.sg.Requests() {
		sent[r.Key()]++
	}
	bobKey := runID + ":email:technician-" + fmt.Sprint(f.techs["T-BOB"]) + ":wo_digest"
	for k, n := range sent {
		if want := map[bool]int{true: 2, false: 1}[k == bobKey]; n != want {
			t.Errorf("%s: %d requests, want %d", k, n, want)
		}
	}
	if len(sent) != 3 || f.row(bobKey).Status != notify.StatusSent {
		t.Errorf("sent %v; Bob's row %+v", sent, f.row(bobKey))
	}
	if n := f.count(`SELECT count(*) FROM notifications WHERE channel = 'inbox'`); n != inbox {
		t.Errorf("%d inbox notifications after the retry, want %d", n, inbox)
	}
}

// A delivery given up after the attempt limit (the step then succeeds with
// the failure counted) is tried again by a retry of the run, from a fresh
// attempt count; the deliveries that went out are not sent again, and a
// redelivery of the event that gave it up does not revive it.
func TestRetriedRunRetriesWhatWasGivenUp(t *testing.T) {
	f := newFixture(t, options{sendgrid: true, maxAttempts: 2})
	var mu sync.Mutex
	bobDown := true
	f.sg.Respond(func(r sendgridtest.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if slices.Contains(r.To(), "bob@fleet.test") && bobDown {
			return http.StatusBadGateway
		}
		return http.StatusAccepted
	})
	ev := generated(t)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Retry)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled) // Bob given up after 2 attempts; the step succeeded
	bobKey := runID + ":email:technician-" + fmt.Sprint(f.techs["T-BOB"]) + ":wo_digest"
	if r := f.row(bobKey); r.Status != notify.StatusFailed || !strings.HasPrefix(r.Error, "gave up after 2 attempts") {
		t.Fatalf("Bob's row %+v", r)
	}
	mu.Lock()
	bobDown = false
	mu.Unlock()

	again, err := ev.Reissue("")
	if err != nil {
		t.Fatal(err)
	}
	eventingtest.Deliver(t, f.router, again.Message(), eventing.Handled)
	if r := f.row(bobKey); r.Status != notify.StatusSent || r.Attempts != 1 || r.Error != "" {
		t.Fatalf("Bob's row after the retry %+v", r)
	}
	sent := map[string]int{}
	for _, r := range f.sg.Requests() {
		sent[r.Key()]++
	}
	for k, n := range sent {
		if want := map[bool]int{true: 3, false: 1}[k == bobKey]; n != want {
			t.Errorf("%s: %d requests, want %d", k, n, want)
		}
	}
	figs := f.succeeded()
	if len(figs) != 2 || figs[1]["emails_sent"] != 3 || figs[1]["failures"] != 0 {
		t.Errorf("figures %v: the retry's step reports every email sent", figs)
	}
}

// Each failure of a run is alerted once: a run that control's RetryRun
// re-ran (runs.retries) and that failed again is alerted again, by its
// step-failed event or, when that never came, by the reconciler.
func TestRetriedRunFailingAgainIsAlertedAgain(t *testing.T) {
	f := newFixture(t, options{})
	f.exec(`INSERT INTO pipelines (id) VALUES ('preventive_maintenance') ON CONFLICT DO NOTHING`)
	f.exec(`INSERT INTO runs (run_id, pipeline, state, source, logical_date, started_at, ended_at, error) VALUES
		($1, 'preventive_maintenance', 'failed', 'manual', now(), now() - interval '1 hour', now() - interval '50 minutes', 'pmgen: boom'),
		('lost', 'preventive_maintenance', 'failed', 'manual', now(), now() - interval '1 hour', now() - interval '50 minutes', 'pmgen: boom')`, runID)
	eventingtest.Deliver(t, f.router, stepFailed(t, runID, events.Pmgen, "boom", false).Message(), eventing.Handled)
	eventingtest.Deliver(t, f.router, stepFailed(t, "lost", events.Pmgen, "boom", false).Message(), eventing.Handled)
	// The first alerts went out when the runs failed; both were retried (as
	// RetryRun leaves them) and failed again.
	f.exec(`UPDATE notifications SET created_at = now() - interval '50 minutes'`)
	f.exec(`UPDATE runs SET retries = 1, started_at = now() - interval '10 minutes', ended_at = now() - interval '5 minutes'`)
	eventingtest.Deliver(t, f.router, stepFailed(t, runID, events.Pmgen, "boom again", false).Message(), eventing.Handled)
	if f.mail.count() != 3 || f.row("alert:"+runID+":retry-1").Status != notify.StatusSent {
		t.Fatalf("%d alert emails, want the first failures' and the retry's", f.mail.count())
	}
	if n, err := f.n.ReconcileAlerts(t.Context(), time.Minute); err != nil || n != 1 {
		t.Fatalf("reconcile alerted %d runs (%v), want the lost retry's failure", n, err)
	}
	if r := f.row("alert:lost:retry-1"); r.Status != notify.StatusSent || f.mail.count() != 4 {
		t.Fatalf("%d emails; the reconciled alert %+v", f.mail.count(), r)
	}
	eventingtest.Deliver(t, f.router, stepFailed(t, runID, events.Pmgen, "late report of the same failure", false).Message(), eventing.Handled)
	if n, err := f.n.ReconcileAlerts(t.Context(), time.Minute); err != nil || n != 0 || f.mail.count() != 4 {
		t.Fatalf("again: reconciled %d (%v), %d emails; want nothing more", n, err, f.mail.count())
	}
}

// The notifier's routes are the registry's: the last step of every
// pipeline, and the alerts on step-failed, schedule-missed and
// drift-detected.
func TestRoutesMatchTheRegistry(t *testing.T) {
	eventingtest.CheckRoutes(t, newFixture(t, options{}).router, events.Notifier)
}
