package djangocmms_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/deploy/local/djangocmms"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/repo"
	"github.com/cmmsflow/cmmsflow/libs/source"
)

// contractColumns are the contract's columns of each relation, as text, in
// a stable order: what the mapping must show of the moved fleet.
var contractColumns = map[string]string{
	"technicians": `SELECT concat_ws('|', id, code, name, email, phone, skill, active, created_at) FROM %s.technicians ORDER BY id`,
	"assets": `SELECT concat_ws('|', id, asset_tag, name, vehicle_type, make, model, year, status, commissioned_date,
		meter_reading, engine_hours, location, created_at, updated_at) FROM %s.assets ORDER BY id`,
	"maintenance_plans": `SELECT concat_ws('|', id, code, asset_id, name, description, interval_value, interval_unit,
		meter_interval, meter_unit, lead_days, schedule_mode, schedule_anchor_day, next_due_date, next_due_meter,
		last_completed_date, last_completed_meter, end_date, priority, estimated_hours, assigned_technician_id, active,
		created_at) FROM %s.maintenance_plans ORDER BY id`,
	"work_orders": `SELECT concat_ws('|', id, wo_number, asset_id, plan_id, due_date, type, status, priority, title,
		created_at, started_at, completed_at, repair_hours, assigned_technician_id, skipped_occurrences, run_id)
		FROM %s.work_orders ORDER BY id`,
	"inventory_items": `SELECT concat_ws('|', quantity, reorder_level, unit_cost) FROM %s.inventory_items ORDER BY sku`,
}

func rows(t *testing.T, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	r, err := pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(r, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func root(t *testing.T) string {
	t.Helper()
	r, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// loaded is a database whose demo fleet was moved into the Django tables,
// behind the shipped mapping (cmms_mapped), with what cmms showed before.
func loaded(t *testing.T) (*pgxpool.Pool, map[string][]string) {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	if _, err := fleet.Seed(ctx, pool, fleet.SeedOptions{Seed: 3, Now: now, Assets: 40}); err != nil {
		t.Fatal(err)
	}
	before := map[string][]string{}
	for rel, sql := range contractColumns {
		before[rel] = rows(t, pool, fmt.Sprintf(sql, "cmms"))
	}
	mapping, err := os.ReadFile(filepath.Join(root(t), djangocmms.MappingFile))
	if err != nil {
		t.Fatal(err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := djangocmms.CreateSchema(ctx, tx, root(t)); err != nil {
			return err
		}
		if err := djangocmms.MoveFleet(ctx, tx); err != nil {
			return err
		}
		mm, err := source.Apply(ctx, tx, source.DefaultSchema, string(mapping))
		if err != nil || len(mm) > 0 {
			return fmt.Errorf("apply: %v %v", mm, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pool, before
}

// The fleet moved into the Django tables is, through the shipped mapping,
// exactly the fleet cmmsflow's tables held, and those are empty after.
func TestMoveFleet(t *testing.T) {
	pool, before := loaded(t)
	for rel, sql := range contractColumns {
		got := rows(t, pool, fmt.Sprintf(sql, source.DefaultSchema))
		if len(got) == 0 || strings.Join(got, "\n") != strings.Join(before[rel], "\n") {
			t.Errorf("%s: the mapping shows %d rows differing from the %d cmms held", rel, len(got), len(before[rel]))
		}
		if n := rows(t, pool, "SELECT count(*)::text FROM cmms."+rel); n[0] != "0" {
			t.Errorf("cmms.%s still holds %s rows", rel, n[0])
		}
	}
	// The CMMS's own inserts take new keys.
	var id int64
	if err := pool.QueryRow(context.Background(), `INSERT INTO django.technicians_technician (employee_code, full_name, email)
		VALUES ('NEW', 'New', 'new@example.com') RETURNING id`).Scan(&id); err != nil {
		t.Fatalf("insert after the move: %v", err)
	}
}

func post(t *testing.T, url, token, key string, wo djangocmms.WorkOrder) int {
	t.Helper()
	body, err := json.Marshal(wo)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

// The work-order API inserts a POSTed work order into the Django table in
// its spellings, once per Idempotency-Key, and refuses what a CMMS would.
func TestServer(t *testing.T) {
	pool, _ := loaded(t)
	ctx := context.Background()
	srv, err := djangocmms.Start(ctx, pool, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := srv.WorkOrdersURL()

	var wo djangocmms.WorkOrder
	var tech *int64
	if err := pool.QueryRow(ctx, `SELECT p.id, p.code, a.id, a.tag, p.assigned_technician_id FROM django.maintenance_maintenanceplan p
		JOIN django.assets_asset a ON a.id = p.asset_id ORDER BY p.id LIMIT 1`).Scan(&wo.PlanID, &wo.PlanCode, &wo.AssetID, &wo.AssetTag, &tech); err != nil {
		t.Fatal(err)
	}
	wo.WONumber = fmt.Sprintf("PM-%d-20260320", wo.PlanID)
	wo.DueDate, wo.Type, wo.Status = "2026-03-20", "PREVENTIVE", "OPEN"
	wo.Priority, wo.Title, wo.Description, wo.AssignedTechnicianID, wo.RunID = "HIGH", "Oil change", "every 3 months", tech, "manual__1"
	key := fmt.Sprintf("pmgen-plan-%d-2026-03-20", wo.PlanID)

	if code := post(t, url, "wrong", key, wo); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	if code := post(t, url, "s3cret", "", wo); code != http.StatusBadRequest {
		t.Errorf("no Idempotency-Key: %d", code)
	}
	if code := post(t, url, "s3cret", key, wo); code != http.StatusCreated {
		t.Fatalf("first POST: %d", code)
	}
	// Retries, sequential and concurrent, and one from another run: the same
	// work order.
	again := wo
	again.RunID = "manual__2"
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if code := post(t, url, "s3cret", key, again); code != http.StatusOK {
				t.Errorf("replay: %d", code)
			}
		})
	}
	wg.Wait()
	got := rows(t, pool, fmt.Sprintf(`SELECT concat_ws('|', number, asset_id, plan_id, due_date, kind, status, priority, title,
		description, assigned_technician_id) FROM django.work_orders_workorder WHERE plan_id = %d AND due_date = '2026-03-20'`, wo.PlanID))
	want := fmt.Sprintf("%s|%d|%d|2026-03-20|preventive|open|high|Oil change|every 3 months", wo.WONumber, wo.AssetID, wo.PlanID)
	if tech != nil {
		want += fmt.Sprintf("|%d", *tech)
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("work orders %q, want one %q", got, want)
	}
	// Seen through the mapping in the contract's spellings.
	if got := rows(t, pool, `SELECT concat_ws('|', type, status, priority, run_id) FROM cmms_mapped.work_orders WHERE wo_number = '`+wo.WONumber+`'`); len(got) != 1 || got[0] != "PREVENTIVE|OPEN|HIGH" {
		t.Fatalf("through the mapping: %q", got)
	}

	other := wo
	other.Title = "Something else"
	if code := post(t, url, "s3cret", key, other); code != http.StatusUnprocessableEntity {
		t.Errorf("same key, another work order: %d", code)
	}
	if code := post(t, url, "s3cret", key+"-x", wo); code != http.StatusUnprocessableEntity {
		t.Errorf("another key, a number taken: %d", code)
	}
	bad := wo
	bad.WONumber, bad.AssetTag = "PM-X", "NOPE"
	if code := post(t, url, "s3cret", "k-bad-tag", bad); code != http.StatusUnprocessableEntity {
		t.Errorf("asset tag not the asset's: %d", code)
	}
	bad = wo
	bad.WONumber, bad.Status = "PM-Y", "open"
	if code := post(t, url, "s3cret", "k-bad-status", bad); code != http.StatusUnprocessableEntity {
		t.Errorf("status in another spelling: %d", code)
	}
	if n := rows(t, pool, `SELECT count(*)::text FROM django.work_orders_workorder WHERE number IN ('PM-X', 'PM-Y')`); n[0] != "0" {
		t.Errorf("refused work orders were inserted: %s", n[0])
	}
}
