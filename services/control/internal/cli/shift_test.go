package cli

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

func int64Of(t *testing.T, pool *pgxpool.Pool, sql string) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestShift(t *testing.T) {
	pool, dbURL := pgtest.NewWithURL(t)
	env := map[string]string{EnvDatabaseURL: dbURL}
	if r := run(t, env, "seed", "--assets", "40", "--seed", "9", "--now", "2025-06-15"); r.code != ExitOK {
		t.Fatalf("seed: %+v", r)
	}
	const agedBy6 = `SELECT count(*) FROM assets WHERE commissioned_date = (created_at AT TIME ZONE 'UTC')::date - 2191`
	shiftArgs := []string{"shift", "--age-years", "6", "--failure-rate", "3", "--seed", "4", "--now", "2025-06-15"}
	r := run(t, env, shiftArgs...)
	m := regexp.MustCompile(`^40 assets aged by 6 years\n0 corrective work orders of an earlier shift removed, (\d+) added\n$`).FindStringSubmatch(r.stdout)
	if r.code != ExitOK || m == nil {
		t.Fatalf("shift: %+v", r)
	}
	added, _ := strconv.ParseInt(m[1], 10, 64)
	if n := int64Of(t, pool, agedBy6); n != 40 {
		t.Errorf("%d of 40 assets commissioned 6 years before their record", n)
	}
	if n := int64Of(t, pool, `SELECT count(*) FROM work_orders WHERE wo_number LIKE 'SHIFT-%' AND type = 'CORRECTIVE'`); n != added || n == 0 {
		t.Errorf("%d SHIFT- corrective work orders, printed %d added", n, added)
	}

	// Idempotent: the same shift again moves nothing and replaces the work orders.
	r = run(t, env, shiftArgs...)
	if want := "0 assets aged by 6 years\n" + strconv.FormatInt(added, 10) + " corrective work orders of an earlier shift removed, " +
		strconv.FormatInt(added, 10) + " added\n"; r.code != ExitOK || r.stdout != want {
		t.Fatalf("second shift: %+v, want stdout %q", r, want)
	}
	if n := int64Of(t, pool, agedBy6); n != 40 {
		t.Errorf("after the second shift, %d of 40 assets aged by 6 years", n)
	}
}

func TestShiftErrors(t *testing.T) {
	_, dbURL := pgtest.NewWithURL(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"shift", "--age-years", "old"}, ExitUsage, `invalid argument "old"`},
		{[]string{"shift", "--now", "soon"}, ExitUsage, `invalid argument "soon" for "--now" flag: want YYYY-MM-DD or RFC 3339`},
		{[]string{"shift", "extra"}, ExitUsage, `unknown command "extra"`},
		{[]string{"shift", "--failure-rate", "0.5"}, ExitError, "failure rate factor must be between 1 and 10, got 0.5"},
		{[]string{"shift", "--age-years", "25"}, ExitError, "age shift must be between 0 and 20 years, got 25"},
	} {
		r := run(t, map[string]string{EnvDatabaseURL: dbURL}, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: got %d %q, want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	r := run(t, nil, "--help")
	if !strings.Contains(r.stdout, "shift") || !strings.Contains(r.stdout, "Age the demo fleet or raise its breakdown rate") {
		t.Errorf("help lacks shift:\n%s", r.stdout)
	}
}
