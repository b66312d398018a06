package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	_ "time/tzdata" // --timezone works on images without /usr/share/zoneinfo

	"github.com/spf13/cobra"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
)

func newMigrateCommand(a *App) *cobra.Command {
	var logins []string
	cmd := &cobra.Command{
		Use:     "migrate",
		GroupID: groupDatabase,
		Short:   "Apply the database schema migrations",
		Long: "migrate brings the database schema up to the newest migration. It is safe to run repeatedly and concurrently.\n" +
			"Run it as the login that owns the schema, the only login that needs to change it: the migrations\n" +
			"also create each service's group role, cmmsflow_<service>, granted exactly what the service\n" +
			"reads and writes (docs/database-roles.md). --login SERVICE=LOGIN then makes an existing login a\n" +
			"member of that service's role (repeat it, one per service); the services connect as those logins\n" +
			"and control runs with MIGRATE_ON_START=false.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			grants, err := parseLogins(logins)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			pool, err := a.Pool(ctx)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{
				ReplaceAttr: func(groups []string, at slog.Attr) slog.Attr {
					if len(groups) == 0 && at.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return at
				},
			}))
			if err := db.Migrate(ctx, pool, log); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "schema is up to date")
			for _, g := range grants {
				if err := db.GrantServiceLogin(ctx, pool, g[0], g[1]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s logs in as %s (member of %s)\n", g[0], g[1], db.ServiceRole(g[0]))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&logins, "login", nil, "SERVICE=LOGIN: make the existing LOGIN a member of SERVICE's role (repeatable)")
	return cmd
}

// parseLogins splits --login values into (service, login) pairs.
func parseLogins(values []string) ([][2]string, error) {
	out := make([][2]string, 0, len(values))
	for _, v := range values {
		svc, login, ok := strings.Cut(v, "=")
		if !ok || svc == "" || login == "" {
			return nil, &usageError{fmt.Errorf("invalid --login %q: want SERVICE=LOGIN, e.g. pmgen=pmgen_login", v)}
		}
		out = append(out, [2]string{svc, login})
	}
	return out, nil
}

func newSeedCommand(a *App) *cobra.Command {
	var o fleet.SeedOptions
	cmd := &cobra.Command{
		Use:     "seed",
		GroupID: groupDatabase,
		Short:   "Fill an empty database with a synthetic demo fleet",
		Long: "seed generates a realistic synthetic vehicle fleet — technicians, assets, maintenance plans,\n" +
			"years of preventive and corrective work orders, inventory — and writes it in one transaction.\n" +
			"The same --seed and --now give the same data. It only fills an empty database.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pool, err := a.Pool(ctx)
			if err != nil {
				return err
			}
			empty, err := fleet.IsEmpty(ctx, pool)
			if err != nil {
				return schemaHint(err)
			}
			if !empty {
				return fleet.ErrNotEmpty
			}
			start := time.Now()
			st, err := fleet.Seed(ctx, pool, o)
			if err != nil {
				return schemaHint(err)
			}
			printStats(cmd.OutOrStdout(), st)
			fmt.Fprintf(cmd.OutOrStdout(), "seeded %s in %s\n", plural(st.Total(), "row"), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Assets, "assets", fleet.DefaultAssets, "number of vehicles")
	f.IntVar(&o.Technicians, "technicians", fleet.DefaultTechnicians, "number of technicians")
	f.IntVar(&o.Years, "years", fleet.DefaultYears, "years of work-order history")
	f.IntVar(&o.InventoryItems, "inventory", fleet.DefaultInventoryItems, "number of inventory items")
	f.Uint64Var(&o.Seed, "seed", 1, "random seed")
	f.Var(nowFlag{&o.Now}, "now", "the day the history ends, YYYY-MM-DD or RFC 3339 (default: now)")
	return cmd
}

// nowFlag is --now: a day (YYYY-MM-DD, taken at midday: the day's 06:00
// pipeline run is over) or an RFC 3339 time. Unset, it leaves the zero time.
type nowFlag struct{ t *time.Time }

func (f nowFlag) Type() string { return "date" }

func (f nowFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f nowFlag) Set(s string) error {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		*f.t = t
		return nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return fmt.Errorf("want YYYY-MM-DD or RFC 3339")
	}
	*f.t = t.Add(12 * time.Hour)
	return nil
}

type importFlags struct {
	upsert, dryRun    bool
	timezone, columns string
}

func newImportCommand(a *App) *cobra.Command {
	var f importFlags
	cmd := &cobra.Command{
		Use:     "import DIR",
		GroupID: groupDatabase,
		Short:   "Import CMMS data from CSV files",
		Long: "import reads technicians.csv, assets.csv, maintenance_plans.csv, work_orders.csv and inventory.csv\n" +
			"(each optional) from DIR, validates every row and writes all of them in one transaction.\n" +
			"If anything is wrong it prints every problem as file:line: column: message, writes nothing\n" +
			"and exits with status 1. The format is described in docs/csv-format.md.\n\n" +
			"Without --upsert a key (code, asset_tag, wo_number, sku) already in the database is an error.\n" +
			"With --upsert new keys are inserted, rows that differ from the database are updated and the\n" +
			"others are left alone; the counts are printed per table. Run it on every export (e.g. nightly)\n" +
			"to keep the copy current. --dry-run does all of it in a transaction that is rolled back: the\n" +
			"same checks and counts, nothing written.\n\n" +
			"--timezone reads timestamps without a zone (YYYY-MM-DD HH:MM:SS) as local time in an IANA zone\n" +
			"(e.g. Europe/Paris); without it they are errors. --columns names a file of header aliases, one\n" +
			"a line: file.header = column (e.g. work_orders.WO Number = wo_number).",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := f.options()
			if err != nil {
				return err
			}
			return runImport(cmd, a, args[0], o)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&f.upsert, "upsert", false, "insert new keys, update changed rows, leave unchanged ones")
	fs.BoolVar(&f.dryRun, "dry-run", false, "check and count as a real run would, write nothing")
	fs.StringVar(&f.timezone, "timezone", "", "IANA time zone of timestamps without one, e.g. Europe/Paris")
	fs.StringVar(&f.columns, "columns", "", "file of header aliases (file.header = column lines)")
	return cmd
}

func (f importFlags) options() (fleet.ImportOptions, error) {
	o := fleet.ImportOptions{Upsert: f.upsert, DryRun: f.dryRun}
	if f.timezone != "" {
		loc, err := time.LoadLocation(f.timezone)
		if err != nil || f.timezone == "Local" {
			return o, &usageError{fmt.Errorf("invalid --timezone %q: want an IANA time zone name, e.g. Europe/Paris", f.timezone)}
		}
		o.Location = loc
	}
	if f.columns != "" {
		aliases, err := fleet.ReadColumnAliases(f.columns)
		if err != nil {
			return o, err
		}
		o.Columns = aliases
	}
	return o, nil
}

func runImport(cmd *cobra.Command, a *App, dir string, o fleet.ImportOptions) error {
	ctx := cmd.Context()
	pool, err := a.Pool(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	ch, err := fleet.ImportWith(ctx, pool, dir, o)
	var ie *fleet.ImportError
	if errors.As(err, &ie) {
		printImportErrors(cmd.ErrOrStderr(), ie)
		return &exitError{ExitError}
	}
	if err != nil {
		return schemaHint(err)
	}
	w, took := cmd.OutOrStdout(), time.Since(start).Round(time.Millisecond)
	var summary string
	if o.Upsert {
		printChanges(w, ch)
		sum := ch.Sum()
		summary = fmt.Sprintf("upsert: %d inserted, %d updated, %d unchanged in %s", sum.Inserted, sum.Updated, sum.Unchanged, took)
	} else {
		st := ch.Stats()
		printStats(w, st)
		summary = fmt.Sprintf("imported %s in %s", plural(st.Total(), "row"), took)
	}
	if o.DryRun {
		summary += "; dry run: nothing was written"
	}
	fmt.Fprintln(w, summary)
	return nil
}

func printImportErrors(w io.Writer, ie *fleet.ImportError) {
	for _, e := range ie.Errors {
		fmt.Fprintln(w, e.String())
	}
	if more := ie.Total - len(ie.Errors); more > 0 {
		fmt.Fprintf(w, "and %d more\n", more)
	}
	fmt.Fprintf(w, "import failed: %s; nothing was written\n", plural(int64(ie.Total), "error"))
}

func printChanges(w io.Writer, ch fleet.Changes) {
	fmt.Fprintf(w, "%-18s %9s %9s %9s\n", "table", "inserted", "updated", "unchanged")
	for _, c := range ch {
		fmt.Fprintf(w, "%-18s %9d %9d %9d\n", c.Table, c.Inserted, c.Updated, c.Unchanged)
	}
}

func printStats(w io.Writer, st fleet.Stats) {
	for _, tc := range st.Tables() {
		fmt.Fprintf(w, "%-18s %8d\n", tc.Table, tc.Rows)
	}
}
