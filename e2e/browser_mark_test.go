package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// failedKPIRun adds a weekly_kpi_report run that failed at its notifier,
// finished, so it takes no slot from the other tests' runs.
func failedKPIRun(t *testing.T) string {
	t.Helper()
	runID := fmt.Sprintf("e2e_mark_%d", time.Now().UnixNano())
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO runs (run_id, pipeline, state, source, logical_date, started_at, ended_at, error)
			VALUES ($1, 'weekly_kpi_report', 'failed', 'manual', now(), now() - interval '2 minutes', now() - interval '1 minute', 'notifier: smtp refused')`,
		`INSERT INTO steps (run_id, step, position, state, attempts) VALUES ($1, 'reporter', 0, 'success', 1)`,
		`INSERT INTO steps (run_id, step, position, state, attempts, error) VALUES ($1, 'notifier', 1, 'failed', 1, 'smtp refused')`,
	} {
		if _, err := pool.Exec(ctx, q, runID); err != nil {
			t.Fatal(err)
		}
	}
	return runID
}

// The run page's Mark success / Mark failed (admin only): a failed run
// marked success shows who set it, its failed step success too; marked
// failed again it shows the reason. A viewer is offered neither.
func TestAdminPageMarkState(t *testing.T) {
	runID := failedKPIRun(t)
	runPage := sys.Services[events.Control].URL + "/admin#run/" + runID
	p := openPage(t, "mark", sys.AdminToken, 2*time.Minute)
	p.do("open the failed run", chromedp.Navigate(runPage), chromedp.WaitVisible(chromedp.CSS(`#run-detail[data-run="`+runID+`"] #mark`)))
	if got := p.eval(`String(!!document.querySelector('#mark-failed')) + ' ' + String(!!document.querySelector('#mark-success'))`); got != "false true" {
		t.Fatalf("a failed run offers mark failed, mark success: %s; want only success", got)
	}
	p.do("mark success", chromedp.Click(chromedp.CSS("#mark-success")))
	p.poll("the run marked success", `(function () {
		var d = document.querySelector('#run-detail');
		var node = d.querySelector('#run-graph g.node[data-step="notifier"]');
		var by = document.querySelector('#state-set-by');
		return d.dataset.state === 'success' && node && node.dataset.state === 'success' &&
			by && by.textContent === ' · state set by local-admin' && !!document.querySelector('#mark-failed');
	})()`, 10*time.Second)
	p.shot("marked-success")
	p.do("mark failed", chromedp.Click(chromedp.CSS("#mark-failed")))
	p.poll("the run marked failed", `(function () {
		var d = document.querySelector('#run-detail'), e = d.querySelector('p.error');
		return d.dataset.state === 'failed' && e && e.textContent === 'marked failed by local-admin';
	})()`, 10*time.Second)
	p.shot("marked-failed")
	var state, setBy string
	if err := pool.QueryRow(context.Background(), `SELECT state, state_set_by FROM runs WHERE run_id = $1`, runID).Scan(&state, &setBy); err != nil ||
		state != "failed" || setBy != "local-admin" {
		t.Fatalf("run %s in the database: %s set by %q (%v)", runID, state, setBy, err)
	}
	p.noConsoleErrors()

	v := openPage(t, "mark-viewer", sys.ViewerToken, time.Minute)
	v.do("open the run as a viewer", chromedp.Navigate(runPage), chromedp.WaitVisible(chromedp.CSS(`#run-detail[data-run="`+runID+`"] #run-graph`)))
	if got := v.eval(`String(!!document.querySelector('#mark'))`); got != "false" {
		t.Errorf("a viewer is offered Mark success / Mark failed")
	}
}
