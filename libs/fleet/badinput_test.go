package fleet

import (
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

// TestBadCSVInput is the bad-input table of the CSV import: bad dates,
// unknown enum values, duplicate ids and the values whose derived fields
// would not fit the schema. Each import fails with exact, line-numbered
// messages (*ImportError) and writes nothing.
func TestBadCSVInput(t *testing.T) {
	const (
		techs = "code,name,email\n"
		items = "sku,name,quantity,unit_cost\n"
		wos   = "wo_number,asset_tag,plan_code,due_date,title,status,type,priority,created_at,started_at,completed_at\n"
	)
	cases := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		// Dates and timestamps.
		{"bad dates", map[string]string{"assets.csv": assetsHeader +
			"A-1,Van,van,2024-02-30\nA-2,Van,van,2024-1-5\nA-3,Van,van,24-01-05\nA-4,Van,van,2024/01/05\nA-5,Van,van,tomorrow\nA-6,Van,van,2024-01-05 \n" +
			"A-7,Van,van,+2024-01-05\nA-8,Van,van,20240105\nA-9,Van,van,10000-01-01\n"},
			[]string{
				`assets.csv:2: commissioned_date: invalid date "2024-02-30": want YYYY-MM-DD`,
				`assets.csv:3: commissioned_date: invalid date "2024-1-5": want YYYY-MM-DD`,
				`assets.csv:4: commissioned_date: invalid date "24-01-05": want YYYY-MM-DD`,
				`assets.csv:5: commissioned_date: invalid date "2024/01/05": want YYYY-MM-DD`,
				`assets.csv:6: commissioned_date: invalid date "tomorrow": want YYYY-MM-DD`,
				`assets.csv:8: commissioned_date: invalid date "+2024-01-05": want YYYY-MM-DD`,
				`assets.csv:9: commissioned_date: invalid date "20240105": want YYYY-MM-DD`,
				`assets.csv:10: commissioned_date: invalid date "10000-01-01": want YYYY-MM-DD`,
			}},
		{"bad timestamps", map[string]string{"assets.csv": assetA1, "work_orders.csv": wos +
			"W-1,A-1,,,Fix,,,,2024-05-01,,\nW-2,A-1,,,Fix,,,,,2024-05-01T25:00:00Z,\nW-3,A-1,,,Fix,,,,,,1714552200\n" +
			"W-4,A-1,,,Fix,,,,2024-05-01 08:00:00Z,,\n"},
			[]string{
				`work_orders.csv:2: created_at: invalid timestamp "2024-05-01": want RFC 3339, e.g. 2024-05-01T08:30:00Z`,
				`work_orders.csv:3: started_at: invalid timestamp "2024-05-01T25:00:00Z": want RFC 3339, e.g. 2024-05-01T08:30:00Z`,
				`work_orders.csv:4: completed_at: invalid timestamp "1714552200": want RFC 3339, e.g. 2024-05-01T08:30:00Z`,
				`work_orders.csv:5: created_at: invalid timestamp "2024-05-01 08:00:00Z": want RFC 3339, e.g. 2024-05-01T08:30:00Z`,
			}},
		// Enumerations: exact, case-sensitive values.
		{"unknown enum values", map[string]string{
			"assets.csv": "asset_tag,name,vehicle_type,status,commissioned_date\nA-1,Van,van,SOLD,2024-01-01\nA-2,Ship,boat,ACTIVE,2024-01-01\n",
			"maintenance_plans.csv": "code,asset_tag,name,interval_value,interval_unit,meter_interval,meter_unit,schedule_mode,priority,next_due_date,next_due_meter\n" +
				"P-1,A-1,Oil,3,fortnights,,,fixed,MEDIUM,2025-01-01,\nP-2,A-1,Oil,,,100,miles,sometimes,URGENT,,100\n",
			"work_orders.csv": wos + "W-1,A-1,,,Fix,open,REPAIR,low,,,\n",
			"technicians.csv": "code,name,email,active\nT-1,Ann,a@x,perhaps\n"},
			[]string{
				`technicians.csv:2: active: invalid boolean "perhaps": want true or false`,
				`assets.csv:2: status: invalid value "SOLD": want one of ACTIVE, INACTIVE, IN_MAINTENANCE, RETIRED`,
				`assets.csv:3: vehicle_type: invalid value "boat": want one of car, van, truck, bus, trailer, forklift`,
				`maintenance_plans.csv:2: interval_unit: invalid value "fortnights": want one of days, weeks, months, years`,
				`maintenance_plans.csv:3: meter_unit: invalid value "miles": want one of km, hours`,
				`maintenance_plans.csv:3: schedule_mode: invalid value "sometimes": want one of fixed, floating`,
				`maintenance_plans.csv:3: priority: invalid value "URGENT": want one of LOW, MEDIUM, HIGH, CRITICAL`,
				`work_orders.csv:2: status: invalid value "open": want one of OPEN, IN_PROGRESS, ON_HOLD, COMPLETED, CANCELLED`,
				`work_orders.csv:2: type: invalid value "REPAIR": want one of PREVENTIVE, CORRECTIVE`,
				`work_orders.csv:2: priority: invalid value "low": want one of LOW, MEDIUM, HIGH, CRITICAL`,
			}},
		// Duplicate ids, in every file; surrounding spaces do not make a new id.
		{"duplicate ids", map[string]string{
			"technicians.csv":       techs + "T-1,Ann,a@x\nT-2,Bob,b@x\n T-1 ,Cy,c@x\n",
			"assets.csv":            assetA1 + "A-1,Car,car,2024-01-01\n",
			"maintenance_plans.csv": plansHeader + "P-1,A-1,Oil,3,months,,,2025-01-01,,,\nP-1,A-1,Tyres,6,months,,,2025-01-01,,,\n",
			"work_orders.csv":       wos + "W-1,A-1,P-1,2025-01-01,Oil,,,,,,\nW-1,A-1,,,Fix,,,,,,\nW-2,A-1,P-1,2025-01-01,Oil again,,,,,,\n",
			"inventory.csv":         items + "S-1,Gloves,1,1\nS-1,Gloves,1,1\n"},
			[]string{
				`technicians.csv:4: code: duplicate code "T-1" (first on line 2)`,
				`assets.csv:3: asset_tag: duplicate asset_tag "A-1" (first on line 2)`,
				`maintenance_plans.csv:3: code: duplicate code "P-1" (first on line 2)`,
				`work_orders.csv:3: wo_number: duplicate wo_number "W-1" (first on line 2)`,
				`work_orders.csv:4: due_date: plan "P-1" already has a work order due 2025-01-01 (line 2)`,
				`inventory.csv:3: sku: duplicate sku "S-1" (first on line 2)`,
			}},
		// Values that parse but whose derived fields would not fit the schema.
		{"derived next due date past year 9999", map[string]string{"assets.csv": assetA1,
			"maintenance_plans.csv": "code,asset_tag,name,interval_value,interval_unit,last_completed_date\n" +
				"P-1,A-1,Oil,2147483647,years,2025-01-01\nP-2,A-1,Oil,2147483647,days,2025-01-01\nP-3,A-1,Oil,7975,years,2025-01-01\n"},
			[]string{
				`maintenance_plans.csv:2: next_due_date: last_completed_date plus the interval is past 9999-12-31`,
				`maintenance_plans.csv:3: next_due_date: last_completed_date plus the interval is past 9999-12-31`,
				`maintenance_plans.csv:4: next_due_date: last_completed_date plus the interval is past 9999-12-31`,
			}},
		{"derived next due meter too large", map[string]string{"assets.csv": assetA1,
			"maintenance_plans.csv": "code,asset_tag,name,meter_interval,meter_unit,last_completed_meter\n" +
				"P-1,A-1,Oil,99999999999.9,km,99999999999.9\nP-2,A-1,Oil,0.1,km,99999999999.9\n"},
			[]string{
				`maintenance_plans.csv:2: next_due_meter: last_completed_meter plus meter_interval is more than 99999999999.9`,
				`maintenance_plans.csv:3: next_due_meter: last_completed_meter plus meter_interval is more than 99999999999.9`,
			}},
		// Text PostgreSQL refuses, numbers out of the columns' range.
		{"unstorable text and numbers", map[string]string{"inventory.csv": items +
			"S-1,Glo\x00ves,1,1\nS-2,\xff\xfe,1,1\nS-3,Boots,1e10,1\nS-4,Boots,1,NaN\nS-5,Boots,1,Inf\nS-6,Boots,1,10000000000\n"},
			[]string{
				`inventory.csv:2: name: contains a NUL character`,
				`inventory.csv:3: name: is not valid UTF-8`,
				`inventory.csv:4: quantity: invalid integer "1e10"`,
				`inventory.csv:5: unit_cost: invalid number "NaN"`,
				`inventory.csv:6: unit_cost: invalid number "Inf"`,
				`inventory.csv:7: unit_cost: must be between 0 and 9999999999.99`,
			}},
		// Malformed CSV.
		{"SQL-looking values are data, not SQL", map[string]string{"technicians.csv": techs + "\"T-1'); DROP TABLE technicians; --\",Ann,a@x\n",
			"inventory.csv": items + "S-1,Gloves,1 OR 1=1,1\n"},
			[]string{`inventory.csv:2: quantity: invalid integer "1 OR 1=1"`}},
		{"unterminated quote", map[string]string{"technicians.csv": techs + "T-1,Ann,a@x\nT-2,\"Bob,b@x\n"},
			[]string{`technicians.csv:3: extraneous or missing " in quoted-field (the rest of the file was not read)`}},
		{"header only is fine, but a blank header is not", map[string]string{"technicians.csv": techs, "inventory.csv": "\n\n"},
			[]string{`inventory.csv:1: empty file: a header row is required`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool := pgtest.New(t)
			diffLines(t, importErrors(t, pool, writeFiles(t, tc.files)), tc.want)
			if got := tableCounts(t, pool); got != (Stats{}) {
				t.Fatalf("failed import wrote rows: %+v", got)
			}
		})
	}
}
