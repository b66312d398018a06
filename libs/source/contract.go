// Package source is the source contract: the CMMS relations the pipelines
// read (assets, work orders, maintenance plans, technicians, inventory
// items), each with the columns they read, those columns' PostgreSQL types
// and, for the enum-like text columns, the values they may hold. cmmsflow's
// own tables (schema cmms) meet it by construction; a mapped source (a
// schema of views over an operator's own CMMS, see deploy/source) is
// checked against it when it is applied (Apply), and a service refuses to
// start on a mapped source applied for another contract version (Verify).
package source

// Version is the contract's version. Bump it when a column, type or enum
// value changes: every mapped source must then be checked and applied
// again before the services start on it.
const Version = 1

// PostgreSQL types, as regtype spells them.
const (
	Bigint      = "bigint"
	Integer     = "integer"
	Smallint    = "smallint"
	Numeric     = "numeric"
	Text        = "text"
	Boolean     = "boolean"
	Date        = "date"
	Timestamptz = "timestamp with time zone"
)

// compatible lists, for each contract type, the column types a mapping may
// give it: the type itself, or one the readers scan into the same Go value
// without loss (a Django integer key for a bigint, a varchar for a text).
var compatible = map[string][]string{
	Bigint:      {Bigint, Integer, Smallint},
	Integer:     {Integer, Smallint},
	Smallint:    {Smallint},
	Numeric:     {Numeric, Bigint, Integer, Smallint},
	Text:        {Text, "character varying"},
	Boolean:     {Boolean},
	Date:        {Date},
	Timestamptz: {Timestamptz},
}

// Column is a column the pipelines read.
type Column struct {
	Name string
	Type string
	// Null says the column may be NULL; a NULL in a sampled row of any
	// other column is a mismatch.
	Null bool
	// Values, when set, are the values the column may hold (today's CHECK
	// constraints of the cmms tables).
	Values []string
}

// Relation is a CMMS relation and the columns the pipelines read from it.
// A mapping may have more columns, never fewer.
type Relation struct {
	Name    string
	Columns []Column
}

// The enum values.
var (
	VehicleTypes      = []string{"car", "van", "truck", "bus", "trailer", "forklift"}
	AssetStatuses     = []string{"ACTIVE", "INACTIVE", "IN_MAINTENANCE", "RETIRED"}
	WorkOrderTypes    = []string{"PREVENTIVE", "CORRECTIVE"}
	WorkOrderStatuses = []string{"OPEN", "IN_PROGRESS", "ON_HOLD", "COMPLETED", "CANCELLED"}
	Priorities        = []string{"LOW", "MEDIUM", "HIGH", "CRITICAL"}
	IntervalUnits     = []string{"days", "weeks", "months", "years"}
	MeterUnits        = []string{"km", "hours"}
	ScheduleModes     = []string{"fixed", "floating"}
)

func col(name, typ string) Column         { return Column{Name: name, Type: typ} }
func null(name, typ string) Column        { return Column{Name: name, Type: typ, Null: true} }
func enum(name string, v []string) Column { return Column{Name: name, Type: Text, Values: v} }

// Contract is the relations, in the order they are checked. The columns are
// the union of what the readers select: the extractor (and through it
// featurejob and the trainer), the reporter's KPI queries, pmgen's
// candidates, the notifier's work-order digest, the deployer and control's
// API and admin pages.
var Contract = []Relation{
	{Name: "assets", Columns: []Column{
		col("id", Bigint), col("asset_tag", Text), col("name", Text), enum("vehicle_type", VehicleTypes),
		col("make", Text), col("model", Text), null("year", Integer), enum("status", AssetStatuses),
		col("commissioned_date", Date), col("meter_reading", Numeric), col("engine_hours", Numeric),
		col("location", Text), col("created_at", Timestamptz), col("updated_at", Timestamptz),
	}},
	{Name: "work_orders", Columns: []Column{
		col("id", Bigint), col("wo_number", Text), col("asset_id", Bigint), null("plan_id", Bigint),
		null("due_date", Date), enum("type", WorkOrderTypes), enum("status", WorkOrderStatuses),
		enum("priority", Priorities), col("title", Text), col("created_at", Timestamptz),
		null("started_at", Timestamptz), null("completed_at", Timestamptz), null("repair_hours", Numeric),
		null("assigned_technician_id", Bigint), col("skipped_occurrences", Integer), null("run_id", Text),
	}},
	{Name: "maintenance_plans", Columns: []Column{
		col("id", Bigint), col("code", Text), col("asset_id", Bigint), col("name", Text), col("description", Text),
		null("interval_value", Integer), nullEnum("interval_unit", IntervalUnits),
		null("meter_interval", Numeric), nullEnum("meter_unit", MeterUnits), col("lead_days", Integer),
		enum("schedule_mode", ScheduleModes), null("schedule_anchor_day", Smallint),
		null("next_due_date", Date), null("next_due_meter", Numeric), null("last_completed_date", Date),
		null("last_completed_meter", Numeric), null("end_date", Date), enum("priority", Priorities),
		col("estimated_hours", Numeric), null("assigned_technician_id", Bigint), col("active", Boolean),
		col("created_at", Timestamptz),
	}},
	{Name: "technicians", Columns: []Column{
		col("id", Bigint), col("name", Text), col("email", Text), col("active", Boolean),
	}},
	{Name: "inventory_items", Columns: []Column{
		col("quantity", Integer), col("reorder_level", Integer), col("unit_cost", Numeric),
	}},
}

func nullEnum(name string, v []string) Column {
	c := enum(name, v)
	c.Null = true
	return c
}
