package features

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestColumnsMatchRowTags(t *testing.T) {
	rt := reflect.TypeFor[Row]()
	var tags []string
	for f := range rt.Fields() {
		tags = append(tags, strings.Split(f.Tag.Get("parquet"), ",")[0])
	}
	if !slices.Equal(tags, Columns) {
		t.Fatalf("Row parquet tags %v\n!= Columns %v", tags, Columns)
	}
	for _, n := range Numeric {
		if !slices.Contains(Columns, n) {
			t.Errorf("numeric %q is not a column", n)
		}
	}
}

// TestVectorOrder sets each numeric field to a distinct value through its
// tag and checks Vector puts it at Numeric's index.
func TestVectorOrder(t *testing.T) {
	var r Row
	rv := reflect.ValueOf(&r).Elem()
	for i := range rv.NumField() {
		name := strings.Split(rv.Type().Field(i).Tag.Get("parquet"), ",")[0]
		j := slices.Index(Numeric, name)
		if j < 0 {
			continue
		}
		switch f := rv.Field(i); f.Kind() {
		case reflect.Int32:
			f.SetInt(int64(j + 1))
		case reflect.Float64:
			f.SetFloat(float64(j + 1))
		default:
			t.Fatalf("numeric column %s has kind %s", name, f.Kind())
		}
	}
	v := r.Vector()
	if len(v) != len(Numeric) {
		t.Fatalf("Vector has %d values, Numeric %d names", len(v), len(Numeric))
	}
	for i, x := range v {
		if x != float64(i+1) {
			t.Errorf("Vector[%d] (%s) = %v, want %d", i, Numeric[i], x, i+1)
		}
	}
}

func TestOneHotAndLabel(t *testing.T) {
	r := Row{VehicleType: "truck", Label: Unlabelled}
	if got := r.VehicleTypeOneHot(); !slices.Equal(got, []float64{0, 0, 1, 0, 0, 0}) {
		t.Fatal(got)
	}
	if r.Labelled() || !(Row{Label: 0}).Labelled() {
		t.Fatal("Labelled")
	}
	if got := (Row{VehicleType: "boat"}).VehicleTypeOneHot(); slices.Contains(got, 1) {
		t.Fatal(got)
	}
}

func TestDates(t *testing.T) {
	d, err := ParseDate("2026-03-01")
	if err != nil {
		t.Fatal(err)
	}
	if FormatDate(d) != "2026-03-01" || DayTime(d) != time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) {
		t.Fatal(FormatDate(d), DayTime(d))
	}
	if Day(time.Date(2026, 3, 1, 23, 59, 0, 0, time.FixedZone("x", 3600))) != d {
		t.Fatal("Day takes the UTC date")
	}
	if Day(time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC)) != -1 {
		t.Fatal("before the epoch")
	}
	if _, err := ParseDate("2026-13-01"); err == nil {
		t.Fatal("bad date accepted")
	}
	if Micros(DayTime(1)) != MicrosPerDay {
		t.Fatal("Micros")
	}
}
