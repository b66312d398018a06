package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// The weekly KPI report pipeline on the demo fleet: the run succeeds, the
// report's PDF, HTML, CSV and charts are in the bucket under
// reports/<iso-week>/, and the email with the PDF attached is in the outbox.
func TestWeeklyKPIReportPipeline(t *testing.T) {
	runID := trigger(t, events.WeeklyKPIReport)
	state, steps := waitRun(t, runID, 90*time.Second)
	if state != "success" || steps[events.Reporter].State != "success" || steps[events.Notifier].State != "success" {
		t.Fatalf("run %s: %s %+v", runID, state, steps)
	}
	// The reported week: the ISO week before the logical date's (UTC).
	var logical time.Time
	if err := pool.QueryRow(context.Background(), `SELECT logical_date FROM runs WHERE run_id = $1`, runID).Scan(&logical); err != nil {
		t.Fatal(err)
	}
	y, w := logical.UTC().AddDate(0, 0, -7).ISOWeek()
	week := fmt.Sprintf("%04d-W%02d", y, w)

	store := bucket(t)
	objs, err := store.List(context.Background(), "reports/"+week+"/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, strings.TrimPrefix(o.Name, "reports/"+week+"/"))
		if o.Size == 0 {
			t.Errorf("%s is empty", o.Name)
		}
	}
	if want := []string{"kpis.csv", "mtbf_by_type.png", "report.html", "report.pdf", "trend_12w.png", "wo_status.png"}; !slices.Equal(names, want) {
		t.Fatalf("reports/%s/ holds %v, want %v", week, names, want)
	}
	pdf, err := store.Get(context.Background(), "reports/"+week+"/report.pdf")
	if err != nil || !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Fatalf("report.pdf: %v", err)
	}
	if n := count(t, `SELECT count(*) FROM reports WHERE iso_week = $1`, week); n != 1 {
		t.Fatalf("%d reports rows for %s", n, week)
	}

	// The email: this run's report, with the PDF attached.
	var found bool
	for _, f := range outboxFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.Contains(s, "Subject: [cmmsflow] Weekly maintenance KPI report "+week) || !strings.Contains(s, runID) {
			continue
		}
		if !strings.Contains(s, "Content-Type: application/pdf") || !strings.Contains(s, "Content-Disposition: attachment") {
			t.Fatalf("report email %s has no PDF attachment", f)
		}
		found = true
	}
	if !found {
		t.Fatalf("no report email for run %s in the outbox", runID)
	}
}
