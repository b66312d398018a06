package agree

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
)

// The runs' conf pins every pipeline to today: pmgen's as_of, the reported
// week (the ISO week before today's) and the ETL's snapshot date.
var (
	pmConf  = map[string]string{"as_of": today.Format(time.DateOnly)}
	kpiConf = map[string]string{"week": "2026-W10"}
	etlConf = map[string]string{"snapshot_date": today.Format(time.DateOnly)}
)

// Every pipeline on both sides, compared. The KPI and ETL runs go first
// (concurrently), the PM runs after them, so the work orders the latter
// create are in neither of the former's data.
//
// Left out of the comparison, because they legitimately differ: run ids,
// the created_at of the new work orders and of the rows of cmmsflow's own
// tables (when the run happened), the new work orders' database ids (each
// system numbers its rows), and what the Django CMMS does not keep of a
// posted work order: run_id and skipped_occurrences (the django side has
// them in cmmsflow.plan_occurrences and the step's figures instead), and
// the model's train_seconds metric (how long the fit took). Of the
// notifications, the technicians' inbox entries are compared (the run id
// in them aside).
func TestBothPathsAgree(t *testing.T) {
	t0 := time.Now()
	kpi, etl := map[*side]string{}, map[*side]string{}
	for _, sd := range []*side{own, django} {
		kpi[sd] = sd.trigger(t, events.WeeklyKPIReport, kpiConf)
		etl[sd] = sd.trigger(t, events.ETLMLTraining, etlConf)
	}
	sides(func(sd *side) {
		sd.waitSuccess(t, kpi[sd], 5*time.Minute)
		sd.waitSuccess(t, etl[sd], 5*time.Minute)
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("KPI and ETL runs of both sides done in %s", time.Since(t0).Round(time.Second))

	t.Run("kpi csv", func(t *testing.T) {
		a := own.object(t, "reports/"+kpiConf["week"]+"/kpis.csv")
		b := django.object(t, "reports/"+kpiConf["week"]+"/kpis.csv")
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Fatalf("kpis.csv differs:\nown:\n%s\ndjango:\n%s", a, b)
		}
		t.Logf("kpis.csv identical: %d bytes, %d lines", len(a), bytes.Count(a, []byte("\n")))
	})

	t.Run("training parquet and model", func(t *testing.T) {
		type model struct{ Version, Kind, Fingerprint, Metrics string }
		models := map[*side]model{}
		files := map[*side][]byte{}
		for _, sd := range []*side{own, django} {
			files[sd] = sd.object(t, "runs/"+etl[sd]+"/features/training.parquet")
			var m model
			if err := sd.pool.QueryRow(context.Background(), `SELECT version, kind, training_fingerprint, metrics::text
				FROM models WHERE run_id = $1`, etl[sd]).Scan(&m.Version, &m.Kind, &m.Fingerprint, &m.Metrics); err != nil {
				t.Fatalf("%s: model of run %s: %v", sd.name, etl[sd], err)
			}
			// The registry's fingerprint is the training file's: the model
			// was fitted on exactly the rows compared below.
			sum := sha256.Sum256(files[sd])
			if want := "sha256:" + hex.EncodeToString(sum[:]); m.Fingerprint != want {
				t.Errorf("%s: model fingerprint %s, training.parquet is %s", sd.name, m.Fingerprint, want)
			}
			// train_seconds is how long the fit took: the only metric that
			// is not a function of the data.
			var metrics map[string]any
			if err := json.Unmarshal([]byte(m.Metrics), &metrics); err != nil {
				t.Fatal(err)
			}
			if _, ok := metrics["train_seconds"]; !ok || len(metrics) < 5 {
				t.Errorf("%s: metrics %s: want train_seconds and the holdout's", sd.name, m.Metrics)
			}
			delete(metrics, "train_seconds")
			b, err := json.Marshal(metrics)
			if err != nil {
				t.Fatal(err)
			}
			m.Metrics = string(b)
			models[sd] = m
		}
		// Identical bytes: the same rows in the same order, with the same
		// schema (the file holds no run id or time).
		if len(files[own]) == 0 || !bytes.Equal(files[own], files[django]) {
			t.Errorf("training.parquet differs: own %d bytes, django %d bytes", len(files[own]), len(files[django]))
		}
		if models[own] != models[django] {
			t.Errorf("models differ:\nown    %+v\ndjango %+v", models[own], models[django])
		}
		t.Logf("training.parquet identical (%d bytes); model %s %s, metrics %s", len(files[own]), models[own].Version, models[own].Kind, models[own].Metrics)
	})
	if t.Failed() {
		t.FailNow()
	}

	t0 = time.Now()
	pm := map[*side]string{}
	for _, sd := range []*side{own, django} {
		pm[sd] = sd.trigger(t, events.PreventiveMaintenance, pmConf)
	}
	sides(func(sd *side) { sd.waitSuccess(t, pm[sd], 3*time.Minute) })
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("PM runs of both sides done in %s", time.Since(t0).Round(time.Second))

	t.Run("pm work orders", func(t *testing.T) {
		ctx := context.Background()
		// own: the rows the run inserted into cmmsflow's own tables.
		a := own.rows(t, `SELECT concat_ws('|', wo_number, asset_id, plan_id, due_date, type, status, priority, title,
			description, assigned_technician_id) FROM cmms.work_orders WHERE run_id = $1 ORDER BY wo_number`, pm[own])
		// django: the rows the CMMS's API inserted (the ones with an
		// idempotency key), in the contract's spellings.
		b := django.rows(t, `SELECT concat_ws('|', w.number, w.asset_id, w.plan_id, w.due_date, upper(w.kind), upper(w.status),
			upper(w.priority), w.title, w.description, w.assigned_technician_id)
			FROM django.work_orders_workorder w JOIN django.core_idempotencykey k ON k.work_order_id = w.id ORDER BY w.number`)
		if len(a) == 0 {
			t.Fatal("the own run created no work orders: nothing to compare")
		}
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Fatalf("work orders differ: own %d, django %d\nown:\n%s\ndjango:\n%s", len(a), len(b), strings.Join(a, "\n"), strings.Join(b, "\n"))
		}
		// They are all the django run's, recorded as its occurrences, and
		// the mapping shows them to cmmsflow.
		occ := django.rows(t, `SELECT wo_number FROM cmmsflow.plan_occurrences WHERE run_id = $1 ORDER BY wo_number`, pm[django])
		mapped := django.rows(t, `SELECT o.wo_number FROM cmmsflow.plan_occurrences o
			JOIN cmms_mapped.work_orders w ON w.wo_number = o.wo_number AND w.plan_id = o.plan_id AND w.due_date = o.due_date
			WHERE o.run_id = $1 ORDER BY o.wo_number`, pm[django])
		if len(occ) != len(a) || len(mapped) != len(a) {
			t.Fatalf("%d work orders, %d occurrences of the django run, %d of them seen through the mapping", len(a), len(occ), len(mapped))
		}
		// The plan ledger advanced: the django side's next occurrences are
		// the ones the own side wrote into its plans.
		next := `SELECT concat_ws('|', p.id, p.next_due_date, p.next_due_meter) FROM cmms.maintenance_plans p
			WHERE p.id IN (SELECT plan_id FROM cmms.work_orders WHERE run_id = $1) ORDER BY p.id`
		ledger := `SELECT concat_ws('|', l.plan_id, l.next_due_date, l.next_due_meter) FROM cmmsflow.plan_ledger l
			WHERE l.run_id = $1 ORDER BY l.plan_id`
		wantNext, gotNext := own.rows(t, next, pm[own]), django.rows(t, ledger, pm[django])
		if len(gotNext) != len(a) || strings.Join(wantNext, "\n") != strings.Join(gotNext, "\n") {
			t.Fatalf("plan ledger: %d rows differing from the own side's %d advanced plans\nown:\n%s\nledger:\n%s",
				len(gotNext), len(wantNext), strings.Join(wantNext, "\n"), strings.Join(gotNext, "\n"))
		}
		advanced := django.rows(t, `SELECT l.plan_id::text FROM cmmsflow.plan_ledger l JOIN cmms_mapped.maintenance_plans p ON p.id = l.plan_id
			WHERE l.run_id = $1 AND l.next_due_date IS DISTINCT FROM p.next_due_date`, pm[django])
		if len(advanced) == 0 {
			t.Error("no plan's next due date in the ledger moved past the source's")
		}
		// The steps' figures agree (created, skipped, missed, ...).
		var fa, fb string
		const figures = `SELECT figures::text FROM steps WHERE run_id = $1 AND step = 'pmgen'`
		if err := own.pool.QueryRow(ctx, figures, pm[own]).Scan(&fa); err != nil {
			t.Fatal(err)
		}
		if err := django.pool.QueryRow(ctx, figures, pm[django]).Scan(&fb); err != nil {
			t.Fatal(err)
		}
		if fa != fb {
			t.Errorf("pmgen figures differ:\nown    %s\ndjango %s", fa, fb)
		}
		// cmms stayed empty on the django side: everything came through the
		// mapping, and went back through the CMMS's API.
		if n := django.rows(t, `SELECT ((SELECT count(*) FROM cmms.work_orders) + (SELECT count(*) FROM cmms.assets)
			+ (SELECT count(*) FROM cmms.maintenance_plans) + (SELECT count(*) FROM cmms.technicians))::text`); n[0] != "0" {
			t.Errorf("the django side's cmms tables hold %s rows", n[0])
		}
		// The technicians hear of the same work orders: the notifier finds a
		// mapped run's through plan_occurrences (the CMMS has no run_id).
		const inbox = `SELECT concat_ws('|', technician_id, recipient, subject, replace(body, $1, '<run>'))
			FROM notifications WHERE run_id = $1 AND channel = 'inbox' ORDER BY technician_id`
		na, nb := own.rows(t, inbox, pm[own]), django.rows(t, inbox, pm[django])
		if len(na) == 0 || strings.Join(na, "\n") != strings.Join(nb, "\n") {
			t.Errorf("inbox notifications differ: own %d, django %d\nown:\n%s\ndjango:\n%s", len(na), len(nb),
				strings.Join(na, "\n"), strings.Join(nb, "\n"))
		}
		t.Logf("%d work orders identical; ledger advanced for %d plans (%d past the source's date); %d identical inbox notifications; figures %s",
			len(a), len(gotNext), len(advanced), len(na), fa)
	})

	// A second PM run on the django side creates nothing: exactly once
	// through the ledger and the CMMS.
	t.Run("pm again", func(t *testing.T) {
		before := django.rows(t, `SELECT count(*)::text FROM django.work_orders_workorder`)
		again := django.trigger(t, events.PreventiveMaintenance, pmConf)
		django.waitSuccess(t, again, 3*time.Minute)
		if after := django.rows(t, `SELECT count(*)::text FROM django.work_orders_workorder`); after[0] != before[0] {
			t.Fatalf("a second run created work orders: %s -> %s", before[0], after[0])
		}
	})
}

// sides runs fn for both sides at once.
func sides(fn func(*side)) {
	var wg sync.WaitGroup
	for _, sd := range []*side{own, django} {
		wg.Go(func() { fn(sd) })
	}
	wg.Wait()
}

func (sd *side) trigger(t *testing.T, pipeline string, conf map[string]string) string {
	t.Helper()
	runID, created, err := sd.sys.Trigger(t.Context(), pipeline, conf)
	if err != nil || !created {
		t.Fatalf("%s: trigger %s: run %q created %v: %v", sd.name, pipeline, runID, created, err)
	}
	return runID
}

// waitSuccess waits for the run to end and reports an error unless it
// succeeded (safe from any goroutine).
func (sd *side) waitSuccess(t *testing.T, runID string, timeout time.Duration) {
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var state string
	for {
		err := sd.pool.QueryRow(ctx, `SELECT state FROM runs WHERE run_id = $1`, runID).Scan(&state)
		if err == nil && (state == "success" || state == "failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: run %s not finished after %s (state %q, err %v)", sd.name, runID, timeout, state, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	if state != "success" {
		var steps string
		err := sd.pool.QueryRow(ctx, `SELECT string_agg(concat_ws(' ', step, state, error), '; ' ORDER BY step)
			FROM steps WHERE run_id = $1`, runID).Scan(&steps)
		t.Errorf("%s: run %s %s: %s %v", sd.name, runID, state, steps, err)
	}
}

func (sd *side) rows(t *testing.T, sql string, args ...any) []string {
	t.Helper()
	r, err := sd.pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sd.name, err)
	}
	out, err := pgx.CollectRows(r, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sd.name, err)
	}
	return out
}

// objMu serialises reads from the two GCS emulators: objstore finds the
// emulator through STORAGE_EMULATOR_HOST.
var objMu sync.Mutex

// object reads an object from the side's bucket.
func (sd *side) object(t *testing.T, name string) []byte {
	t.Helper()
	objMu.Lock()
	defer objMu.Unlock()
	t.Setenv("STORAGE_EMULATOR_HOST", sd.sys.GCSHost)
	store, closeStore, err := objstore.Connect(context.Background(), sd.sys.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closeStore() }()
	b, err := store.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("%s: %s: %v", sd.name, name, err)
	}
	return b
}
