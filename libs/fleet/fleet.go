// Package fleet fills the CMMS tables (technicians, assets, maintenance plans,
// work orders, inventory) with data: Seed generates a realistic synthetic
// vehicle fleet with two years of maintenance history, Import loads a customer's
// CSV files. Both write through the same code path inside one transaction:
// COPY, refusing keys that already exist, or (ImportWith with Upsert) a merge
// that inserts new keys and updates the rows that differ.
package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The values the schema's CHECK constraints allow (libs/db/migrations/00001_cmms.sql).
var (
	VehicleTypes      = []string{"car", "van", "truck", "bus", "trailer", "forklift"}
	AssetStatuses     = []string{"ACTIVE", "INACTIVE", "IN_MAINTENANCE", "RETIRED"}
	IntervalUnits     = []string{"days", "weeks", "months", "years"}
	MeterUnits        = []string{"km", "hours"}
	ScheduleModes     = []string{"fixed", "floating"}
	Priorities        = []string{"LOW", "MEDIUM", "HIGH", "CRITICAL"}
	WorkOrderTypes    = []string{"PREVENTIVE", "CORRECTIVE"}
	WorkOrderStatuses = []string{"OPEN", "IN_PROGRESS", "ON_HOLD", "COMPLETED", "CANCELLED"}
)

// Stats counts the rows written per table.
type Stats struct {
	Technicians      int64 `json:"technicians"`
	Assets           int64 `json:"assets"`
	MaintenancePlans int64 `json:"maintenance_plans"`
	WorkOrders       int64 `json:"work_orders"`
	InventoryItems   int64 `json:"inventory_items"`
}

// TableChanges counts what an import did to one table (or, in a dry run,
// would have done): rows inserted, rows updated and rows of the files
// already in the database as they are.
type TableChanges struct {
	Table                        string
	Inserted, Updated, Unchanged int64
}

// Changes lists TableChanges by table, in dependency order.
type Changes []TableChanges

// Sum adds up every table's counts (Table is empty).
func (c Changes) Sum() TableChanges {
	var s TableChanges
	for _, t := range c {
		s.Inserted += t.Inserted
		s.Updated += t.Updated
		s.Unchanged += t.Unchanged
	}
	return s
}

// Stats are the rows inserted per table.
func (c Changes) Stats() Stats {
	var st Stats
	for _, t := range c {
		switch t.Table {
		case techniciansTable.name:
			st.Technicians = t.Inserted
		case assetsTable.name:
			st.Assets = t.Inserted
		case plansTable.name:
			st.MaintenancePlans = t.Inserted
		case workOrdersTable.name:
			st.WorkOrders = t.Inserted
		case inventoryTable.name:
			st.InventoryItems = t.Inserted
		}
	}
	return st
}

// TableCount is one line of Stats.Tables.
type TableCount struct {
	Table string
	Rows  int64
}

// Tables lists the counts by table name, in dependency order, for printing.
func (s Stats) Tables() []TableCount {
	return []TableCount{
		{"technicians", s.Technicians},
		{"assets", s.Assets},
		{"maintenance_plans", s.MaintenancePlans},
		{"work_orders", s.WorkOrders},
		{"inventory_items", s.InventoryItems},
	}
}

// Total is the number of rows over all tables.
func (s Stats) Total() int64 {
	return s.Technicians + s.Assets + s.MaintenancePlans + s.WorkOrders + s.InventoryItems
}

// querier is what both a pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

const isEmptySQL = `SELECT NOT EXISTS (SELECT 1 FROM assets)
	AND NOT EXISTS (SELECT 1 FROM technicians)
	AND NOT EXISTS (SELECT 1 FROM maintenance_plans)
	AND NOT EXISTS (SELECT 1 FROM work_orders)
	AND NOT EXISTS (SELECT 1 FROM inventory_items)`

// IsEmpty reports whether the CMMS tables (technicians, assets, maintenance
// plans, work orders, inventory items) hold no rows, i.e. whether Seed may run.
func IsEmpty(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	return isEmpty(ctx, pool)
}

func isEmpty(ctx context.Context, q querier) (bool, error) {
	var empty bool
	if err := q.QueryRow(ctx, isEmptySQL).Scan(&empty); err != nil {
		return false, fmt.Errorf("fleet: check for existing data: %w", err)
	}
	return empty, nil
}

// lockKey serialises Seed and Import runs against one database, so that the
// emptiness and duplicate checks hold until commit.
const lockKey = 727_100

func lock(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		return fmt.Errorf("fleet: lock: %w", err)
	}
	return nil
}

// The rows Seed and Import write. References are business keys (asset tag,
// plan code, technician code), resolved to ids by write. A nil time means "the
// transaction's now()".

type technicianRow struct {
	Code, Name, Email, Phone, Skill string
	Active                          bool
	CreatedAt                       *time.Time
}

type assetRow struct {
	Tag, Name, Type, Make, Model string
	Year                         *int32
	Status                       string
	Commissioned                 time.Time
	Meter, Hours                 float64
	Location                     string
	CreatedAt, UpdatedAt         *time.Time
}

type planRow struct {
	Code, AssetTag, Name, Description string
	IntervalValue                     *int32
	IntervalUnit                      *string
	MeterInterval                     *float64
	MeterUnit                         *string
	LeadDays                          int32
	Mode                              string
	NextDueDate                       *time.Time
	NextDueMeter                      *float64
	LastCompletedDate                 *time.Time
	LastCompletedMeter                *float64
	EndDate                           *time.Time
	Priority                          string
	EstimatedHours                    float64
	TechCode                          string // "" = unassigned
	Active                            bool
	CreatedAt, UpdatedAt              *time.Time
}

type workOrderRow struct {
	Number, AssetTag, PlanCode    string // PlanCode "" = no plan
	DueDate                       *time.Time
	Type, Status, Priority, Title string
	Description                   string
	CreatedAt                     *time.Time
	StartedAt, CompletedAt        *time.Time
	RepairHours                   *float64
	TechCode                      string
	Skipped                       int32
}

type inventoryRow struct {
	SKU, Name, Category    string
	Quantity, ReorderLevel int32
	UnitCost               float64
	Location               string
	UpdatedAt              *time.Time
}

type dataset struct {
	technicians []technicianRow
	assets      []assetRow
	plans       []planRow
	workOrders  []workOrderRow
	inventory   []inventoryRow
}

// existing holds the ids of rows already in the database that the dataset
// references by key.
type existing struct {
	technicians map[string]int64
	assets      map[string]int64
	plans       map[string]int64
}

// The tables write fills, in dependency order: key is the business key;
// auto are the timestamps an import sets to now() (never compared, and on an
// update only updated_at is set).
var (
	techniciansTable = table{name: "technicians", key: "code", auto: []string{"created_at"},
		cols: []string{"id", "code", "name", "email", "phone", "skill", "active", "created_at"}}
	assetsTable = table{name: "assets", key: "asset_tag", auto: []string{"created_at", "updated_at"},
		cols: []string{"id", "asset_tag", "name", "vehicle_type", "make", "model", "year", "status", "commissioned_date",
			"meter_reading", "engine_hours", "location", "created_at", "updated_at"}}
	plansTable = table{name: "maintenance_plans", key: "code", auto: []string{"created_at", "updated_at"},
		cols: []string{"id", "code", "asset_id", "name", "description", "interval_value", "interval_unit",
			"meter_interval", "meter_unit", "lead_days", "schedule_mode", "next_due_date", "next_due_meter",
			"last_completed_date", "last_completed_meter", "end_date", "priority", "estimated_hours",
			"assigned_technician_id", "active", "created_at", "updated_at"}}
	workOrdersTable = table{name: "work_orders", key: "wo_number",
		cols: []string{"wo_number", "asset_id", "plan_id", "due_date", "type", "status", "priority", "title", "description",
			"created_at", "started_at", "completed_at", "repair_hours", "assigned_technician_id", "skipped_occurrences"}}
	inventoryTable = table{name: "inventory_items", key: "sku", auto: []string{"updated_at"},
		cols: []string{"sku", "name", "category", "quantity", "reorder_level", "unit_cost", "location", "updated_at"}}
)

type table struct {
	name, key string
	cols      []string // in the order of a row's values
	auto      []string
}

// write puts ds into out (COPY, or stage and merge) inside tx. Ids for
// technicians, assets and plans are resolved first: a key in ex keeps its
// id, a new key takes one from the table's identity sequence, so that
// references can be resolved client-side and later inserts (by other
// services) do not collide.
func write(ctx context.Context, tx pgx.Tx, ds *dataset, ex existing, out sink) error {
	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	w := &writer{ctx: ctx, tx: tx, out: out, now: now}
	techs, err := w.technicians(ds.technicians, ex.technicians)
	if err != nil {
		return err
	}
	assets, err := w.assets(ds.assets, ex.assets)
	if err != nil {
		return err
	}
	plans, err := w.plans(ds.plans, ex.plans, assets, techs)
	if err != nil {
		return err
	}
	if err := w.workOrders(ds.workOrders, assets, plans, techs); err != nil {
		return err
	}
	return w.inventory(ds.inventory)
}

type writer struct {
	ctx context.Context
	tx  pgx.Tx
	out sink
	now time.Time
}

// or is t, or the transaction's now() for nil.
func (w *writer) or(t *time.Time) time.Time {
	if t == nil {
		return w.now
	}
	return *t
}

func (w *writer) technicians(ts []technicianRow, known map[string]int64) (map[string]int64, error) {
	return putKeyed(w, techniciansTable, known, ts, func(t technicianRow) string { return t.Code },
		func(id int64, t technicianRow) ([]any, error) {
			return []any{id, t.Code, t.Name, t.Email, t.Phone, t.Skill, t.Active, w.or(t.CreatedAt)}, nil
		})
}

func (w *writer) assets(as []assetRow, known map[string]int64) (map[string]int64, error) {
	return putKeyed(w, assetsTable, known, as, func(a assetRow) string { return a.Tag },
		func(id int64, a assetRow) ([]any, error) {
			return []any{id, a.Tag, a.Name, a.Type, a.Make, a.Model, a.Year, a.Status, a.Commissioned,
				a.Meter, a.Hours, a.Location, w.or(a.CreatedAt), w.or(a.UpdatedAt)}, nil
		})
}

func (w *writer) plans(ps []planRow, known, assets, techs map[string]int64) (map[string]int64, error) {
	return putKeyed(w, plansTable, known, ps, func(p planRow) string { return p.Code },
		func(id int64, p planRow) ([]any, error) {
			assetID, ok := assets[p.AssetTag]
			if !ok {
				return nil, fmt.Errorf("fleet: plan %s: unresolved asset %q", p.Code, p.AssetTag)
			}
			tech, err := optionalRef(techs, p.TechCode, "technician")
			if err != nil {
				return nil, err
			}
			return []any{id, p.Code, assetID, p.Name, p.Description, p.IntervalValue, p.IntervalUnit,
				p.MeterInterval, p.MeterUnit, p.LeadDays, p.Mode, p.NextDueDate, p.NextDueMeter, p.LastCompletedDate,
				p.LastCompletedMeter, p.EndDate, p.Priority, p.EstimatedHours, tech, p.Active, w.or(p.CreatedAt), w.or(p.UpdatedAt)}, nil
		})
}

func (w *writer) workOrders(ws []workOrderRow, assets, plans, techs map[string]int64) error {
	return put(w, workOrdersTable, ws, func(wo workOrderRow) ([]any, error) {
		assetID, ok := assets[wo.AssetTag]
		if !ok {
			return nil, fmt.Errorf("fleet: work order %s: unresolved asset %q", wo.Number, wo.AssetTag)
		}
		plan, err := optionalRef(plans, wo.PlanCode, "plan")
		if err != nil {
			return nil, err
		}
		tech, err := optionalRef(techs, wo.TechCode, "technician")
		if err != nil {
			return nil, err
		}
		return []any{wo.Number, assetID, plan, wo.DueDate, wo.Type, wo.Status, wo.Priority, wo.Title, wo.Description,
			w.or(wo.CreatedAt), wo.StartedAt, wo.CompletedAt, wo.RepairHours, tech, wo.Skipped}, nil
	})
}

func (w *writer) inventory(items []inventoryRow) error {
	return put(w, inventoryTable, items, func(it inventoryRow) ([]any, error) {
		return []any{it.SKU, it.Name, it.Category, it.Quantity, it.ReorderLevel, it.UnitCost, it.Location, w.or(it.UpdatedAt)}, nil
	})
}

// put puts one row of t per item, its values made by row, into w.out; the
// first error of row stops it.
func put[T any](w *writer, t table, items []T, row func(T) ([]any, error)) error {
	rows := make([][]any, len(items))
	for i, it := range items {
		r, err := row(it)
		if err != nil {
			return err
		}
		rows[i] = r
	}
	return w.out.put(w.ctx, w.tx, t, rows)
}

// putKeyed is put for a table with an id column: each item's business key
// gets its id (assignIDs), which row receives. It returns the ids by key,
// known's included, for references.
func putKeyed[T any](w *writer, t table, known map[string]int64, items []T, key func(T) string,
	row func(id int64, it T) ([]any, error),
) (map[string]int64, error) {
	ids, err := assignIDs(w.ctx, w.tx, t.name, known, len(items), func(i int) string { return key(items[i]) })
	if err != nil {
		return nil, err
	}
	return ids, put(w, t, items, func(it T) ([]any, error) { return row(ids[key(it)], it) })
}

// assignIDs maps the n keys key(0..n-1) to ids: the id in known for a key
// already in the database, a new one from the table's identity sequence for
// the others. The map holds known's keys too, for references.
func assignIDs(ctx context.Context, tx pgx.Tx, table string, known map[string]int64, n int, key func(int) string) (map[string]int64, error) {
	ids := merge(known, n)
	var fresh []string
	for i := range n {
		if _, ok := known[key(i)]; !ok {
			fresh = append(fresh, key(i))
		}
	}
	drawn, err := reserveIDs(ctx, tx, table, len(fresh))
	if err != nil {
		return nil, err
	}
	for i, k := range fresh {
		ids[k] = drawn[i]
	}
	return ids, nil
}

func merge(m map[string]int64, extra int) map[string]int64 {
	out := make(map[string]int64, len(m)+extra)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func optionalRef(ids map[string]int64, key, what string) (any, error) {
	if key == "" {
		return nil, nil
	}
	id, ok := ids[key]
	if !ok {
		return nil, fmt.Errorf("fleet: unresolved %s %q", what, key)
	}
	return id, nil
}

// reserveIDs draws n values from the table's identity sequence.
func reserveIDs(ctx context.Context, tx pgx.Tx, table string, n int) ([]int64, error) {
	if n == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx,
		`SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)`, table, n)
	if err != nil {
		return nil, fmt.Errorf("fleet: reserve %s ids: %w", table, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("fleet: reserve %s ids: %w", table, err)
	}
	return ids, nil
}

// sink is where write puts a table's rows: copySink inserts them (Seed and
// the plain import), upsertSink merges them into the table (import --upsert).
// Both count what they did per table.
type sink interface {
	put(ctx context.Context, tx pgx.Tx, t table, rows [][]any) error
	changes() Changes
}

type changeLog struct{ ch Changes }

func (l *changeLog) changes() Changes { return l.ch }

type copySink struct{ changeLog }

func (s *copySink) put(ctx context.Context, tx pgx.Tx, t table, rows [][]any) error {
	n, err := copyRows(ctx, tx, t.name, t.cols, rows)
	s.ch = append(s.ch, TableChanges{Table: t.name, Inserted: n})
	return err
}

func copyRows(ctx context.Context, tx pgx.Tx, table string, cols []string, rows [][]any) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
	if err != nil {
		return n, fmt.Errorf("fleet: write %s: %w", table, err)
	}
	return n, nil
}
