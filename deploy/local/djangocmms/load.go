// Package djangocmms is a Django-style CMMS on loopback for the local stack
// and the tests that run cmmsflow against a mapped source: its tables (the
// fixture schema libs/source/testdata/django.sql, schema "django"), a loader
// that moves a fleet from cmmsflow's own tables into them, and its
// work-order API (Server), which pmgen's backend client posts to as it
// would to the real CMMS.
package djangocmms

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
)

// The files of the Django example, relative to the repository root.
const (
	// SchemaFile creates schema "django" with a few fixture rows.
	SchemaFile = "libs/source/testdata/django.sql"
	// MappingFile is the shipped mapping of that schema onto the contract.
	MappingFile = "deploy/source/django-cmms.sql"
)

// Schema is the schema of the Django tables.
const Schema = "django"

// tables are the Django tables, in dependency order.
var tables = []string{"technicians_technician", "assets_asset", "maintenance_maintenanceplan",
	"work_orders_workorder", "inventory_inventoryitem"}

// CreateSchema creates the Django tables (SchemaFile under root) in tx,
// empty: the fixture's rows are removed again.
func CreateSchema(ctx context.Context, tx pgx.Tx, root string) error {
	ddl, err := os.ReadFile(filepath.Join(root, SchemaFile))
	if err != nil {
		return fmt.Errorf("djangocmms: %w", err)
	}
	if _, err := tx.Exec(ctx, string(ddl)); err != nil {
		return fmt.Errorf("djangocmms: create schema: %w", err)
	}
	if _, err := tx.Exec(ctx, "TRUNCATE "+qualified(tables)+" RESTART IDENTITY"); err != nil {
		return fmt.Errorf("djangocmms: empty the fixture: %w", err)
	}
	return nil
}

// moveFleet copies cmmsflow's own tables (schema cmms) into the Django
// tables with the Django spellings (lowercase values, singular interval
// units, 'hr', is_floating, ...) and the same integer keys, so the mapping
// shows exactly the fleet cmms held; then it empties cmms, so that nothing
// can be read from there any more.
const moveFleet = `
INSERT INTO django.technicians_technician (id, employee_code, full_name, email, phone, skill, is_active, created_at)
SELECT id, code, name, email, phone, skill, active, created_at FROM cmms.technicians;

INSERT INTO django.assets_asset (id, tag, name, vehicle_type, make, model, year, status, commissioned_on,
                                 odometer_km, engine_hours, site, created_at, updated_at)
SELECT id, asset_tag, name, vehicle_type, make, model, year, lower(status), commissioned_date,
       meter_reading, engine_hours, location, created_at, updated_at FROM cmms.assets;

INSERT INTO django.maintenance_maintenanceplan (id, code, asset_id, name, description, interval_value, interval_unit,
        meter_interval, meter_unit, lead_days, is_floating, next_due_date, next_due_meter, last_completed_date,
        last_completed_meter, end_date, priority, estimated_hours, assigned_technician_id, is_active, created_at, updated_at)
SELECT id, code, asset_id, name, description, interval_value,
       CASE interval_unit WHEN 'days' THEN 'day' WHEN 'weeks' THEN 'week' WHEN 'months' THEN 'month'
                          WHEN 'years' THEN 'year' END,
       meter_interval, CASE meter_unit WHEN 'hours' THEN 'hr' ELSE meter_unit END,
       lead_days, schedule_mode = 'floating', next_due_date, next_due_meter, last_completed_date,
       last_completed_meter, end_date, lower(priority), estimated_hours, assigned_technician_id, active, created_at, updated_at
FROM cmms.maintenance_plans;

INSERT INTO django.work_orders_workorder (id, number, asset_id, plan_id, due_date, kind, status, priority, title,
        description, created_at, started_at, completed_at, labour_hours, assigned_technician_id)
SELECT id, wo_number, asset_id, plan_id, due_date, lower(type), lower(status), lower(priority), title,
       description, created_at, started_at, completed_at, repair_hours, assigned_technician_id
FROM cmms.work_orders;

INSERT INTO django.inventory_inventoryitem (id, sku, name, category, quantity_on_hand, reorder_point, unit_cost,
        bin_location, updated_at)
SELECT id, sku, name, category, quantity, reorder_level, unit_cost, location, updated_at FROM cmms.inventory_items;

TRUNCATE cmms.work_orders, cmms.maintenance_plans, cmms.inventory_items, cmms.assets, cmms.technicians;
`

// MoveFleet moves the fleet in cmmsflow's own tables into the (empty)
// Django tables in tx, keeping every key, and empties cmmsflow's tables.
// The serial sequences continue after the highest key, so the CMMS's own
// inserts (Server) take new ones.
func MoveFleet(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, moveFleet); err != nil {
		return fmt.Errorf("djangocmms: move the fleet: %w", err)
	}
	for _, t := range tables {
		q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%[1]s.%[2]s', 'id'), coalesce(max(id), 0) + 1, false) FROM %[1]s.%[2]s`, Schema, t)
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("djangocmms: sequence of %s: %w", t, err)
		}
	}
	return nil
}

func qualified(ts []string) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += Schema + "." + t
	}
	return s
}
