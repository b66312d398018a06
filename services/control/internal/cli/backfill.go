package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

func newBackfillCommand(a *App) *cobra.Command {
	var (
		from, to string
		dryRun   bool
	)
	cmd := &cobra.Command{
		Use:     "backfill PIPELINE --from YYYY-MM-DD --to YYYY-MM-DD",
		GroupID: groupPipeline,
		Short:   "Create the scheduled run of every cron tick in a range of days",
		Long: "backfill creates the run scheduled__<tick> of each of the pipeline's cron ticks from the first day to the\n" +
			"last (both included, in the cron table's time zone; at most 366 ticks). The runs start in order within the\n" +
			"pipeline's max_active_runs. A tick that has its run already is left alone: repeating a backfill creates\n" +
			"nothing. Needs an admin token.",
		Example: "  cmmsflow backfill weekly_kpi_report --from 2026-11-01 --to 2026-11-30",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" || to == "" {
				return &usageError{fmt.Errorf("backfill needs --from and --to")}
			}
			c, err := a.Client()
			if err != nil {
				return err
			}
			resp, err := c.BackfillPipeline(cmd.Context(), &controlv1.BackfillPipelineRequest{
				Pipeline: args[0], FromDate: from, ToDate: to, DryRun: dryRun,
			})
			if err != nil {
				return a.apiError(err)
			}
			w := cmd.OutOrStdout()
			if dryRun {
				fmt.Fprintf(w, "%d ticks from %s to %s; %d have their run, %d would be created (dry run)\n",
					len(resp.GetTicks()), from, to, resp.GetExisting(), len(resp.GetTicks())-int(resp.GetExisting()))
				return nil
			}
			for _, id := range resp.GetCreatedRunIds() {
				fmt.Fprintln(w, "queued", id)
			}
			fmt.Fprintf(w, "%d ticks from %s to %s: %d runs created, %d had their run\n",
				len(resp.GetTicks()), from, to, len(resp.GetCreatedRunIds()), resp.GetExisting())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "first day (YYYY-MM-DD)")
	f.StringVar(&to, "to", "", "last day (YYYY-MM-DD), included")
	f.BoolVar(&dryRun, "dry-run", false, "show what would be created, create nothing")
	return cmd
}
