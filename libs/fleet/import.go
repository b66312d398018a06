package fleet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The files Import reads, in the order they are validated and written. The
// columns are documented in docs/csv-format.md.
var (
	techniciansSpec = fileSpec{name: "technicians.csv",
		columns:  []string{"code", "name", "email", "phone", "skill", "active"},
		required: []string{"code", "name", "email"}}
	assetsSpec = fileSpec{name: "assets.csv",
		columns: []string{"asset_tag", "name", "vehicle_type", "make", "model", "year", "status", "commissioned_date",
			"meter_reading", "engine_hours", "location"},
		required: []string{"asset_tag", "name", "vehicle_type", "commissioned_date"}}
	plansSpec = fileSpec{name: "maintenance_plans.csv",
		columns: []string{"code", "asset_tag", "name", "description", "interval_value", "interval_unit",
			"meter_interval", "meter_unit", "lead_days", "schedule_mode", "next_due_date", "next_due_meter",
			"last_completed_date", "last_completed_meter", "end_date", "priority", "estimated_hours",
			"technician_code", "active"},
		required: []string{"code", "asset_tag", "name"}}
	workOrdersSpec = fileSpec{name: "work_orders.csv",
		columns: []string{"wo_number", "asset_tag", "plan_code", "due_date", "type", "status", "priority", "title",
			"description", "created_at", "started_at", "completed_at", "repair_hours", "technician_code",
			"skipped_occurrences"},
		required: []string{"wo_number", "asset_tag", "title"}}
	inventorySpec = fileSpec{name: "inventory.csv",
		columns:  []string{"sku", "name", "category", "quantity", "reorder_level", "unit_cost", "location"},
		required: []string{"sku", "name"}}

	importSpecs = []fileSpec{techniciansSpec, assetsSpec, plansSpec, workOrdersSpec, inventorySpec}
)

// ImportFiles lists the file names Import reads.
func ImportFiles() []string {
	names := make([]string, len(importSpecs))
	for i, s := range importSpecs {
		names[i] = s.name
	}
	return names
}

type importer struct {
	opts       ImportOptions
	files      map[string]*csvFile
	techs      []*in[technicianRow]
	assets     []*in[assetRow]
	plans      []*in[planRow]
	workOrders []*in[workOrderRow]
	inventory  []*in[inventoryRow]
}

// in is a parsed row of a file: its typed values, and the row they come
// from (for errors).
type in[T any] struct {
	*row
	v T
}

// ImportOptions change what ImportWith accepts and writes. The zero value
// is Import.
type ImportOptions struct {
	// Upsert inserts the rows whose key is new, updates the rows that differ
	// from the database and leaves the others; without it a key already in
	// the database is an error.
	Upsert bool
	// DryRun validates and writes in a transaction that is then rolled back:
	// the counts are those of a real run, and nothing is written (but the
	// identity sequences, which a rollback does not reset, skip the ids
	// the new rows would have taken).
	DryRun bool
	// Location reads timestamps without a zone (2024-05-01 08:30:00) as wall
	// clock time there; nil leaves them an error.
	Location *time.Location
	// Columns names, per file, the headers that stand for documented columns
	// (ReadColumnAliases).
	Columns ColumnAliases
}

// Import reads the CSV files in dir (technicians.csv, assets.csv,
// maintenance_plans.csv, work_orders.csv, inventory.csv; each optional),
// validates every row and, when nothing is wrong, writes them all in one
// transaction. References (asset_tag, plan_code, technician_code) may name
// rows of the same import or rows already in the database; a key that
// already exists in the database is an error, never an update. When anything
// is wrong it writes nothing and returns an *ImportError listing the problems
// as "file:line: column: message".
func Import(ctx context.Context, pool *pgxpool.Pool, dir string) (Stats, error) {
	ch, err := ImportWith(ctx, pool, dir, ImportOptions{})
	return ch.Stats(), err
}

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("fleet: dry run")

// ImportWith is Import with options: with Upsert, keys already in the
// database are updated where their rows differ. It returns the rows
// inserted, updated and left unchanged per table; on any problem it writes
// nothing and returns an *ImportError, as Import does.
func ImportWith(ctx context.Context, pool *pgxpool.Pool, dir string, o ImportOptions) (Changes, error) {
	im := &importer{opts: o, files: map[string]*csvFile{}}
	var errs errorList
	if err := im.listDir(dir, &errs); err != nil {
		return nil, err
	}
	if err := im.load(dir); err != nil {
		return nil, err
	}
	var ch Changes
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		if ch, err = im.write(ctx, tx, &errs); err != nil {
			return err
		}
		if o.DryRun {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	return ch, nil
}

// listDir reports the unknown CSV files of dir, and fails when it has none
// of the known ones.
func (im *importer) listDir(dir string, errs *errorList) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("fleet: import: %w", err)
	}
	known := ImportFiles()
	found := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.EqualFold(filepath.Ext(name), ".csv") {
			continue
		}
		if !slices.Contains(known, name) {
			errs.add(FieldError{File: name, Message: "unknown file (expected " + strings.Join(known, ", ") + ")"})
			continue
		}
		found++
	}
	if found == 0 && errs.total == 0 {
		return fmt.Errorf("fleet: import: no CSV files in %s (expected %s)", dir, strings.Join(known, ", "))
	}
	return nil
}

// write checks the parsed rows against the database and, when nothing is
// wrong, writes them: COPY, or with Upsert a merge.
func (im *importer) write(ctx context.Context, tx pgx.Tx, errs *errorList) (Changes, error) {
	if err := lock(ctx, tx); err != nil {
		return nil, err
	}
	db, err := im.lookup(ctx, tx)
	if err != nil {
		return nil, err
	}
	im.check(db)
	im.report(errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	var out sink = &copySink{}
	if im.opts.Upsert {
		out = &upsertSink{}
	}
	ex := existing{technicians: db.techs, assets: db.assets, plans: db.planIDs}
	if err := write(ctx, tx, im.dataset(db), ex, out); err != nil {
		return nil, err
	}
	return out.changes(), nil
}

// load reads every known file of dir (a missing one is an empty file) and
// parses its rows.
func (im *importer) load(dir string) error {
	for _, spec := range importSpecs {
		path := filepath.Join(dir, spec.name)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			im.files[spec.name] = &csvFile{spec: spec, pos: map[string]int{}}
			continue
		}
		f, err := readCSV(path, spec, im.opts.Columns[spec.stem()])
		if err != nil {
			return err
		}
		f.zone = im.opts.Location
		im.files[spec.name] = f
	}
	im.parse()
	return nil
}

// parse reads every row's fields into typed rows, recording what does not
// parse. Rows of a file with a missing required column are skipped.
func (im *importer) parse() {
	im.parseTechnicians()
	im.parseAssets()
	im.parsePlans()
	im.parseWorkOrders()
	im.parseInventory()
}

// parseRows parses each row of spec's file that can be validated with
// parse, which records what does not parse on the row.
func parseRows[T any](im *importer, spec fileSpec, parse func(r *row) T) []*in[T] {
	var out []*in[T]
	for _, r := range im.rows(spec) {
		out = append(out, &in[T]{row: r, v: parse(r)})
	}
	return out
}

// parseTechnicians parses the rows of technicians.csv.
func (im *importer) parseTechnicians() {
	im.techs = parseRows(im, techniciansSpec, func(r *row) technicianRow {
		t := technicianRow{
			Code:   r.required("code"),
			Name:   r.required("name"),
			Email:  r.required("email"),
			Phone:  r.get("phone"),
			Skill:  r.get("skill"),
			Active: r.boolean("active", true),
		}
		if t.Skill == "" {
			t.Skill = "general"
		}
		if e := t.Email; e != "" && (!strings.Contains(e, "@") || strings.ContainsAny(e, " ,;")) {
			r.fail("email", "invalid email %q", e)
		}
		return t
	})
}

// parseAssets parses the rows of assets.csv.
func (im *importer) parseAssets() {
	im.assets = parseRows(im, assetsSpec, func(r *row) assetRow {
		a := assetRow{
			Tag:      r.required("asset_tag"),
			Name:     r.required("name"),
			Type:     r.enum("vehicle_type", "", VehicleTypes),
			Make:     r.get("make"),
			Model:    r.get("model"),
			Year:     r.optInt("year", 1900, 2100),
			Status:   r.enum("status", "ACTIVE", AssetStatuses),
			Meter:    r.number("meter_reading", 0, numeric12_1),
			Hours:    r.number("engine_hours", 0, numeric10_1),
			Location: r.get("location"),
		}
		if r.empty("vehicle_type") {
			r.fail("vehicle_type", "required")
		}
		if d := r.date("commissioned_date"); d != nil {
			a.Commissioned = *d
		} else if r.empty("commissioned_date") {
			r.fail("commissioned_date", "required")
		}
		return a
	})
}

// parsePlans parses the rows of maintenance_plans.csv.
func (im *importer) parsePlans() {
	im.plans = parseRows(im, plansSpec, func(r *row) planRow {
		p := planRow{
			Code:               r.required("code"),
			AssetTag:           r.required("asset_tag"),
			Name:               r.required("name"),
			Description:        r.get("description"),
			IntervalValue:      r.optInt("interval_value", 1, math.MaxInt32),
			IntervalUnit:       r.optEnum("interval_unit", IntervalUnits),
			MeterInterval:      r.optNumber("meter_interval", numeric12_1, true),
			MeterUnit:          r.optEnum("meter_unit", MeterUnits),
			LeadDays:           r.integer("lead_days", 0, 0, math.MaxInt32),
			Mode:               r.enum("schedule_mode", "fixed", ScheduleModes),
			NextDueDate:        r.date("next_due_date"),
			NextDueMeter:       r.optNumber("next_due_meter", numeric12_1, false),
			LastCompletedDate:  r.date("last_completed_date"),
			LastCompletedMeter: r.optNumber("last_completed_meter", numeric12_1, false),
			EndDate:            r.date("end_date"),
			Priority:           r.enum("priority", "MEDIUM", Priorities),
			EstimatedHours:     r.number("estimated_hours", 1, numeric6_2),
			TechCode:           r.get("technician_code"),
			Active:             r.boolean("active", true),
		}
		checkIntervals(r, &p)
		return p
	})
}

// parseWorkOrders parses the rows of work_orders.csv.
func (im *importer) parseWorkOrders() {
	im.workOrders = parseRows(im, workOrdersSpec, func(r *row) workOrderRow {
		w := workOrderRow{
			Number:      r.required("wo_number"),
			AssetTag:    r.required("asset_tag"),
			PlanCode:    r.get("plan_code"),
			DueDate:     r.date("due_date"),
			Status:      r.enum("status", "OPEN", WorkOrderStatuses),
			Priority:    r.enum("priority", "MEDIUM", Priorities),
			Title:       r.required("title"),
			Description: r.get("description"),
			CreatedAt:   r.timestamp("created_at"),
			StartedAt:   r.timestamp("started_at"),
			CompletedAt: r.timestamp("completed_at"),
			RepairHours: r.optNumber("repair_hours", numeric8_2, false),
			TechCode:    r.get("technician_code"),
			Skipped:     r.integer("skipped_occurrences", 0, 0, math.MaxInt32),
		}
		defType := "CORRECTIVE"
		if w.PlanCode != "" {
			defType = "PREVENTIVE"
		}
		w.Type = r.enum("type", defType, WorkOrderTypes)
		if w.PlanCode != "" && r.empty("due_date") {
			r.fail("due_date", "required when plan_code is set")
		}
		if w.StartedAt != nil && w.CompletedAt != nil && w.CompletedAt.Before(*w.StartedAt) {
			r.fail("completed_at", "is before started_at")
		}
		if w.Status == "COMPLETED" && r.empty("completed_at") {
			r.fail("completed_at", "required when status is COMPLETED")
		}
		return w
	})
}

// parseInventory parses the rows of inventory.csv.
func (im *importer) parseInventory() {
	im.inventory = parseRows(im, inventorySpec, func(r *row) inventoryRow {
		it := inventoryRow{
			SKU:          r.required("sku"),
			Name:         r.required("name"),
			Category:     r.get("category"),
			Quantity:     r.integer("quantity", 0, 0, math.MaxInt32),
			ReorderLevel: r.integer("reorder_level", 0, 0, math.MaxInt32),
			UnitCost:     r.number("unit_cost", 0, numeric12_2),
			Location:     r.get("location"),
		}
		if it.Category == "" {
			it.Category = "general"
		}
		return it
	})
}

// rows are the data rows of a file that can be validated.
func (im *importer) rows(spec fileSpec) []*row {
	f := im.files[spec.name]
	if f.broken {
		return nil
	}
	var out []*row
	for _, r := range f.rows {
		if r.valid() {
			out = append(out, r)
		}
	}
	return out
}

// checkIntervals applies the schema's interval rules to plan v of row r and
// fills the default next due date / meter from the last completion.
func checkIntervals(r *row, v *planRow) {
	hasValue, hasUnit := !r.empty("interval_value"), !r.empty("interval_unit")
	hasMeter, hasMeterUnit := !r.empty("meter_interval"), !r.empty("meter_unit")
	switch {
	case hasValue && !hasUnit:
		r.fail("interval_unit", "required when interval_value is set")
	case hasUnit && !hasValue:
		r.fail("interval_value", "required when interval_unit is set")
	}
	switch {
	case hasMeter && !hasMeterUnit:
		r.fail("meter_unit", "required when meter_interval is set")
	case hasMeterUnit && !hasMeter:
		r.fail("meter_interval", "required when meter_unit is set")
	}
	if !hasValue && !hasUnit && !hasMeter && !hasMeterUnit {
		r.fail("interval_value", "a plan needs a calendar interval (interval_value, interval_unit), a meter interval (meter_interval, meter_unit), or both")
	}
	if v.IntervalValue != nil && v.IntervalUnit != nil && r.empty("next_due_date") {
		if v.LastCompletedDate != nil {
			v.NextDueDate = ptr(addInterval(*v.LastCompletedDate, int(*v.IntervalValue), *v.IntervalUnit))
			// A date as far as a CSV date can go (and PostgreSQL's and
			// pgx's date range are not overrun).
			if v.NextDueDate.Year() > 9999 {
				r.fail("next_due_date", "last_completed_date plus the interval is past 9999-12-31")
			}
		} else {
			r.fail("next_due_date", "required for a plan with a calendar interval (or give last_completed_date)")
		}
	}
	if v.MeterInterval != nil && v.MeterUnit != nil && r.empty("next_due_meter") {
		if v.LastCompletedMeter != nil {
			v.NextDueMeter = ptr(round1(*v.LastCompletedMeter + *v.MeterInterval))
			if *v.NextDueMeter > numeric12_1.max {
				r.fail("next_due_meter", "last_completed_meter plus meter_interval is more than %s", strconv.FormatFloat(numeric12_1.max, 'f', -1, 64))
			}
		} else {
			r.fail("next_due_meter", "required for a plan with a meter interval (or give last_completed_meter)")
		}
	}
}

// inDB is what the database already holds of the keys the import names.
type inDB struct {
	techs, assets, planIDs, skus map[string]int64
	woCreated                    map[string]time.Time         // wo_number → created_at
	planAsset                    map[string]string            // plan code → asset tag
	planDues                     map[string]map[string]string // plan code → due date (YYYY-MM-DD) → wo_number
}

func emptyInDB() *inDB {
	return &inDB{techs: map[string]int64{}, assets: map[string]int64{}, planIDs: map[string]int64{}, skus: map[string]int64{},
		woCreated: map[string]time.Time{}, planAsset: map[string]string{}, planDues: map[string]map[string]string{}}
}

func (im *importer) lookup(ctx context.Context, tx pgx.Tx) (*inDB, error) {
	var techKeys, assetKeys, planKeys, woKeys, skuKeys []string
	for _, t := range im.techs {
		techKeys = append(techKeys, t.v.Code)
	}
	for _, a := range im.assets {
		assetKeys = append(assetKeys, a.v.Tag)
	}
	for _, p := range im.plans {
		planKeys = append(planKeys, p.v.Code)
		assetKeys = append(assetKeys, p.v.AssetTag)
		techKeys = append(techKeys, p.v.TechCode)
	}
	for _, w := range im.workOrders {
		woKeys = append(woKeys, w.v.Number)
		assetKeys = append(assetKeys, w.v.AssetTag)
		planKeys = append(planKeys, w.v.PlanCode)
		techKeys = append(techKeys, w.v.TechCode)
	}
	for _, it := range im.inventory {
		skuKeys = append(skuKeys, it.v.SKU)
	}
	db := emptyInDB()
	var err error
	if db.techs, err = lookupKeys[int64](ctx, tx, `SELECT code, id FROM technicians WHERE code = ANY($1)`, techKeys); err != nil {
		return nil, err
	}
	if db.assets, err = lookupKeys[int64](ctx, tx, `SELECT asset_tag, id FROM assets WHERE asset_tag = ANY($1)`, assetKeys); err != nil {
		return nil, err
	}
	if db.planIDs, err = lookupKeys[int64](ctx, tx, `SELECT code, id FROM maintenance_plans WHERE code = ANY($1)`, planKeys); err != nil {
		return nil, err
	}
	if db.woCreated, err = lookupKeys[time.Time](ctx, tx, `SELECT wo_number, created_at FROM work_orders WHERE wo_number = ANY($1)`, woKeys); err != nil {
		return nil, err
	}
	if db.skus, err = lookupKeys[int64](ctx, tx, `SELECT sku, id FROM inventory_items WHERE sku = ANY($1)`, skuKeys); err != nil {
		return nil, err
	}
	if len(db.planIDs) > 0 {
		codes := make([]string, 0, len(db.planIDs))
		for c := range db.planIDs {
			codes = append(codes, c)
		}
		rows, err := tx.Query(ctx, `SELECT p.code, a.asset_tag FROM maintenance_plans p JOIN assets a ON a.id = p.asset_id WHERE p.code = ANY($1)`, codes)
		if err != nil {
			return nil, fmt.Errorf("fleet: import: look up plans: %w", err)
		}
		var code, tag string
		if _, err := pgx.ForEachRow(rows, []any{&code, &tag}, func() error { db.planAsset[code] = tag; return nil }); err != nil {
			return nil, fmt.Errorf("fleet: import: look up plans: %w", err)
		}
		rows, err = tx.Query(ctx, `SELECT p.code, w.due_date, w.wo_number FROM work_orders w JOIN maintenance_plans p ON p.id = w.plan_id
			WHERE p.code = ANY($1) AND w.due_date IS NOT NULL`, codes)
		if err != nil {
			return nil, fmt.Errorf("fleet: import: look up plan work orders: %w", err)
		}
		var due time.Time
		var number string
		if _, err := pgx.ForEachRow(rows, []any{&code, &due, &number}, func() error {
			if db.planDues[code] == nil {
				db.planDues[code] = map[string]string{}
			}
			db.planDues[code][due.Format(time.DateOnly)] = number
			return nil
		}); err != nil {
			return nil, fmt.Errorf("fleet: import: look up plan work orders: %w", err)
		}
	}
	return db, nil
}

func uniqueKeys(keys []string) []string {
	out := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "" })
	slices.Sort(out)
	return slices.Compact(out)
}

// lookupKeys runs sql with the distinct non-empty keys as $1 and maps each
// row's first column (the key) to its second.
func lookupKeys[V any](ctx context.Context, tx pgx.Tx, sql string, keys []string) (map[string]V, error) {
	found := map[string]V{}
	keys = uniqueKeys(keys)
	if len(keys) == 0 {
		return found, nil
	}
	rows, err := tx.Query(ctx, sql, keys)
	if err != nil {
		return nil, fmt.Errorf("fleet: import: look up keys: %w", err)
	}
	var key string
	var v V
	if _, err := pgx.ForEachRow(rows, []any{&key, &v}, func() error { found[key] = v; return nil }); err != nil {
		return nil, fmt.Errorf("fleet: import: look up keys: %w", err)
	}
	return found, nil
}

// unique tracks the first line of each key in a file.
type unique map[string]int

// first records key on line and reports the line it was first seen on (0
// when new). Empty keys are not tracked.
func (u unique) first(key string, line int) int {
	if key == "" {
		return 0
	}
	if l, ok := u[key]; ok {
		return l
	}
	u[key] = line
	return 0
}

// check validates keys and references against each other and the database.
func (im *importer) check(db *inDB) {
	refs := &references{db: db, techFile: im.files[techniciansSpec.name], assetFile: im.files[assetsSpec.name]}
	refs.techs = im.checkTechnicians(db)
	refs.assets = im.checkAssets(db)
	planAsset := im.checkPlans(db, refs)
	im.checkWorkOrders(db, refs, planAsset)
	im.checkInventory(db)
}

// checkKey records the key of row r, in column col, in keys, and reports it
// when it is a duplicate or, unless the import upserts, already in the
// database (what names such a row: technician, asset, …). It reports whether
// the key was accepted.
func (im *importer) checkKey(keys unique, r *row, col, key, what string, inDB bool) bool {
	if l := keys.first(key, r.line); l > 0 {
		r.fail(col, "duplicate %s %q (first on line %d)", col, key, l)
		return false
	}
	if inDB && !im.opts.Upsert {
		r.fail(col, "%s %q already exists in the database", what, key)
		return false
	}
	return true
}

// has reports whether m has key k.
func has[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

// references resolves technician and asset references: each must name a row
// of this import or of the database. References into a file whose header is
// broken are not reported again.
type references struct {
	db                  *inDB
	techs, assets       unique
	techFile, assetFile *csvFile
}

// resolvable reports whether key names a row of this import or of the
// database, or points into file f whose header is broken.
func resolvable(key string, inFile unique, f *csvFile, inDB map[string]int64) bool {
	return has(inFile, key) || has(inDB, key) || f.broken
}

// tech checks row r's technician_code.
func (rf *references) tech(r *row, code string) {
	if code != "" && !resolvable(code, rf.techs, rf.techFile, rf.db.techs) {
		r.fail("technician_code", "unknown technician %q: not in technicians.csv or the database", code)
	}
}

// asset checks row r's asset_tag.
func (rf *references) asset(r *row, tag string) {
	if tag != "" && !resolvable(tag, rf.assets, rf.assetFile, rf.db.assets) {
		r.fail("asset_tag", "unknown asset %q: not in assets.csv or the database", tag)
	}
}

// checkTechnicians checks the technicians' codes and returns them.
func (im *importer) checkTechnicians(db *inDB) unique {
	techs := unique{}
	for _, t := range im.techs {
		im.checkKey(techs, t.row, "code", t.v.Code, "technician", has(db.techs, t.v.Code))
	}
	return techs
}

// checkAssets checks the assets' tags and returns them.
func (im *importer) checkAssets(db *inDB) unique {
	assets := unique{}
	for _, a := range im.assets {
		im.checkKey(assets, a.row, "asset_tag", a.v.Tag, "asset", has(db.assets, a.v.Tag))
	}
	return assets
}

// checkPlans checks the plans' codes and references, and returns the asset
// tag of each plan of the import by code.
func (im *importer) checkPlans(db *inDB, refs *references) map[string]string {
	plans := unique{}
	planAsset := map[string]string{}
	for _, p := range im.plans {
		if im.checkKey(plans, p.row, "code", p.v.Code, "plan", has(db.planIDs, p.v.Code)) && p.v.Code != "" {
			planAsset[p.v.Code] = p.v.AssetTag
		}
		refs.asset(p.row, p.v.AssetTag)
		refs.tech(p.row, p.v.TechCode)
	}
	return planAsset
}

// checkWorkOrders checks the work orders' numbers and references;
// planAsset is checkPlans'.
func (im *importer) checkWorkOrders(db *inDB, refs *references, planAsset map[string]string) {
	wos := unique{}
	dues := unique{}
	for _, w := range im.workOrders {
		im.checkKey(wos, w.row, "wo_number", w.v.Number, "work order", has(db.woCreated, w.v.Number))
		refs.asset(w.row, w.v.AssetTag)
		if w.v.PlanCode != "" {
			im.checkPlanRef(db, w, planAsset, dues)
		}
		refs.tech(w.row, w.v.TechCode)
	}
}

// checkPlanRef checks work order w's plan_code: the plan is in the import or
// the database, belongs to w's asset, and has no other work order due on w's
// due date (dues tracks those of the import).
func (im *importer) checkPlanRef(db *inDB, w *in[workOrderRow], planAsset map[string]string, dues unique) {
	code := w.v.PlanCode
	owner, inFile := planAsset[code]
	if !inFile {
		owner = db.planAsset[code]
	}
	switch {
	case !inFile && owner == "" && !im.files[plansSpec.name].broken:
		w.fail("plan_code", "unknown plan %q: not in maintenance_plans.csv or the database", code)
	case owner != "" && w.v.AssetTag != "" && owner != w.v.AssetTag:
		w.fail("plan_code", "plan %q belongs to asset %q, not %q", code, owner, w.v.AssetTag)
	}
	if w.v.DueDate == nil {
		return
	}
	due := w.v.DueDate.Format(time.DateOnly)
	if l := dues.first(code+"\x00"+due, w.line); l > 0 {
		w.fail("due_date", "plan %q already has a work order due %s (line %d)", code, due, l)
	} else if holder, ok := db.planDues[code][due]; ok && (!im.opts.Upsert || holder != w.v.Number) {
		w.fail("due_date", "plan %q already has a work order due %s in the database", code, due)
	}
}

// checkInventory checks the inventory items' SKUs.
func (im *importer) checkInventory(db *inDB) {
	skus := unique{}
	for _, it := range im.inventory {
		im.checkKey(skus, it.row, "sku", it.v.SKU, "item", has(db.skus, it.v.SKU))
	}
}

// report adds the errors in file, line and column order.
func (im *importer) report(errs *errorList) {
	for _, spec := range importSpecs {
		f := im.files[spec.name]
		for _, e := range f.header {
			errs.add(e)
		}
		for _, r := range f.rows {
			slices.SortStableFunc(r.errs, func(a, b FieldError) int { return a.pos - b.pos })
			for _, e := range r.errs {
				errs.add(e)
			}
		}
	}
}

// dataset is the rows to write. A work order without created_at that is
// already in the database keeps its created_at (a new one gets now()).
func (im *importer) dataset(db *inDB) *dataset {
	ds := &dataset{}
	for _, t := range im.techs {
		ds.technicians = append(ds.technicians, t.v)
	}
	for _, a := range im.assets {
		ds.assets = append(ds.assets, a.v)
	}
	for _, p := range im.plans {
		ds.plans = append(ds.plans, p.v)
	}
	for _, w := range im.workOrders {
		if t, ok := db.woCreated[w.v.Number]; ok && w.v.CreatedAt == nil {
			w.v.CreatedAt = &t
		}
		ds.workOrders = append(ds.workOrders, w.v)
	}
	for _, it := range im.inventory {
		ds.inventory = append(ds.inventory, it.v)
	}
	return ds
}
