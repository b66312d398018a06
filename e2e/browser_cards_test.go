package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// The pipeline cards: a trigger with parameters (a bad value refused in the
// page, then by the server with its reason, a good one reaching the run),
// the counts of runs, the old DAG id, a missed tick, and the backfill form.
func TestAdminPageCardControls(t *testing.T) {
	p := openPage(t, "cards", sys.AdminToken, 2*time.Minute)
	const pm = `.card[data-pipeline="preventive_maintenance"]`
	const kpi = `.card[data-pipeline="weekly_kpi_report"]`
	if got := p.eval(`document.querySelector('` + pm + ` .aliases').textContent`); got != "also answers to preventive_maintenance_generator" {
		t.Fatalf("aliases line %q", got)
	}
	if got := p.eval(`document.querySelector('` + pm + ` dd.now').textContent`); !strings.HasSuffix(got, "queued · at most 1 at once") {
		t.Fatalf("runs now %q", got)
	}

	// A value the page can tell is wrong is not sent.
	p.do("open the parameters", chromedp.Click(chromedp.CSS(pm+" details.params summary")))
	p.do("type a bad date", chromedp.SendKeys(chromedp.CSS(pm+` input[name="as_of"]`), "2026-02-30"),
		chromedp.Click(chromedp.CSS(pm+" button.trigger")), chromedp.WaitVisible(chromedp.CSS(pm+" .trigger-status.error")))
	if got := p.eval(`document.querySelector('` + pm + ` .field-error').textContent`); got != " as_of: not a calendar day" {
		t.Fatalf("field error %q", got)
	}
	p.shot("param-refused-in-page")
	// One only the server can tell (2025 has 52 ISO weeks) comes back with
	// its reason.
	p.do("open KPI's parameters", chromedp.Click(chromedp.CSS(kpi+" details.params summary")))
	p.do("a week 2025 lacks", chromedp.SendKeys(chromedp.CSS(kpi+` input[name="week"]`), "2025-W53"),
		chromedp.Click(chromedp.CSS(kpi+" button.trigger")))
	p.poll("the server's reason", `(document.querySelector('`+kpi+` .trigger-status.error') || {}).textContent === 'Trigger failed: conf: key "week": "2025-W53": 2025 has weeks W01 to W52'`, 10*time.Second)
	p.shot("param-refused-by-server")
	// A good value reaches the run.
	p.eval(`document.querySelector('` + kpi + ` input[name="week"]').value = ''`)
	p.do("a good week", chromedp.SendKeys(chromedp.CSS(kpi+` input[name="week"]`), "2026-W40"),
		chromedp.Click(chromedp.CSS(kpi+" button.trigger")),
		chromedp.WaitVisible(chromedp.CSS(kpi+" .trigger-status.success a.run-link")))
	runID := p.eval(`document.querySelector('` + kpi + ` .trigger-status a.run-link').textContent`)
	var week string
	if err := pool.QueryRow(context.Background(), `SELECT conf->>'week' FROM runs WHERE run_id = $1`, runID).Scan(&week); err != nil || week != "2026-W40" {
		t.Fatalf("run %s conf week %q, %v", runID, week, err)
	}
	if state, steps := waitRun(t, runID, time.Minute); state != "success" {
		t.Fatalf("run %s: %s %+v", runID, state, steps)
	}

	// A missed tick shows on its card once control records it.
	tick := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Add(2 * time.Hour)
	if _, err := pool.Exec(context.Background(), `INSERT INTO missed_ticks (pipeline, tick, caught_up) VALUES ($1, $2, false)`, events.ETLMLTraining, tick); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), `DELETE FROM missed_ticks WHERE pipeline = $1`, events.ETLMLTraining)
	})
	p.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`.card[data-pipeline="etl_ml_training"] li.missed-tick`)))
	if got := p.eval(`document.querySelector('.card[data-pipeline="etl_ml_training"] li.missed-tick').textContent`); !strings.Contains(got, "not caught up") {
		t.Fatalf("missed tick %q", got)
	}

	// Backfill: a preview creates nothing, then two weeks of KPI runs.
	monday := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -7*20)
	for monday.Weekday() != time.Monday {
		monday = monday.AddDate(0, 0, -1)
	}
	from, to := monday.Format(time.DateOnly), monday.AddDate(0, 0, 7).Format(time.DateOnly)
	if got := p.eval(`String(document.querySelector('` + kpi + ` .backfill').offsetParent === null)`); got != "true" {
		t.Fatal("the backfill form shows before it is opened")
	}
	p.do("open the backfill form", chromedp.Click(chromedp.CSS(kpi+" button.backfill-open")),
		chromedp.WaitVisible(chromedp.CSS(kpi+" .backfill-from")))
	// Date inputs take their value as YYYY-MM-DD through the DOM.
	p.eval(`document.querySelector('` + kpi + ` .backfill-from').value = '` + from + `', document.querySelector('` + kpi + ` .backfill-to').value = '` + to + `', ''`)
	p.do("preview", chromedp.Click(chromedp.CSS(kpi+" button.backfill-preview")))
	p.poll("the preview", `(document.querySelector('`+kpi+` .backfill-status') || {}).textContent === '2 ticks; 0 have their run, 2 would be created.'`, 10*time.Second)
	if n := count(t, `SELECT count(*) FROM runs WHERE source = 'backfill' AND logical_date >= $1 AND logical_date < $2`, monday, monday.AddDate(0, 0, 8)); n != 0 {
		t.Fatalf("a preview created %d runs", n)
	}
	p.do("create", chromedp.Click(chromedp.CSS(kpi+" button.backfill-create")))
	p.poll("the created runs", `(document.querySelector('`+kpi+` .backfill-status') || {}).textContent === '2 runs queued, 0 ticks had their run.'`, 10*time.Second)
	p.shot("backfill")
	if n := count(t, `SELECT count(*) FROM runs WHERE source = 'backfill' AND logical_date >= $1 AND logical_date < $2`, monday, monday.AddDate(0, 0, 8)); n != 2 {
		t.Fatalf("backfill created %d runs, want 2", n)
	}
	// A viewer is not offered the backfill.
	v := openPage(t, "cards-viewer", sys.ViewerToken, time.Minute)
	if got := v.eval(`String(document.querySelector('` + kpi + ` button.backfill-open').hidden)`); got != "true" {
		t.Fatal("a viewer is offered Backfill…")
	}
	v.noConsoleErrors()
	p.noConsoleErrors("status of 400 (Bad Request) (" + sys.Services[events.Control].URL + "/v1/pipelines/weekly_kpi_report:trigger")
}
