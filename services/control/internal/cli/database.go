package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
)

func newMigrateCommand(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "migrate",
		GroupID: groupDatabase,
		Short:   "Apply the database schema migrations",
		Long:    "migrate brings the database schema up to the newest migration. It is safe to run repeatedly and concurrently.",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			return nil
		},
	}
}

func newSeedCommand(a *App) *cobra.Command {
	var (
		o   fleet.SeedOptions
		now string
	)
	cmd := &cobra.Command{
		Use:     "seed",
		GroupID: groupDatabase,
		Short:   "Fill an empty database with a synthetic demo fleet",
		Long: "seed generates a realistic synthetic vehicle fleet — technicians, assets, maintenance plans,\n" +
			"years of preventive and corrective work orders, inventory — and writes it in one transaction.\n" +
			"The same --seed and --now give the same data. It only fills an empty database.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if now != "" {
				t, err := parseNow(now)
				if err != nil {
					return &usageError{err}
				}
				o.Now = t
			}
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
	f.StringVar(&now, "now", "", "the day the history ends, YYYY-MM-DD or RFC 3339 (default: now)")
	return cmd
}

func parseNow(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid --now %q: want YYYY-MM-DD or RFC 3339", s)
	}
	return t.Add(12 * time.Hour), nil // midday: the day's 06:00 pipeline run is over
}

func newImportCommand(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "import DIR",
		GroupID: groupDatabase,
		Short:   "Import CMMS data from CSV files",
		Long: "import reads technicians.csv, assets.csv, maintenance_plans.csv, work_orders.csv and inventory.csv\n" +
			"(each optional) from DIR, validates every row and writes all of them in one transaction.\n" +
			"If anything is wrong it prints every problem as file:line: column: message, writes nothing\n" +
			"and exits with status 1. The format is described in docs/csv-format.md.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			pool, err := a.Pool(ctx)
			if err != nil {
				return err
			}
			start := time.Now()
			st, err := fleet.Import(ctx, pool, args[0])
			var ie *fleet.ImportError
			if errors.As(err, &ie) {
				w := cmd.ErrOrStderr()
				for _, e := range ie.Errors {
					fmt.Fprintln(w, e.String())
				}
				if more := ie.Total - len(ie.Errors); more > 0 {
					fmt.Fprintf(w, "and %d more\n", more)
				}
				fmt.Fprintf(w, "import failed: %s; nothing was written\n", plural(int64(ie.Total), "error"))
				return &exitError{ExitError}
			}
			if err != nil {
				return schemaHint(err)
			}
			printStats(cmd.OutOrStdout(), st)
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s in %s\n", plural(st.Total(), "row"), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}

func printStats(w io.Writer, st fleet.Stats) {
	for _, tc := range st.Tables() {
		fmt.Fprintf(w, "%-18s %8d\n", tc.Table, tc.Rows)
	}
}
