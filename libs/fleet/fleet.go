// Package fleet fills the CMMS tables (technicians, assets, maintenance plans,
// work orders, inventory) with data: Seed generates a realistic synthetic
// vehicle fleet with two years of maintenance history, Import loads a customer's
// CSV files. Both write through the same code path (COPY inside one
// transaction) and refuse to overwrite existing rows.
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

// write inserts ds with COPY inside tx. Ids for technicians, assets and plans
// are taken from their identity sequences first, so that references can be
// resolved client-side and later inserts (by other services) do not collide.
func write(ctx context.Context, tx pgx.Tx, ds *dataset, ex existing) (Stats, error) {
	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return Stats{}, fmt.Errorf("fleet: %w", err)
	}
	or := func(t *time.Time) time.Time {
		if t == nil {
			return now
		}
		return *t
	}
	var st Stats

	techIDs, err := reserveIDs(ctx, tx, "technicians", len(ds.technicians))
	if err != nil {
		return st, err
	}
	techs := merge(ex.technicians, len(ds.technicians))
	rows := make([][]any, len(ds.technicians))
	for i, t := range ds.technicians {
		techs[t.Code] = techIDs[i]
		rows[i] = []any{techIDs[i], t.Code, t.Name, t.Email, t.Phone, t.Skill, t.Active, or(t.CreatedAt)}
	}
	if st.Technicians, err = copyRows(ctx, tx, "technicians",
		[]string{"id", "code", "name", "email", "phone", "skill", "active", "created_at"}, rows); err != nil {
		return st, err
	}

	assetIDs, err := reserveIDs(ctx, tx, "assets", len(ds.assets))
	if err != nil {
		return st, err
	}
	assets := merge(ex.assets, len(ds.assets))
	rows = make([][]any, len(ds.assets))
	for i, a := range ds.assets {
		assets[a.Tag] = assetIDs[i]
		rows[i] = []any{assetIDs[i], a.Tag, a.Name, a.Type, a.Make, a.Model, a.Year, a.Status, a.Commissioned,
			a.Meter, a.Hours, a.Location, or(a.CreatedAt), or(a.UpdatedAt)}
	}
	if st.Assets, err = copyRows(ctx, tx, "assets",
		[]string{"id", "asset_tag", "name", "vehicle_type", "make", "model", "year", "status", "commissioned_date",
			"meter_reading", "engine_hours", "location", "created_at", "updated_at"}, rows); err != nil {
		return st, err
	}

	planIDs, err := reserveIDs(ctx, tx, "maintenance_plans", len(ds.plans))
	if err != nil {
		return st, err
	}
	plans := merge(ex.plans, len(ds.plans))
	rows = make([][]any, len(ds.plans))
	for i, p := range ds.plans {
		plans[p.Code] = planIDs[i]
		assetID, ok := assets[p.AssetTag]
		if !ok {
			return st, fmt.Errorf("fleet: plan %s: unresolved asset %q", p.Code, p.AssetTag)
		}
		tech, err := optionalRef(techs, p.TechCode, "technician")
		if err != nil {
			return st, err
		}
		rows[i] = []any{planIDs[i], p.Code, assetID, p.Name, p.Description, p.IntervalValue, p.IntervalUnit,
			p.MeterInterval, p.MeterUnit, p.LeadDays, p.Mode, p.NextDueDate, p.NextDueMeter, p.LastCompletedDate,
			p.LastCompletedMeter, p.EndDate, p.Priority, p.EstimatedHours, tech, p.Active, or(p.CreatedAt), or(p.UpdatedAt)}
	}
	if st.MaintenancePlans, err = copyRows(ctx, tx, "maintenance_plans",
		[]string{"id", "code", "asset_id", "name", "description", "interval_value", "interval_unit",
			"meter_interval", "meter_unit", "lead_days", "schedule_mode", "next_due_date", "next_due_meter",
			"last_completed_date", "last_completed_meter", "end_date", "priority", "estimated_hours",
			"assigned_technician_id", "active", "created_at", "updated_at"}, rows); err != nil {
		return st, err
	}

	rows = make([][]any, len(ds.workOrders))
	for i, w := range ds.workOrders {
		assetID, ok := assets[w.AssetTag]
		if !ok {
			return st, fmt.Errorf("fleet: work order %s: unresolved asset %q", w.Number, w.AssetTag)
		}
		plan, err := optionalRef(plans, w.PlanCode, "plan")
		if err != nil {
			return st, err
		}
		tech, err := optionalRef(techs, w.TechCode, "technician")
		if err != nil {
			return st, err
		}
		rows[i] = []any{w.Number, assetID, plan, w.DueDate, w.Type, w.Status, w.Priority, w.Title, w.Description,
			or(w.CreatedAt), w.StartedAt, w.CompletedAt, w.RepairHours, tech, w.Skipped}
	}
	if st.WorkOrders, err = copyRows(ctx, tx, "work_orders",
		[]string{"wo_number", "asset_id", "plan_id", "due_date", "type", "status", "priority", "title", "description",
			"created_at", "started_at", "completed_at", "repair_hours", "assigned_technician_id", "skipped_occurrences"},
		rows); err != nil {
		return st, err
	}

	rows = make([][]any, len(ds.inventory))
	for i, it := range ds.inventory {
		rows[i] = []any{it.SKU, it.Name, it.Category, it.Quantity, it.ReorderLevel, it.UnitCost, it.Location, or(it.UpdatedAt)}
	}
	if st.InventoryItems, err = copyRows(ctx, tx, "inventory_items",
		[]string{"sku", "name", "category", "quantity", "reorder_level", "unit_cost", "location", "updated_at"},
		rows); err != nil {
		return st, err
	}
	return st, nil
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
