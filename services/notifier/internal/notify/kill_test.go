package notify_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pagerdutytest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/notify"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/pagerduty"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/rules"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

// Environment of the notifier child process (TestNotifierChild).
const (
	childDB        = "NOTIFY_CHILD_DATABASE_URL"
	childPagerDuty = "NOTIFY_CHILD_PAGERDUTY_URL"
	childOutbox    = "NOTIFY_CHILD_OUTBOX"
	// childSendTimeout makes a killed child's claims abandoned after
	// 2 × 1 s + 30 s (see deliver).
	childSendTimeout = time.Second
)

// chaosRule opens on a day with more than 5 critical vehicles.
var chaosRule = rules.Rule{Name: "critical-risk", Metric: "model.critical_risk_vehicles", Comparator: ">", Threshold: 5,
	For: 1, Severity: "critical", Channels: []string{rules.ChannelEmail, rules.ChannelPagerDuty}}

// TestNotifierChild is the notifier's HTTP handler in a process of its own,
// which TestPagerDutyOnceAcrossRedeliveriesAndAKill starts (re-executing
// the test binary) and SIGKILLs. It prints its address, serves until killed
// or until its stdin closes (the parent went away), and is skipped
// otherwise.
func TestNotifierChild(t *testing.T) {
	dbURL := os.Getenv(childDB)
	if dbURL == "" {
		t.Skip("the notifier process of TestPagerDutyOnceAcrossRedeliveriesAndAKill")
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	pool, err := db.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	out, err := email.NewOutbox(os.Getenv(childOutbox))
	if err != nil {
		t.Fatal(err)
	}
	poster := webhook.NewPoster(nil)
	pd, err := pagerduty.New(os.Getenv(childPagerDuty), routingKey, poster)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	router := eventing.NewRouter(eventing.RouterConfig{Service: events.Notifier, Pool: pool, Log: log, Lease: 2 * time.Second})
	notify.New(pool, out, poster, notify.Config{
		From: mail.Address{Address: "cmmsflow@fleet.test"}, Admins: admins, SendTimeout: childSendTimeout,
		PagerDuty: pd, Rules: []rules.Rule{chaosRule},
	}, log).Register(router)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("listening http://%s\n", ln.Addr())
	t.Fatal(http.Serve(ln, router))
}

// child is a running notifier process.
type child struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// startChild starts the notifier in a child process on dbURL, sending to pd.
func startChild(t *testing.T, dbURL string, pd *pagerdutytest.Server, outbox string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNotifierChild$", "-test.v")
	cmd.Env = append(os.Environ(), childDB+"="+dbURL, childPagerDuty+"="+pd.EventsURL(), childOutbox+"="+outbox)
	logs, err := os.Create(filepath.Join(t.TempDir(), "notifier.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logs
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("notifier child's log:\n%s", b)
		}
	})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.StdinPipe(); err != nil { // closed when this process ends: the child exits
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(c.kill)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- u
			}
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	select {
	case c.url = <-addr:
	case <-c.done:
		t.Fatal("the notifier child exited before listening")
	case <-time.After(30 * time.Second):
		t.Fatal("the notifier child did not listen within 30 s")
	}
	return c
}

// kill SIGKILLs the child and waits for it to be gone.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// pushAcked pushes ev to the child until it is acknowledged (2xx), as
// Pub/Sub redelivers, for up to a minute.
func pushAcked(t *testing.T, c *child, ev eventing.Event, messageID string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		code, body, err := push(c.url, ev, messageID)
		if err == nil && code/100 == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not acknowledged within a minute: %d %s %v", ev.Type(), code, body, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Across redeliveries and a notifier killed while PagerDuty holds its
// trigger, PagerDuty receives exactly one trigger and one resolve per
// incident: a drift alert (killed mid-trigger) and a rule's alert (its
// events delivered twice and under new ids), both resolved by the next
// day's monitoring run.
func TestPagerDutyOnceAcrossRedeliveriesAndAKill(t *testing.T) {
	pool, dbURL := pgtest.NewWithURL(t)
	pd := pagerdutytest.New(t, routingKey)
	outbox := t.TempDir()
	const driftKey = "cmmsflow/drift/v7/2026-11-02"
	pd.Hold(func(e pagerdutytest.Event) bool { return e.Action == "trigger" && e.DedupKey == driftKey })

	first := startChild(t, dbURL, pd, outbox)
	drift := drifted(t, "2026-11-02")
	go func() { _, _, _ = push(first.url, drift, "m-drift") }()
	select {
	case <-pd.Held():
	case <-time.After(30 * time.Second):
		t.Fatal("the drift trigger never reached PagerDuty")
	}
	first.kill() // PagerDuty has the trigger; the notifier never heard back
	pd.Release()

	second := startChild(t, dbURL, pd, outbox)
	day1 := monitored(t, "scheduled__1", "2026-11-02", 8, "alert")
	pushAcked(t, second, day1, "m-day1")
	pushAcked(t, second, day1, "m-day1")                                             // a duplicate push
	pushAcked(t, second, monitored(t, "manual__1", "2026-11-02", 9, "alert"), "m-x") // a second run for the day
	started := time.Now()
	pushAcked(t, second, drift, "m-drift") // redelivered: answered "leased" until the killed claim is abandoned
	t.Logf("the killed attempt's drift event was acknowledged %s after the restart", time.Since(started).Round(time.Second))
	pushAcked(t, second, drifted(t, "2026-11-02"), "m-drift-2") // re-emitted under a new id

	day2 := monitored(t, "scheduled__2", "2026-11-03", 1, "ok")
	pushAcked(t, second, day2, "m-day2")
	pushAcked(t, second, day2, "m-day2")
	pushAcked(t, second, monitored(t, "manual__2", "2026-11-03", 0, "ok"), "m-y")

	incidents := pd.Incidents()
	if len(incidents) != 2 {
		t.Fatalf("incidents %v, want the drift's and the rule's", incidents)
	}
	for key, in := range incidents {
		if in.Triggers != 1 || in.Resolves != 1 || in.Open {
			t.Errorf("incident %s: %d triggers, %d resolves, open %v; want exactly one of each, resolved", key, in.Triggers, in.Resolves, in.Open)
		}
	}
	if in := incidents["cmmsflow/rule/critical-risk/2026-11-02"]; in.Triggers != 1 {
		t.Errorf("the rule's incident is missing: %v", incidents)
	}
	var unknown int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM notifications WHERE dedupe_key = $1 AND error = $2`,
		driftKey+":trigger:pagerduty", notify.ErrOutcomeUnknown).Scan(&unknown); err != nil || unknown != 1 {
		t.Errorf("the killed trigger is not recorded as of unknown outcome (%d, %v)", unknown, err)
	}
}
