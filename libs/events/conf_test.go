package events

import "testing"

func TestCheckConfValue(t *testing.T) {
	cases := []struct {
		f  ConfFormat
		v  string
		ok bool
	}{
		{ConfDate, "2026-01-31", true},
		{ConfDate, "2024-02-29", true},
		{ConfDate, "2025-02-29", false},
		{ConfDate, "2026-13-01", false},
		{ConfDate, "26-01-01", false},
		{ConfDate, "2026-01-01\n", false},
		{ConfDate, "２０２６-01-01", false},
		{ConfISOWeek, "2020-W53", true},
		{ConfISOWeek, "2021-W53", false},
		{ConfISOWeek, "2021-W52", true},
		{ConfISOWeek, "2021-w10", false},
		{ConfISOWeek, "2021-W1", false},
		{"other", "x", false},
	}
	for _, c := range cases {
		if err := CheckConfValue(c.f, c.v); (err == nil) != c.ok {
			t.Errorf("%s %q: %v", c.f, c.v, err)
		}
	}
}

func TestISOWeeksIn(t *testing.T) {
	for year, want := range map[int]int{2015: 53, 2020: 53, 2021: 52, 2026: 53, 2027: 52} {
		if got := ISOWeeksIn(year); got != want {
			t.Errorf("%d: %d weeks, want %d", year, got, want)
		}
	}
}

// A declared key must be a string in its format; other keys, of any JSON
// type, are kept for the run but are not what the steps read.
func TestValidateConf(t *testing.T) {
	pm, _ := LookupPipeline(PreventiveMaintenance)
	known, err := pm.ValidateConf(map[string]any{
		"as_of": "2026-11-30", "triggered_by": "ComposerClient", "retries": 3.0, "tags": []any{"a"}, "extra": nil,
	})
	if err != nil || len(known) != 1 || known["as_of"] != "2026-11-30" {
		t.Fatalf("known %v, %v", known, err)
	}
	for _, c := range []struct {
		conf map[string]any
		want string
	}{
		{map[string]any{"as_of": "2026-02-30"}, `conf: key "as_of": "2026-02-30" is not a calendar day`},
		{map[string]any{"as_of": 20261130.0}, `conf: key "as_of": the value must be a string (date)`},
		{map[string]any{"as_of": nil, "x": 1.0}, `conf: key "as_of": the value must be a string (date)`},
	} {
		if _, err := pm.ValidateConf(c.conf); err == nil || err.Error() != c.want {
			t.Errorf("%v: %v, want %s", c.conf, err, c.want)
		}
	}
	if known, err := pm.ValidateConf(nil); err != nil || len(known) != 0 {
		t.Errorf("nil conf: %v, %v", known, err)
	}
}
