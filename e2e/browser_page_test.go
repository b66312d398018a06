package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// page is a headless Chromium tab on the stack's admin page, with the steps
// a browser test takes; each failure fails the test with the page's console.
type page struct {
	t     *testing.T
	ctx   context.Context
	cons  *console
	shots string
	n     int
}

// openPage starts Chromium, opens the admin page and logs in with token.
func openPage(t *testing.T, name, token string, timeout time.Duration) *page {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s: %v (run deploy/local/deps.sh: Debian package chromium)", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
	)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelTab)
	p := &page{t: t, ctx: ctx, cons: &console{}, shots: filepath.Join(artifactsDir(t), name)}
	if err := os.MkdirAll(p.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	p.cons.watch(ctx)
	p.do("log in", chromedp.Navigate(sys.Services[events.Control].URL+"/admin"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`.card[data-pipeline="weekly_kpi_report"] button.trigger`)))
	return p
}

func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v (console: %v)", what, err, p.cons.errors())
	}
}

func (p *page) eval(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// poll waits until expr is true.
func (p *page) poll(what, expr string, timeout time.Duration) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		p.t.Fatalf("%s: %v (console: %v)", what, err, p.cons.errors())
	}
}

// shot saves a full-page screenshot as the next numbered PNG.
func (p *page) shot(name string) {
	p.t.Helper()
	p.n++
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(p.shots, fmt.Sprintf("%02d-%s.png", p.n, name)), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// noConsoleErrors fails the test on what the page wrote to its console but
// the failed loads the test caused on purpose (expected, e.g. "status of 400").
func (p *page) noConsoleErrors(expected ...string) {
	p.t.Helper()
	var errs []string
	for _, e := range p.cons.errors() {
		if !slices.ContainsFunc(expected, func(x string) bool { return strings.Contains(e, x) }) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		p.t.Fatalf("console errors: %v", errs)
	}
}
