package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"

	localpubsub "github.com/cmmsflow/cmmsflow/deploy/local/pubsub"
	"github.com/cmmsflow/cmmsflow/deploy/local/sendgridfake"
)

// expectedDuePlans states independently of pmgen which plans are due on $1
// (the as_of date every PM run of the test is given, so a run crossing
// midnight does not move the due set); the same statement as
// e2e/pm_test.go's.
const expectedDuePlans = `
SELECT p.id FROM maintenance_plans p JOIN assets a ON a.id = p.asset_id
WHERE p.active AND a.status = 'ACTIVE'
  AND NOT EXISTS (SELECT 1 FROM work_orders w WHERE w.plan_id = p.id AND w.status IN ('OPEN', 'IN_PROGRESS', 'ON_HOLD'))
  AND (   (p.next_due_date IS NOT NULL AND p.next_due_date <= $1::date + p.lead_days
           AND (p.end_date IS NULL OR p.next_due_date <= p.end_date))
       OR (p.meter_unit = 'km'    AND a.meter_reading >= p.next_due_meter AND (p.end_date IS NULL OR $1::date <= p.end_date))
       OR (p.meter_unit = 'hours' AND a.engine_hours  >= p.next_due_meter AND (p.end_date IS NULL OR $1::date <= p.end_date)))
ORDER BY p.id`

func duePlans(t *testing.T, pool *pgxpool.Pool, asOf string) map[int64]bool {
	t.Helper()
	rows, err := pool.Query(context.Background(), expectedDuePlans, asOf)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// violations lists every broken invariant, by invariant.
type violations map[string][]string

func (v violations) add(invariant, format string, args ...any) {
	v[invariant] = append(v[invariant], fmt.Sprintf(format, args...))
}

func (v violations) total() int {
	n := 0
	for _, l := range v {
		n += len(l)
	}
	return n
}

func (v violations) String() string {
	var b strings.Builder
	for _, k := range sortedKeys(v) {
		for i, s := range v[k] {
			if i == 20 {
				fmt.Fprintf(&b, "  %s: … and %d more\n", k, len(v[k])-20)
				break
			}
			fmt.Fprintf(&b, "  %s: %s\n", k, s)
		}
	}
	return b.String()
}

// Invariant names.
const (
	invRunFinished   = "every run success or failed with a reason"
	invWorkOrders    = "exactly one work order per due plan occurrence"
	invEmailOnce     = "no email sent twice"
	invSentRecorded  = "an email recorded sent reached SendGrid"
	invOneAlert      = "every failed run has exactly one alert"
	invAlertFailed   = "no alert for a run that did not fail"
	invFinalRun      = "a run after the faults succeeds"
	invNoDeadLetters = "no event dead-lettered but the poisoned runs'"
	invPoisonFails   = "a poisoned run fails"
)

// check evaluates every invariant against the database and the SendGrid
// fake's records.
func check(t *testing.T, pool *pgxpool.Pool, sg *sendgridfake.Server, due map[int64]bool, finalRun, finalState string, poisoned map[string]bool) violations {
	t.Helper()
	ctx := context.Background()
	v := violations{}
	query := func(sql string, scan func(pgxRows) error, args ...any) {
		t.Helper()
		rows, err := pool.Query(ctx, sql, args...)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}

	// Runs: none stuck, every failure with its reason.
	query(`SELECT run_id, pipeline, state, error FROM runs WHERE state NOT IN ('success', 'failed') OR (state = 'failed' AND error = '')`,
		func(r pgxRows) error {
			var id, p, state, errText string
			if err := r.Scan(&id, &p, &state, &errText); err != nil {
				return err
			}
			v.add(invRunFinished, "%s run %s is %s (error %q)", p, id, state, errText)
			return nil
		})
	if finalState != "success" {
		v.add(invFinalRun, "run %s is %q", finalRun, finalState)
	}

	// Work orders: each due plan got exactly one, no other plan got one.
	perPlan := map[int64]int{}
	query(`SELECT plan_id, count(*), count(DISTINCT due_date) FROM work_orders WHERE plan_id IS NOT NULL AND run_id IS NOT NULL GROUP BY plan_id`,
		func(r pgxRows) error {
			var plan int64
			var n, dates int
			if err := r.Scan(&plan, &n, &dates); err != nil {
				return err
			}
			perPlan[plan] = n
			if n != dates {
				v.add(invWorkOrders, "plan %d: %d work orders for %d due dates", plan, n, dates)
			}
			return nil
		})
	for plan := range due {
		if n := perPlan[plan]; n != 1 {
			v.add(invWorkOrders, "due plan %d has %d work orders", plan, n)
		}
	}
	for plan, n := range perPlan {
		if !due[plan] {
			v.add(invWorkOrders, "plan %d was not due but has %d work orders", plan, n)
		}
	}

	// Email: each notification key accepted by SendGrid at most once; a row
	// recorded sent was accepted.
	accepted := sg.Accepted()
	for key, n := range accepted {
		if n > 1 {
			v.add(invEmailOnce, "key %s accepted %d times", key, n)
		}
	}
	query(`SELECT dedupe_key FROM notifications WHERE channel = 'email' AND status = 'sent'`, func(r pgxRows) error {
		var key string
		if err := r.Scan(&key); err != nil {
			return err
		}
		if accepted[key] == 0 {
			v.add(invSentRecorded, "%s is recorded sent, SendGrid never accepted it", key)
		}
		return nil
	})

	// Alerts: exactly one per failed run, none for a run that did not fail.
	query(`SELECT r.run_id, r.state, count(n.id) FROM runs r
		LEFT JOIN notifications n ON n.dedupe_key = 'alert:' || r.run_id AND n.channel = 'email'
		GROUP BY r.run_id, r.state`, func(r pgxRows) error {
		var id, state string
		var n int
		if err := r.Scan(&id, &state, &n); err != nil {
			return err
		}
		switch {
		case state == "failed" && n != 1:
			v.add(invOneAlert, "failed run %s has %d alerts", id, n)
		case state != "failed" && n != 0:
			v.add(invAlertFailed, "%s run %s has %d alerts", state, id, n)
		}
		return nil
	})

	query(`SELECT consumer, event_type, run_id, reason FROM dead_letters`, func(r pgxRows) error {
		var consumer, typ, run, reason string
		if err := r.Scan(&consumer, &typ, &run, &reason); err != nil {
			return err
		}
		if !poisoned[run] {
			v.add(invNoDeadLetters, "%s dead-lettered %s of run %s: %s", consumer, typ, run, reason)
		}
		return nil
	})
	for run := range poisoned {
		var state string
		if err := pool.QueryRow(ctx, `SELECT state FROM runs WHERE run_id = $1`, run).Scan(&state); err != nil || state != "failed" {
			v.add(invPoisonFails, "poisoned run %s is %q (%v)", run, state, err)
		}
	}
	return v
}

// pgxRows is the part of pgx.Rows the checks use.
type pgxRows interface{ Scan(...any) error }

func printTable(t *testing.T, c *counts, df localpubsub.FaultCounts, sg *sendgridfake.Server, v violations, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(k string, val any) { fmt.Fprintf(w, "  %s\t%v\n", k, val) }
	scalar := func(sql string) int {
		var n int
		if err := pool.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	group := func(sql string) string {
		rows, err := pool.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		defer rows.Close()
		var parts []string
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
		if len(parts) == 0 {
			return "none"
		}
		return strings.Join(parts, ", ")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	kills, triggers := 0, 0
	var killsBy, trigBy []string
	for _, k := range sortedKeys(c.kills) {
		kills += c.kills[k]
		killsBy = append(killsBy, fmt.Sprintf("%s %d", k, c.kills[k]))
	}
	for _, k := range sortedKeys(c.triggers) {
		triggers += c.triggers[k]
		trigBy = append(trigBy, fmt.Sprintf("%s %d", k, c.triggers[k]))
	}
	fmt.Fprintln(w, "  what\tcount")
	row("runs", scalar(`SELECT count(*) FROM runs`))
	row("runs by state", group(`SELECT state, count(*) FROM runs GROUP BY state ORDER BY state`))
	row("runs by pipeline/state", group(`SELECT pipeline || '/' || state, count(*) FROM runs GROUP BY 1 ORDER BY 1`))
	row("runs failed by the stale-run sweeper", scalar(`SELECT count(*) FROM runs WHERE error LIKE 'timed out:%'`))
	row("triggers accepted", fmt.Sprintf("%d (%s)", triggers, strings.Join(trigBy, ", ")))
	row("of which poisoned (ETL on 2001-01-01, must fail)", len(c.poisoned))
	row("triggers refused (control down, PostgreSQL restarting)", c.triggerErrors)
	row("failure reasons", group(`SELECT left(regexp_replace(error, '(manual|scheduled)__[^/ ]+', '<run>', 'g'), 70), count(*)
		FROM runs WHERE state = 'failed' GROUP BY 1 ORDER BY 2 DESC`))
	row("services SIGKILLed and restarted", fmt.Sprintf("%d (%s)", kills, strings.Join(killsBy, ", ")))
	row("services down 25 s (past Pub/Sub's retries)", fmt.Sprintf("%d %v", len(c.outages), c.outages))
	row("PostgreSQL restarts", c.pgRestarts)
	row("duplicate deliveries (reached a service)", df.Duplicates)
	row("duplicate deliveries given up", df.DuplicatesDropped)
	row("deliveries held back", df.Delayed)
	row("reordered deliveries (after a later-published one)", df.Reordered)
	row("SendGrid fault windows", c.sendGridFails)
	row("SendGrid 429/5xx answers", sg.Faults())
	row("emails accepted by SendGrid", sumValues(sg.Accepted()))
	row("notifications by channel/status", group(`SELECT channel || '/' || status, count(*) FROM notifications GROUP BY 1 ORDER BY 1`))
	row("emails outcome unknown (claimed, attempt killed; not resent)",
		scalar(`SELECT count(*) FROM notifications WHERE channel = 'email' AND error LIKE 'delivery outcome unknown%'`))
	row("emails given up after the attempt limit", scalar(`SELECT count(*) FROM notifications WHERE channel = 'email' AND error LIKE 'gave up%'`))
	row("alerts (failed runs)", scalar(`SELECT count(*) FROM notifications WHERE dedupe_key LIKE 'alert:%' AND channel = 'email'`))
	row("work orders created", scalar(`SELECT count(*) FROM work_orders WHERE run_id IS NOT NULL`))
	row("dead letters", scalar(`SELECT count(*) FROM dead_letters`))
	row("Dataproc/Vertex faults", "none here: the stack runs the local engines (Dataproc: TestClusterEngineUnderRandomFaults against the fake)")
	row("Dataproc clusters left", "n/a here (checked by TestClusterEngineUnderRandomFaults)")
	row("invariant violations", v.total())
	_ = w.Flush()
	t.Logf("chaos results:\n%s", b.String())
	fmt.Print("chaos results:\n" + b.String())
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
