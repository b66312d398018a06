package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

func newMarkCommand(a *App) *cobra.Command {
	var (
		step string
		dry  bool
	)
	cmd := &cobra.Command{
		Use:     "mark RUN_ID STATE",
		GroupID: groupPipeline,
		Short:   "Set a run's state (success, failed, queued) or a step's (--step: success, failed, skipped) (admin)",
		Long: "mark sets a run's state by hand, as Airflow's \"mark success/failed\" does.\n" +
			"  success  the run and every step that did not succeed are marked success\n" +
			"  failed   the run is failed: its running step failed (its work is stopped), its pending ones skipped\n" +
			"  queued   a finished run is queued again from its first step; it starts when a slot is free\n" +
			"With --step it sets one step's state (success, failed or skipped) and the run follows its steps;\n" +
			"in a running run a step can only be marked failed, which fails the run. A run failed by hand is\n" +
			"not alerted. --dry-run checks the change and shows the run as it would be, changing nothing.",
		Example: "  cmmsflow mark manual__2026-11-29T02:00:00+00:00 failed\n" +
			"  cmmsflow mark scheduled__2026-11-23T08:00:00+00:00 skipped --step notifier",
		Args: runIDArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.Client()
			if err != nil {
				return err
			}
			var run *controlv1.Run
			if step == "" {
				run, err = c.SetRunState(cmd.Context(), &controlv1.SetRunStateRequest{RunId: args[0], State: args[1], DryRun: dry})
			} else {
				run, err = c.SetStepState(cmd.Context(), &controlv1.SetStepStateRequest{RunId: args[0], Step: step, State: args[1], DryRun: dry})
			}
			if err != nil {
				return a.apiError(err)
			}
			out := cmd.OutOrStdout()
			if dry {
				fmt.Fprintln(out, "dry run: the run would be as follows; nothing changed")
			}
			printRun(out, run)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&step, "step", "", "set this step's state instead of the run's")
	f.BoolVar(&dry, "dry-run", false, "check the change and show the run as it would be, changing nothing")
	return cmd
}
