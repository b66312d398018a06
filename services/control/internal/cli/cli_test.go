package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/password"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

type result struct {
	code           int
	stdout, stderr string
}

// run executes the CLI in-process with the given environment.
func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	return runInput(t, nil, env, args...)
}

// runInput is run with stdin as the standard input.
func runInput(t *testing.T, stdin io.Reader, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := Run(ctx, args, stdin, &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

func count(t *testing.T, pool *pgxpool.Pool, table string) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// printedCounts parses the "table  N" lines of seed and import.
func printedCounts(t *testing.T, stdout string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for _, m := range regexp.MustCompile(`(?m)^(\w+)\s+(\d+)$`).FindAllStringSubmatch(stdout, -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		got[m[1]] = n
	}
	return got
}

// emptyDatabase creates a database without the schema on the test server.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	admin := os.Getenv(pgtest.EnvVar)
	if admin == "" {
		t.Fatalf("%s is not set", pgtest.EnvVar)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "cli_" + hex.EncodeToString(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Log(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Log(err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func TestMigrate(t *testing.T) {
	dbURL := emptyDatabase(t)

	// Before migrating, seed explains what is missing.
	r := run(t, nil, "seed", "--database-url", dbURL)
	if r.code != ExitError || !strings.Contains(r.stderr, "run 'cmmsflow migrate' first") {
		t.Fatalf("seed before migrate: %+v", r)
	}

	r = run(t, nil, "migrate", "--database-url", dbURL)
	if r.code != ExitOK || r.stdout != "schema is up to date\n" || !strings.Contains(r.stderr, "migration applied") {
		t.Fatalf("migrate: %+v", r)
	}
	pool, err := db.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, table := range []string{"assets", "work_orders", "runs"} {
		if n := count(t, pool, table); n != 0 {
			t.Fatalf("%s has %d rows", table, n)
		}
	}

	// Again: nothing to do.
	r = run(t, nil, "migrate", "--database-url", dbURL)
	if r.code != ExitOK || strings.Contains(r.stderr, "migration applied") {
		t.Fatalf("second migrate: %+v", r)
	}
}

// migrate --login makes each service's login a member of its role: the
// login may then do what the service does and nothing else.
func TestMigrateGrantsServiceLogins(t *testing.T) {
	dbURL := emptyDatabase(t)
	ctx := context.Background()
	admin, err := db.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	pmgen, reporter := "cli_pmgen_"+hex.EncodeToString(b), "cli_reporter_"+hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, `CREATE ROLE `+pmgen+` LOGIN PASSWORD 'pw'; CREATE ROLE `+reporter+` LOGIN PASSWORD 'pw'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `DROP ROLE `+pmgen+`, `+reporter) })

	r := run(t, nil, "migrate", "--database-url", dbURL, "--login", "pmgen")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "want SERVICE=LOGIN") {
		t.Fatalf("migrate --login pmgen: %+v", r)
	}
	r = run(t, nil, "migrate", "--database-url", dbURL, "--login", "pmgen="+pmgen, "--login", "reporter="+reporter)
	if r.code != ExitOK || !strings.Contains(r.stdout, "pmgen logs in as "+pmgen+" (member of cmmsflow_pmgen)") {
		t.Fatalf("migrate --login: %+v", r)
	}
	for login, svc := range map[string]string{pmgen: "pmgen", reporter: "reporter"} {
		var member bool
		if err := admin.QueryRow(ctx, `SELECT pg_has_role($1, $2, 'MEMBER')`, login, db.ServiceRole(svc)).Scan(&member); err != nil || !member {
			t.Errorf("%s in %s: %v (%v)", login, db.ServiceRole(svc), member, err)
		}
	}
	r = run(t, nil, "migrate", "--database-url", dbURL, "--login", "reporter="+pmgen)
	if r.code != ExitError || !strings.Contains(r.stderr, "already a member of cmmsflow_pmgen") {
		t.Fatalf("one login for two services: %+v", r)
	}
	u, _ := url.Parse(dbURL)
	u.User = url.UserPassword(pmgen, "pw")
	r = run(t, nil, "migrate", "--database-url", u.String())
	if r.code != ExitError || !strings.Contains(r.stderr, "may not change the schema") {
		t.Fatalf("migrate as a service's login: %+v", r)
	}
}

func TestSeed(t *testing.T) {
	pool, dbURL := pgtest.NewWithURL(t)
	env := map[string]string{EnvDatabaseURL: dbURL} // the flag defaults to $DATABASE_URL

	r := run(t, env, "seed", "--assets", "25", "--technicians", "4", "--inventory", "7", "--years", "1", "--seed", "9", "--now", "2025-06-15")
	if r.code != ExitOK {
		t.Fatalf("seed: %+v", r)
	}
	got := printedCounts(t, r.stdout)
	for _, table := range []string{"technicians", "assets", "maintenance_plans", "work_orders", "inventory_items"} {
		if n := count(t, pool, table); got[table] != n {
			t.Errorf("%s: printed %d, table has %d", table, got[table], n)
		}
	}
	if got["assets"] != 25 || got["technicians"] != 4 || got["inventory_items"] != 7 || got["work_orders"] == 0 {
		t.Errorf("counts: %v", got)
	}
	if !regexp.MustCompile(`(?m)^seeded \d+ rows in `).MatchString(r.stdout) {
		t.Errorf("no summary line:\n%s", r.stdout)
	}
	var last time.Time
	if err := pool.QueryRow(context.Background(), `SELECT max(created_at) FROM work_orders`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC); last.After(want) || last.Before(want.AddDate(0, 0, -30)) {
		t.Errorf("latest work order %v, want shortly before --now", last)
	}

	// Only an empty database is seeded.
	r = run(t, env, "seed", "--assets", "5")
	if r.code != ExitError || !strings.Contains(r.stderr, "seed only fills an empty database") {
		t.Fatalf("second seed: %+v", r)
	}
	if n := count(t, pool, "assets"); n != 25 {
		t.Fatalf("second seed changed assets: %d", n)
	}
}

func TestSeedUsageErrors(t *testing.T) {
	_, dbURL := pgtest.NewWithURL(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"seed", "--now", "yesterday"}, ExitUsage, `invalid argument "yesterday" for "--now" flag: want YYYY-MM-DD or RFC 3339`},
		{[]string{"seed", "--bogus"}, ExitUsage, "unknown flag: --bogus"},
		{[]string{"seed", "--assets", "many"}, ExitUsage, `invalid argument "many"`},
		{[]string{"seed", "extra"}, ExitUsage, `unknown command "extra"`},
		{[]string{"seed", "--assets", "-3"}, ExitError, "assets must be between 1 and 99999, got -3"},
		{[]string{"frobnicate"}, ExitUsage, `unknown command "frobnicate" for "cmmsflow"`},
		{[]string{"import"}, ExitUsage, "accepts 1 arg(s), received 0"},
		{[]string{"import", "--timezone", "Mars/Olympus_Mons", "dir"}, ExitUsage, `invalid --timezone "Mars/Olympus_Mons": want an IANA time zone name`},
	} {
		r := run(t, map[string]string{EnvDatabaseURL: dbURL}, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: got %d %q, want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
}

func TestNoDatabase(t *testing.T) {
	r := run(t, nil, "migrate")
	if r.code != ExitError || r.stderr != "cmmsflow: no database: pass --database-url or set DATABASE_URL\n" {
		t.Fatalf("%+v", r)
	}
}

func TestHelp(t *testing.T) {
	r := run(t, nil, "--help")
	if r.code != ExitOK {
		t.Fatalf("%+v", r)
	}
	for _, want := range []string{"Database commands:", "migrate", "seed", "import", "--database-url",
		"Pipeline commands", "pipelines", "trigger", "runs", "unpause", "--control", "--token-stdin",
		"$CMMSFLOW_TOKEN", "never\ntaken on the command line"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, r.stdout)
		}
	}
	if regexp.MustCompile(`(?m)^\s+--token\s`).MatchString(r.stdout) {
		t.Errorf("help still offers --token:\n%s", r.stdout)
	}
}

func TestUser(t *testing.T) {
	entryRE := regexp.MustCompile(`(?m)^API_USERS: airflow:(\$argon2id\$v=19\$m=19456,t=2,p=1\$[^$:]+\$[^$:]+):viewer$`)
	verifies := func(t *testing.T, stdout, pw string) {
		t.Helper()
		m := entryRE.FindStringSubmatch(stdout)
		if m == nil {
			t.Fatalf("output %q", stdout)
		}
		if ok, err := password.Verify(m[1], pw); !ok || err != nil {
			t.Fatalf("the printed hash does not verify the password: %v %v", ok, err)
		}
	}

	// Piped: the first line is the password, and it is not printed.
	r := runInput(t, strings.NewReader("s3cret,with:colons\r\nsecond line\n"), nil, "user", "airflow", "--role", "viewer")
	if r.code != ExitOK || strings.Contains(r.stdout, "s3cret") || strings.Contains(r.stdout, "password:") {
		t.Fatalf("piped: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	verifies(t, r.stdout, "s3cret,with:colons")

	// A character device (a terminal; /dev/null here): a random password, printed once.
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	r = runInput(t, devNull, nil, "user", "airflow", "--role", "viewer")
	m := regexp.MustCompile(`(?m)^password:  ([A-Za-z0-9_-]{24})$`).FindStringSubmatch(r.stdout)
	if r.code != ExitOK || m == nil {
		t.Fatalf("generated: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	verifies(t, r.stdout, m[1])

	if r := runInput(t, strings.NewReader("\n"), nil, "user", "airflow"); r.code != ExitError || !strings.Contains(r.stderr, "empty") {
		t.Errorf("empty password: %+v", r)
	}
	for _, args := range [][]string{{"user", "airflow", "--role", "root"}, {"user", "a b"}, {"user"}, {"user", "a", "b"}} {
		if r := runInput(t, strings.NewReader("pw\n"), nil, args...); r.code != ExitUsage || r.stdout != "" {
			t.Errorf("%v: exit %d %q", args, r.code, r.stdout)
		}
	}
}

func writeCSV(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestImport(t *testing.T) {
	pool, dbURL := pgtest.NewWithURL(t)
	good := writeCSV(t, map[string]string{
		"assets.csv": "asset_tag,name,vehicle_type,commissioned_date\nA-1,Van 1,van,2023-04-01\nA-2,Truck 2,truck,2021-09-15\n",
		"maintenance_plans.csv": "code,asset_tag,name,interval_value,interval_unit,next_due_date\n" +
			"P-1,A-1,Annual inspection,1,years,2025-04-01\n",
		"work_orders.csv": "wo_number,asset_tag,plan_code,due_date,title,status\nW-1,A-1,P-1,2024-04-01,Annual inspection,OPEN\n",
	})

	r := run(t, nil, "import", "--database-url", dbURL, good)
	if r.code != ExitOK {
		t.Fatalf("import: %+v", r)
	}
	got := printedCounts(t, r.stdout)
	if got["assets"] != 2 || got["maintenance_plans"] != 1 || got["work_orders"] != 1 || got["technicians"] != 0 {
		t.Fatalf("printed counts %v:\n%s", got, r.stdout)
	}
	if !strings.Contains(r.stdout, "imported 4 rows in ") {
		t.Errorf("no summary line:\n%s", r.stdout)
	}
	if n := count(t, pool, "assets"); n != 2 {
		t.Fatalf("assets = %d", n)
	}

	// The same files again: every duplicate is reported, nothing is written.
	r = run(t, nil, "import", "--database-url", dbURL, good)
	want := `assets.csv:2: asset_tag: asset "A-1" already exists in the database
assets.csv:3: asset_tag: asset "A-2" already exists in the database
maintenance_plans.csv:2: code: plan "P-1" already exists in the database
work_orders.csv:2: wo_number: work order "W-1" already exists in the database
work_orders.csv:2: due_date: plan "P-1" already has a work order due 2024-04-01 in the database
import failed: 5 errors; nothing was written
`
	if r.code != ExitError || r.stderr != want || r.stdout != "" {
		t.Fatalf("re-import: code %d\nstdout:\n%s\nstderr:\n%s\nwant stderr:\n%s", r.code, r.stdout, r.stderr, want)
	}

	// Bad rows: each error on its line, and the overflow count.
	var b strings.Builder
	b.WriteString("sku,name,quantity\n")
	for i := range 103 {
		b.WriteString("S-" + strconv.Itoa(i) + ",Gloves,-1\n")
	}
	r = run(t, nil, "import", "--database-url", dbURL, writeCSV(t, map[string]string{"inventory.csv": b.String()}))
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.code != ExitError || len(lines) != 102 ||
		lines[0] != "inventory.csv:2: quantity: must be between 0 and 2147483647" ||
		lines[100] != "and 3 more" || lines[101] != "import failed: 103 errors; nothing was written" {
		t.Fatalf("bad rows: code %d, %d lines:\n%s", r.code, len(lines), r.stderr)
	}
	if n := count(t, pool, "inventory_items"); n != 0 {
		t.Fatalf("inventory_items = %d after a failed import", n)
	}

	// A directory without CSV files is an error, not a silent success.
	r = run(t, nil, "import", "--database-url", dbURL, t.TempDir())
	if r.code != ExitError || !strings.Contains(r.stderr, "no CSV files in") {
		t.Fatalf("empty dir: %+v", r)
	}
}

// printedChanges parses the "table inserted updated unchanged" lines of
// import --upsert into "table:inserted/updated/unchanged".
func printedChanges(stdout string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)$`).FindAllStringSubmatch(stdout, -1) {
		out = append(out, m[1]+":"+m[2]+"/"+m[3]+"/"+m[4])
	}
	return out
}

func TestImportUpsert(t *testing.T) {
	pool, dbURL := pgtest.NewWithURL(t)
	files := map[string]string{
		"assets.csv":      "asset_tag,name,vehicle_type,commissioned_date\nA-1,Van 1,van,2023-04-01\nA-2,Truck 2,truck,2021-09-15\n",
		"work_orders.csv": "wo_number,asset_tag,title,status\nW-1,A-1,Brakes,OPEN\nW-2,A-2,Lights,OPEN\n",
	}
	upsert := func(want []string, summary string, args ...string) {
		t.Helper()
		r := run(t, nil, append([]string{"import", "--database-url", dbURL, "--upsert"}, args...)...)
		if got := printedChanges(r.stdout); r.code != ExitOK || !slices.Equal(got, want) || !strings.Contains(r.stdout, summary) {
			t.Fatalf("import --upsert %v: code %d, changes %v, want %v and %q\nstdout:\n%s\nstderr:\n%s", args, r.code, got, want, summary, r.stdout, r.stderr)
		}
	}
	unchanged := []string{"technicians:0/0/0", "assets:0/0/2", "maintenance_plans:0/0/0", "work_orders:0/0/2", "inventory_items:0/0/0"}
	upsert([]string{"technicians:0/0/0", "assets:2/0/0", "maintenance_plans:0/0/0", "work_orders:2/0/0", "inventory_items:0/0/0"},
		"upsert: 4 inserted, 0 updated, 0 unchanged in ", writeCSV(t, files))
	upsert(unchanged, "upsert: 0 inserted, 0 updated, 4 unchanged in ", writeCSV(t, files))

	// One changed status: a dry run counts it and writes nothing; then it is written.
	files["work_orders.csv"] = strings.Replace(files["work_orders.csv"], "Lights,OPEN", "Lights,COMPLETED", 1)
	files["work_orders.csv"] = strings.Replace(files["work_orders.csv"], "status\n", "status,completed_at\n", 1)
	files["work_orders.csv"] = strings.ReplaceAll(files["work_orders.csv"], "OPEN\n", "OPEN,\n")
	files["work_orders.csv"] = strings.Replace(files["work_orders.csv"], "COMPLETED\n", "COMPLETED,2025-03-01T12:00:00Z\n", 1)
	changed := []string{"technicians:0/0/0", "assets:0/0/2", "maintenance_plans:0/0/0", "work_orders:0/1/1", "inventory_items:0/0/0"}
	upsert(changed, "upsert: 0 inserted, 1 updated, 3 unchanged in ", "--dry-run", writeCSV(t, files))
	status := func() string {
		var s string
		if err := pool.QueryRow(context.Background(), `SELECT status FROM work_orders WHERE wo_number = 'W-2'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := status(); s != "OPEN" {
		t.Fatalf("after a dry run W-2 is %s", s)
	}
	upsert(changed, "; dry run: nothing was written", "--dry-run", writeCSV(t, files))
	upsert(changed, "upsert: 0 inserted, 1 updated, 3 unchanged in ", writeCSV(t, files))
	if s := status(); s != "COMPLETED" {
		t.Fatalf("W-2 is %s, want COMPLETED", s)
	}

	// A bad line: the error names file and line, and nothing is written (not W-3 either).
	files["work_orders.csv"] += "W-3,A-1,Mirror,OPEN,\nW-4,A-9,Horn,OPEN,\n"
	r := run(t, nil, "import", "--database-url", dbURL, "--upsert", writeCSV(t, files))
	want := "work_orders.csv:5: asset_tag: unknown asset \"A-9\": not in assets.csv or the database\nimport failed: 1 error; nothing was written\n"
	if r.code != ExitError || r.stderr != want || r.stdout != "" {
		t.Fatalf("bad line: code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if n := count(t, pool, "work_orders"); n != 2 {
		t.Fatalf("work_orders = %d after a failed upsert", n)
	}
}

// An export with its own header names and local timestamps imports with
// --columns and --timezone.
func TestImportMessyExport(t *testing.T) {
	pool, dbURL := pgtest.NewWithURL(t)
	dir := writeCSV(t, map[string]string{
		"assets.csv":      "Unit,Description,Class,Since\nA-1,Van 1,van,2023-04-01\n",
		"work_orders.csv": "Order,Unit,Description,Opened\nW-1,A-1,Brakes,2025-03-30 10:00:00\n",
	})
	columns := filepath.Join(t.TempDir(), "columns.txt")
	aliases := "# headers of our export\nassets.Unit = asset_tag\nassets.Description = name\nassets.Class = vehicle_type\nassets.Since = commissioned_date\n" +
		"work_orders.Order = wo_number\nwork_orders.Unit = asset_tag\nwork_orders.Description = title\nwork_orders.Opened = created_at\n"
	if err := os.WriteFile(columns, []byte(aliases), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "import", "--database-url", dbURL, "--columns", columns, dir)
	if r.code != ExitError || !strings.Contains(r.stderr, `work_orders.csv:2: created_at: timestamp "2025-03-30 10:00:00" has no time zone: pass --timezone`) {
		t.Fatalf("without --timezone: %+v", r)
	}
	r = run(t, nil, "import", "--database-url", dbURL, "--columns", columns, "--timezone", "Europe/Paris", dir)
	if r.code != ExitOK || !strings.Contains(r.stdout, "imported 2 rows in ") {
		t.Fatalf("import: %+v", r)
	}
	var got string
	if err := pool.QueryRow(context.Background(), `SELECT w.title || '/' || a.name || '/' || (w.created_at AT TIME ZONE 'UTC')
		FROM work_orders w JOIN assets a ON a.id = w.asset_id`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "Brakes/Van 1/2025-03-30 08:00:00" { // summer time began that night: UTC+2
		t.Fatalf("imported %q", got)
	}

	if err := os.WriteFile(columns, []byte("work_orders.Opened = opened_at\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, "import", "--database-url", dbURL, "--columns", columns, dir)
	if r.code != ExitError || !strings.Contains(r.stderr, `columns.txt:1: unknown column "opened_at" of work_orders.csv (known: wo_number, `) {
		t.Fatalf("bad alias file: %+v", r)
	}
}

func TestToken(t *testing.T) {
	r := run(t, nil, "token", "--role", "viewer", "--name", "dash")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	m := regexp.MustCompile(`(?m)^token:\s+(\S+)\nAPI_TOKENS: ([0-9a-f]{64}):viewer:dash$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("output %q", r.stdout)
	}
	sum := sha256.Sum256([]byte(m[1]))
	if hex.EncodeToString(sum[:]) != m[2] {
		t.Fatal("the printed hash is not the token's SHA-256")
	}
	for _, args := range [][]string{{"token", "--role", "root"}, {"token", "--name", "a b"}, {"token", "extra"}} {
		if r := run(t, nil, args...); r.code != ExitUsage {
			t.Errorf("%v: exit %d", args, r.code)
		}
	}
}
