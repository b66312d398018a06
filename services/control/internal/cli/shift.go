package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cmmsflow/cmmsflow/libs/fleet"
)

func newShiftCommand(a *App) *cobra.Command {
	var o fleet.ShiftOptions
	cmd := &cobra.Command{
		Use:     "shift",
		GroupID: groupDatabase,
		Short:   "Age the demo fleet or raise its breakdown rate, for drift monitoring",
		Long: "shift moves a demo fleet that seed wrote away from what a model was trained on, so that\n" +
			"model monitoring has drift to detect: --age-years commissions every vehicle that many years\n" +
			"earlier (its meters and its plans' meters grow with it), --failure-rate multiplies the\n" +
			"breakdowns of the last year of every vehicle in service by adding corrective work orders\n" +
			"(numbered SHIFT-…). Pass seed's --now. The same flags give the same rows; shift is idempotent,\n" +
			"and a second shift replaces the first: --age-years 0 --failure-rate 1 restores the seeded fleet.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pool, err := a.Pool(ctx)
			if err != nil {
				return err
			}
			st, err := fleet.Shift(ctx, pool, o)
			if err != nil {
				return schemaHint(err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s aged by %g years\n", plural(st.AssetsAged, "asset"), o.AgeYears)
			fmt.Fprintf(w, "%s of an earlier shift removed, %d added\n", plural(st.WorkOrdersRemoved, "corrective work order"), st.WorkOrdersAdded)
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&o.AgeYears, "age-years", 0, "years added to every vehicle's age as seeded (0 to 20)")
	f.Float64Var(&o.FailureRate, "failure-rate", 1, "factor on the last year's breakdowns of the vehicles in service (1 to 10)")
	f.Uint64Var(&o.Seed, "seed", 1, "random seed of the added breakdowns")
	f.Var(nowFlag{&o.Now}, "now", "the day the seeded history ends (seed's --now), YYYY-MM-DD or RFC 3339 (default: now)")
	return cmd
}
