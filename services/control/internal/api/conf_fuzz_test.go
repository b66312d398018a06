package api

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

var (
	canonicalDate = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$`)
	canonicalWeek = regexp.MustCompile(`^[0-9]{4}-W(0[1-9]|[1-4][0-9]|5[0-3])$`)
)

// FuzzConfValidator: ParseConf and validateIdempotencyKey never panic; what
// they accept is accepted again (they are pure), an undeclared key is kept
// in the conf's JSON and not among the values steps read, every accepted
// value of a declared key is in its format's
// canonical form (a real calendar day, an ISO week the year has) — so no
// SQL-looking string, whitespace or control character ever passes — and an
// accepted idempotency key is 1-128 characters of [A-Za-z0-9._:-].
func FuzzConfValidator(f *testing.F) {
	for _, s := range []struct {
		pipeline   uint8
		key, value string
		idem       string
	}{
		{1, "as_of", "2026-02-28", ""},
		{1, "as_of", "2024-02-29", "nightly-2026.01:a_b"},
		{1, "as_of", "2025-02-29", ""},
		{1, "as_of", "2026-03-01'; DROP TABLE runs; --", "k'; DELETE FROM runs; --"},
		{1, "as_of) VALUES ('x", "2026-03-01", ""},
		{1, "as_of", "2026-03-01\n", "k\n"},
		{1, "as_of", "２０２６-01-01", ""},
		{1, "as_of", "0000-01-01", strings.Repeat("k", 129)},
		{2, "week", "2026-W53", strings.Repeat("k", 128)},
		{2, "week", "2025-W53", ""},
		{2, "week", "2026-W00", ""},
		{2, "week", "1 OR 1=1", "1 OR 1=1"},
		{2, "week", "0000-W52", ""},
		{0, "snapshot_date", "2026-01-31", ""},
		{0, "snapshot_date", "", ""},
		{0, "", "", ""},
		{3, "week", "2026-W01", ""},
	} {
		f.Add(s.pipeline, s.key, s.value, s.idem)
	}
	f.Fuzz(func(t *testing.T, pipeline uint8, key, value, idem string) {
		pl := events.Pipelines[int(pipeline)%len(events.Pipelines)]
		obj := map[string]any{key: value}
		conf, err := ParseConf(pl, obj)
		if _, again := ParseConf(pl, obj); (err == nil) != (again == nil) {
			t.Fatalf("ParseConf is not deterministic: %v then %v", err, again)
		}
		ck, declared := pl.ConfKey(key)
		if err != nil {
			if _, ok := toStatus(err); !ok || !strings.Contains(err.Error(), "conf: ") {
				t.Fatalf("rejection %v is not an InvalidArgument naming the conf", err)
			}
			if !declared && len(value)+len(key) < MaxConfBytes/8 {
				t.Fatalf("rejected undeclared key %q: %v", key, err)
			}
		} else if !declared {
			// Kept for the run (Airflow's conf), never read by a step.
			if _, ok := conf.Known[key]; ok || !sameConf(string(conf.JSON), mustJSON(t, obj)) {
				t.Fatalf("undeclared key %q: known %v, JSON %s", key, conf.Known, conf.JSON)
			}
		} else {
			if conf.Known[key] != value {
				t.Fatalf("declared key %q: known %v", key, conf.Known)
			}
			switch ck.Format {
			case events.ConfDate:
				d, perr := time.Parse(time.DateOnly, value)
				if !canonicalDate.MatchString(value) || perr != nil || d.Format(time.DateOnly) != value {
					t.Fatalf("accepted %q as a date", value)
				}
			case events.ConfISOWeek:
				if !canonicalWeek.MatchString(value) {
					t.Fatalf("accepted %q as an ISO week", value)
				}
				year, _ := strconv.Atoi(value[:4])
				week, _ := strconv.Atoi(value[6:])
				// The Thursday of an ISO week lies in the week's year.
				jan4 := time.Date(year, time.January, 4, 0, 0, 0, 0, time.UTC)
				thu := jan4.AddDate(0, 0, -((int(jan4.Weekday())+6)%7)+3+7*(week-1))
				if y, w := thu.ISOWeek(); y != year || w != week {
					t.Fatalf("accepted %q, a week %d does not have", value, year)
				}
			default:
				t.Fatalf("accepted a value of format %q", ck.Format)
			}
		}
		err = validateIdempotencyKey(idem)
		if ok := idem == "" || (len(idem) <= 128 && strings.Trim(idem, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == ""); ok != (err == nil) {
			t.Fatalf("idempotency key %q: %v", idem, err)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
