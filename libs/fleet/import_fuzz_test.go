package fleet

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// validate is Import up to the write, against an empty database: the files
// read, parsed and checked, the errors reported. (Import adds only the
// database's keys, which an empty database does not have, and the write.)
func validate(dir string) (*importer, *ImportError, error) {
	im := &importer{files: map[string]*csvFile{}}
	if err := im.load(dir); err != nil {
		return nil, nil, err
	}
	im.check(emptyInDB())
	var errs errorList
	im.report(&errs)
	if err := errs.err(); err != nil {
		return im, err.(*ImportError), nil
	}
	return im, nil, nil
}

// FuzzImportCSV writes the fuzzer's five files (an empty one is left out)
// and validates them as Import does, without a database. It never panics;
// either the import fails with well-formed, ordered, line-numbered errors,
// or every row it would write satisfies the schema's constraints (types,
// CHECKs, unique keys, references, text PostgreSQL stores) — the rows the
// database would refuse are exactly what must be reported instead.
func FuzzImportCSV(f *testing.F) {
	read := func(dir, name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", dir, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			f.Fatal(err)
		}
		return string(b)
	}
	for _, dir := range []string{"good", "bad", "more"} {
		f.Add(read(dir, "technicians.csv"), read(dir, "assets.csv"), read(dir, "maintenance_plans.csv"), read(dir, "work_orders.csv"), read(dir, "inventory.csv"))
	}
	f.Add("code,name,email\nT-1,Ann,a@x\n", assetA1, plansHeader+"P-1,A-1,Oil,3,months,,,2025-01-01,,,\n",
		woHeader+"W-1,A-1,P-1,2025-01-01,Oil,,,,T-1\nW-2,A-1,P-1,2025-01-01,Oil,,,,\n", "sku,name\nS-1,Gloves\nS-1,Boots\n")
	f.Add("", assetA1, "code,asset_tag,name,interval_value,interval_unit,last_completed_date\nP-1,A-1,Oil,2147483647,years,2025-01-01\n", "", "")
	f.Add("", assetA1, "code,asset_tag,name,meter_interval,meter_unit,last_completed_meter\nP-1,A-1,Oil,99999999999.9,km,99999999999.9\n", "", "")
	f.Add("", "asset_tag,name,vehicle_type,commissioned_date,status\nA-1,Van,van,2024-02-30,SOLD\n", "", "", "sku,name,quantity\nS-1,\"Glo\nves\",1 OR 1=1\n")
	f.Add("code,name,email\n\"T-1'); DROP TABLE technicians; --\",Ann,a@x\n", "", "", "", "sku,name,location\nS-1,Gl\xffoves,a\x00b\n")
	f.Add("\ufeffcode,name,email\r\nT-1,Ann,a@x\r\n", "", "", "", "sku,name\nS-2,12\" wrench\n")

	// One directory for the process (a worker runs one input at a time): a
	// directory per input makes minimising an input slow.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, techs, assets, plans, workOrders, inventory string) {
		for name, content := range map[string]string{techniciansSpec.name: techs, assetsSpec.name: assets, plansSpec.name: plans,
			workOrdersSpec.name: workOrders, inventorySpec.name: inventory} {
			path := filepath.Join(dir, name)
			if content == "" {
				if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				continue
			}
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		im, ie, err := validate(dir)
		if err != nil {
			t.Fatalf("reading files written a moment ago: %v", err)
		}
		if ie != nil {
			checkErrors(t, ie)
			return
		}
		checkDataset(t, im.dataset(emptyInDB()))
	})
}

func checkErrors(t *testing.T, ie *ImportError) {
	t.Helper()
	if ie.Total < len(ie.Errors) || len(ie.Errors) == 0 || len(ie.Errors) > MaxReportedErrors {
		t.Fatalf("ImportError with %d errors of %d", len(ie.Errors), ie.Total)
	}
	files := ImportFiles()
	lastFile, lastLine := 0, 0
	for _, e := range ie.Errors {
		fi := slices.Index(files, e.File)
		if fi < 0 || e.Line < 1 || e.Message == "" {
			t.Fatalf("malformed error %q", e.String())
		}
		if fi < lastFile || (fi == lastFile && e.Line < lastLine) {
			t.Fatalf("error %q out of file and line order", e.String())
		}
		lastFile, lastLine = fi, e.Line
	}
	if !strings.HasPrefix(ie.Error(), "fleet: import failed with ") {
		t.Fatalf("message %q", ie.Error())
	}
}

// checkDataset asserts what the schema (libs/db/migrations/00001_cmms.sql)
// would check of rows written to an empty database.
func checkDataset(t *testing.T, ds *dataset) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("accepted a row the database refuses: "+format, args...)
	}
	text := func(what string, vs ...string) {
		t.Helper()
		for _, v := range vs {
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				fail("%s %q is not storable text", what, v)
			}
		}
	}
	required := func(what, v string) {
		t.Helper()
		if v == "" {
			fail("%s is empty", what)
		}
	}
	date := func(what string, d *time.Time) {
		t.Helper()
		if d != nil && (d.Year() < 0 || d.Year() > 9999) {
			fail("%s %v is out of range", what, *d)
		}
	}
	number := func(what string, v *float64, n numeric, positive bool) {
		t.Helper()
		if v != nil && (*v < 0 || (positive && *v == 0) || *v > n.max) {
			fail("%s %v is out of range", what, *v)
		}
	}
	in := func(what, v string, allowed []string) {
		t.Helper()
		if !slices.Contains(allowed, v) {
			fail("%s %q is not one of %v", what, v, allowed)
		}
	}
	techs, assets, plans, wos, skus, dues := map[string]bool{}, map[string]bool{}, map[string]string{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range ds.technicians {
		text("technician", r.Code, r.Name, r.Email, r.Phone, r.Skill)
		required("technician code", r.Code)
		required("technician name", r.Name)
		required("technician email", r.Email)
		if techs[r.Code] {
			fail("duplicate technician %q", r.Code)
		}
		techs[r.Code] = true
	}
	for _, r := range ds.assets {
		text("asset", r.Tag, r.Name, r.Type, r.Make, r.Model, r.Status, r.Location)
		required("asset tag", r.Tag)
		required("asset name", r.Name)
		in("vehicle_type", r.Type, VehicleTypes)
		in("status", r.Status, AssetStatuses)
		date("commissioned_date", &r.Commissioned)
		number("meter_reading", &r.Meter, numeric12_1, false)
		number("engine_hours", &r.Hours, numeric10_1, false)
		if r.Year != nil && (*r.Year < 1900 || *r.Year > 2100) {
			fail("year %d", *r.Year)
		}
		if assets[r.Tag] {
			fail("duplicate asset %q", r.Tag)
		}
		assets[r.Tag] = true
	}
	for _, r := range ds.plans {
		text("plan", r.Code, r.AssetTag, r.Name, r.Description, r.TechCode)
		required("plan code", r.Code)
		required("plan name", r.Name)
		if !assets[r.AssetTag] {
			fail("plan %q on unknown asset %q", r.Code, r.AssetTag)
		}
		if r.TechCode != "" && !techs[r.TechCode] {
			fail("plan %q with unknown technician %q", r.Code, r.TechCode)
		}
		if (r.IntervalValue == nil) != (r.IntervalUnit == nil) || (r.MeterInterval == nil) != (r.MeterUnit == nil) ||
			(r.IntervalValue == nil && r.MeterInterval == nil) {
			fail("plan %q intervals %v %v %v %v", r.Code, r.IntervalValue, r.IntervalUnit, r.MeterInterval, r.MeterUnit)
		}
		if r.IntervalValue != nil && *r.IntervalValue <= 0 {
			fail("interval_value %d", *r.IntervalValue)
		}
		if r.IntervalUnit != nil {
			in("interval_unit", *r.IntervalUnit, IntervalUnits)
		}
		if r.MeterUnit != nil {
			in("meter_unit", *r.MeterUnit, MeterUnits)
		}
		number("meter_interval", r.MeterInterval, numeric12_1, true)
		number("next_due_meter", r.NextDueMeter, numeric12_1, false)
		number("last_completed_meter", r.LastCompletedMeter, numeric12_1, false)
		number("estimated_hours", &r.EstimatedHours, numeric6_2, false)
		date("next_due_date", r.NextDueDate)
		date("last_completed_date", r.LastCompletedDate)
		date("end_date", r.EndDate)
		if r.LeadDays < 0 {
			fail("lead_days %d", r.LeadDays)
		}
		in("schedule_mode", r.Mode, ScheduleModes)
		in("priority", r.Priority, Priorities)
		if _, dup := plans[r.Code]; dup {
			fail("duplicate plan %q", r.Code)
		}
		plans[r.Code] = r.AssetTag
	}
	for _, r := range ds.workOrders {
		text("work order", r.Number, r.AssetTag, r.PlanCode, r.Type, r.Status, r.Priority, r.Title, r.Description, r.TechCode)
		required("wo_number", r.Number)
		required("title", r.Title)
		if !assets[r.AssetTag] {
			fail("work order %q on unknown asset %q", r.Number, r.AssetTag)
		}
		if r.TechCode != "" && !techs[r.TechCode] {
			fail("work order %q with unknown technician %q", r.Number, r.TechCode)
		}
		if r.PlanCode != "" {
			owner, ok := plans[r.PlanCode]
			if !ok || owner != r.AssetTag {
				fail("work order %q: plan %q of asset %q", r.Number, r.PlanCode, owner)
			}
			if r.DueDate == nil {
				fail("work order %q: plan without due date", r.Number)
			}
			key := r.PlanCode + "\x00" + r.DueDate.Format(time.DateOnly)
			if dues[key] {
				fail("two work orders of plan %q due %v", r.PlanCode, r.DueDate)
			}
			dues[key] = true
		}
		in("type", r.Type, WorkOrderTypes)
		in("status", r.Status, WorkOrderStatuses)
		in("priority", r.Priority, Priorities)
		date("due_date", r.DueDate)
		if r.StartedAt != nil && r.CompletedAt != nil && r.CompletedAt.Before(*r.StartedAt) {
			fail("work order %q completed before started", r.Number)
		}
		number("repair_hours", r.RepairHours, numeric8_2, false)
		if r.Skipped < 0 {
			fail("skipped_occurrences %d", r.Skipped)
		}
		if wos[r.Number] {
			fail("duplicate work order %q", r.Number)
		}
		wos[r.Number] = true
	}
	for _, r := range ds.inventory {
		text("item", r.SKU, r.Name, r.Category, r.Location)
		required("sku", r.SKU)
		required("item name", r.Name)
		if r.Quantity < 0 || r.ReorderLevel < 0 {
			fail("item %q quantities %d %d", r.SKU, r.Quantity, r.ReorderLevel)
		}
		number("unit_cost", &r.UnitCost, numeric12_2, false)
		if skus[r.SKU] {
			fail("duplicate sku %q", r.SKU)
		}
		skus[r.SKU] = true
	}
}
