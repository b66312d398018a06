package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// chromiumPath is Debian's Chromium (deploy/local/deps.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// artifactsDir is where the browser test saves its screenshots: $E2E_ARTIFACTS,
// or a new temporary directory (printed in the test log, kept after the test).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("E2E_ARTIFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "cmmsflow-e2e-artifacts-"); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join(dir, "browser")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// console collects what the page writes to the console. Every error (a
// console.error, an uncaught exception, a browser log error such as a failed
// load) fails the test, but for the failed load the page causes on purpose
// (a 401 for a bad token, a 400 for a refused re-run).
type console struct {
	mu    sync.Mutex
	errs  []string
	allow string // an HTTP status whose failed loads are expected, or ""
}

func (c *console) watch(ctx context.Context) {
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleType("error") && m.Type != chromedp.ConsoleType("assert") && !m.IsException() {
				continue
			}
			c.mu.Lock()
			if !(c.allow != "" && m.Source == "network" && strings.Contains(m.Text, c.allow)) {
				c.errs = append(c.errs, fmt.Sprintf("%s %s (%s:%d)", m.Type, m.String(), m.URL, m.Line))
			}
			c.mu.Unlock()
		}
	}()
}

func (c *console) setAllow(status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.allow = status
}

func (c *console) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// TestAdminPageInBrowser drives the admin page in headless Chromium as an
// operator would: a bad token is refused, a good one logs in, the
// weekly_kpi_report card's Trigger button shows its loading state and then
// the queued run's link, and the run's page shows both steps reaching
// success. The other views (inbox, reports, outbox, models) must render too.
// A run failed at the deployer is re-run from the run page's "Re-run from…"
// (a refused step shows the API's reason), which a viewer is not offered.
// Nothing may write an error to the console.
func TestAdminPageInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s: %v (run deploy/local/deps.sh: Debian package chromium)", chromiumPath, err)
	}
	shots := artifactsDir(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithLogf(t.Logf))
	defer cancelTab()

	cons := &console{}
	cons.watch(ctx)
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v (console: %v)", what, err, cons.errors())
		}
	}
	n := 0
	shot := func(name string) {
		t.Helper()
		n++
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, fmt.Sprintf("%02d-%s.png", n, name))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	poll := func(what, expr string, timeout time.Duration) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("%s: %v (console: %v)", what, err, cons.errors())
		}
	}

	do("open the page", chromedp.Navigate(sys.Services[events.Control].URL+"/admin"), chromedp.WaitVisible(chromedp.CSS("#token")))
	if got := eval(`document.querySelector('#pipelines').children.length + ':' + document.querySelector('#nav').hidden`); got != "0:true" {
		t.Fatalf("before login the page shows data or navigation: %s", got)
	}
	shot("login")

	// A bad token is refused with a clear message.
	cons.setAllow("401")
	do("log in with a bad token",
		chromedp.SendKeys(chromedp.CSS("#token"), "cmf_not-a-real-token"),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if msg := eval(`document.querySelector('#login-error').textContent`); !strings.Contains(msg, "not accepted") {
		t.Fatalf("bad token message: %q", msg)
	}
	shot("bad-token")
	cons.setAllow("")

	eval(`document.querySelector('#token').value = ''`)
	do("log in",
		chromedp.SendKeys(chromedp.CSS("#token"), sys.AdminToken),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`.card[data-pipeline="weekly_kpi_report"] button.trigger`)))
	if eval(`String(document.querySelector('#login-error').hidden) + ':' + String(document.querySelector('#login-view').hidden)`) != "true:true" {
		t.Fatal("the login form is still shown after a good token")
	}
	shot("pipelines")

	// The pause toggle pauses and unpauses a pipeline through the API.
	const pm = `.card[data-pipeline="preventive_maintenance"]`
	do("pause", chromedp.Click(chromedp.CSS(pm+" input.pause-toggle")),
		chromedp.WaitVisible(chromedp.CSS(pm+`[data-paused="true"] .trigger-status.success-msg`)))
	var paused bool
	if err := pool.QueryRow(ctx, `SELECT paused FROM pipelines WHERE id = 'preventive_maintenance'`).Scan(&paused); err != nil || !paused {
		t.Fatalf("paused in the database: %v %v", paused, err)
	}
	do("unpause", chromedp.Click(chromedp.CSS(pm+" input.pause-toggle")),
		chromedp.WaitVisible(chromedp.CSS(pm+`[data-paused="false"] .trigger-status.success-msg`)))
	if err := pool.QueryRow(ctx, `SELECT paused FROM pipelines WHERE id = 'preventive_maintenance'`).Scan(&paused); err != nil || paused {
		t.Fatalf("unpaused in the database: %v %v", paused, err)
	}

	// Record every state the card's status goes through, then trigger.
	const card = `.card[data-pipeline="weekly_kpi_report"]`
	eval(`(function () {
		var s = document.querySelector('` + card + ` .trigger-status');
		window.__states = [];
		new MutationObserver(function () { window.__states.push(s.className); }).observe(s, {attributes: true, childList: true});
		return 'ok';
	})()`)
	do("click Trigger", chromedp.Click(chromedp.CSS(card+" button.trigger")))
	do("loading state", chromedp.WaitVisible(chromedp.CSS(card+" .trigger-status.loading")))
	if got := eval(`document.querySelector('` + card + ` button.trigger').disabled + ':' + document.querySelector('` + card + ` .trigger-status').textContent`); !strings.HasPrefix(got, "true:Queuing a run") {
		t.Errorf("loading state: %q", got)
	}
	shot("trigger-loading")
	do("success message", chromedp.WaitVisible(chromedp.CSS(card+" .trigger-status.success a.run-link")))
	runID := eval(`document.querySelector('` + card + ` .trigger-status a.run-link').textContent`)
	if !strings.HasPrefix(runID, "manual__") {
		t.Fatalf("success message links run %q", runID)
	}
	states := eval(`window.__states.join('|')`)
	if i, j := strings.Index(states, "loading"), strings.Index(states, "success"); i < 0 || j < i {
		t.Errorf("status went through %q: want loading, then success", states)
	}
	t.Logf("triggered %s", runID)
	shot("trigger-success")

	// The run's page: both steps reach success, in the graph and the list.
	do("open the run", chromedp.Click(chromedp.CSS(card+" .trigger-status a.run-link")),
		chromedp.WaitVisible(chromedp.CSS("#run-detail #run-graph")))
	if got := eval(`document.querySelector('#run-detail').dataset.run`); got != runID {
		t.Fatalf("run page shows %q, want %q", got, runID)
	}
	poll("steps reach success", `(function () {
		var d = document.querySelector('#run-detail');
		var steps = Array.from(d.querySelectorAll('section.step'));
		var nodes = Array.from(d.querySelectorAll('#run-graph g.node'));
		return d.dataset.state === 'success' && steps.length === 2 && nodes.length === 2 &&
			steps.concat(nodes).every(function (e) { return e.dataset.state === 'success'; });
	})()`, 60*time.Second)
	if got := eval(`Array.from(document.querySelectorAll('#run-detail section.step')).map(function (s) { return s.dataset.step; }).join(',')`); got != "reporter,notifier" {
		t.Errorf("steps %q", got)
	}
	poll("run logs", `document.querySelectorAll('#run-logs .log div').length >= 4`, 10*time.Second)
	// Each step's own lines, every level, then filtered by level.
	hasReportLine := `Array.from(document.querySelectorAll('#step-log-reporter div.info')).some(function (d) {
		return d.textContent.indexOf('KPI report stored') >= 0 && d.textContent.indexOf('week=') >= 0; })`
	poll("reporter's own lines", hasReportLine, 10*time.Second)
	poll("notifier's own lines", `Array.from(document.querySelectorAll('#step-log-notifier div.info')).some(function (d) {
		return d.textContent.indexOf('notification sent') >= 0; })`, 10*time.Second)
	shot("run-success")
	eval(`(function () { var s = document.querySelector('#log-level'); s.value = 'error'; s.dispatchEvent(new Event('change')); return ''; })()`)
	poll("level filter", `document.querySelector('#log-level').value === 'error' && !(`+hasReportLine+`)`, 10*time.Second)
	eval(`(function () { var s = document.querySelector('#log-level'); s.value = ''; s.dispatchEvent(new Event('change')); return ''; })()`)
	poll("every level again", hasReportLine, 10*time.Second)

	// The run history lists it; the other views render.
	do("run history", chromedp.Navigate(sys.Services[events.Control].URL+"/admin#pipelines"),
		chromedp.WaitVisible(chromedp.CSS("#runs tbody tr[data-run]")))
	poll("run in history", `!!document.querySelector('#runs tbody tr[data-run="`+runID+`"][data-state="success"]')`, 10*time.Second)
	for _, v := range []struct{ view, ready string }{
		{"inbox", "#inbox tbody tr"},
		{"reports", "#reports tbody tr a"},
		{"outbox", "#outbox tbody tr"},
		{"models", "#models tbody tr"},
	} {
		do("view "+v.view, chromedp.Click(chromedp.CSS(`#nav a[data-view="`+v.view+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(v.ready)))
		shot(v.view)
	}
	// The archive's PDF link opens the stored report (the local GCS emulator).
	pdf := eval(`(function () {
		var a = Array.from(document.querySelectorAll('#reports tbody a')).filter(function (a) { return a.textContent === 'PDF'; })[0];
		return a ? a.href : '';
	})()`)
	if pdf == "" {
		t.Errorf("report archive without a PDF link")
	} else if resp, err := http.Get(pdf); err != nil {
		t.Errorf("GET %s: %v", pdf, err)
	} else {
		head := make([]byte, 4)
		_, _ = io.ReadFull(resp.Body, head)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(head) != "%PDF" {
			t.Errorf("GET %s: %d %q", pdf, resp.StatusCode, head)
		}
	}

	// Re-run from…: a run failed at the deployer (an injected fault) offers
	// its failed step; a later step is refused with the API's reason; the
	// failed step runs again and the run succeeds.
	failed := failAtDeployer(t)
	runPage := sys.Services[events.Control].URL + "/admin#run/" + failed
	do("open the failed run", chromedp.Navigate(runPage), chromedp.WaitVisible(chromedp.CSS(`#run-detail[data-run="`+failed+`"] #retry-step`)))
	if got := eval(`document.querySelector('#retry-step').value`); got != events.Deployer {
		t.Fatalf("Re-run from… offers %q, want the failed step", got)
	}
	shot("rerun-failed-run")
	cons.setAllow("400")
	eval(`document.querySelector('#retry-step').value = 'notifier'`)
	do("re-run from notifier", chromedp.Click(chromedp.CSS("#retry-run")), chromedp.WaitVisible(chromedp.CSS("#run-error")))
	if msg := eval(`document.querySelector('#run-error').textContent`); !strings.HasPrefix(msg, "Re-run refused: ") || !strings.Contains(msg, "retry from deployer") {
		t.Fatalf("refused re-run's message: %q", msg)
	}
	shot("rerun-refused")
	cons.setAllow("")
	eval(`document.querySelector('#retry-step').value = 'deployer'`)
	do("re-run from deployer", chromedp.Click(chromedp.CSS("#retry-run")))
	poll("the re-run succeeds", `(function () {
		var d = document.querySelector('#run-detail');
		var node = d.querySelector('#run-graph g.node[data-step="deployer"]');
		return d.dataset.state === 'success' && document.querySelector('#run-error').hidden &&
			node && node.dataset.state === 'success' && node.textContent.indexOf('attempt 2') >= 0;
	})()`, 60*time.Second)
	shot("rerun-success")

	do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	if got := eval(`String(sessionStorage.getItem('cmmsflow.token'))`); got != "null" {
		t.Errorf("token kept after log out: %q", got)
	}
	// A viewer sees the run, not the control.
	do("log in as a viewer",
		chromedp.SendKeys(chromedp.CSS("#token"), sys.ViewerToken),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#nav`)))
	do("open the run as a viewer", chromedp.Navigate(runPage), chromedp.WaitVisible(chromedp.CSS(`#run-detail[data-run="`+failed+`"] #run-graph`)))
	if got := eval(`String(!!document.querySelector('#retry'))`); got != "false" {
		t.Errorf("a viewer is offered Re-run from…")
	}
	do("log out the viewer", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	// Let late events arrive before the verdict.
	time.Sleep(300 * time.Millisecond)
	if errs := cons.errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
