package cli

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

func newRetryCommand(a *App) *cobra.Command {
	var (
		from string
		dry  bool
		wf   waitFlags
	)
	cmd := &cobra.Command{
		Use:     "retry RUN_ID",
		GroupID: groupPipeline,
		Short:   "Re-run a finished run from a step, by default its failed one (admin)",
		Long: "retry re-runs a finished run from a step: by default the step that failed; --from names\n" +
			"another (a run without a failed step needs it). The steps before it are not performed again:\n" +
			"their outputs are reused. It and every step after it run again, each with its next attempt\n" +
			"number. --dry-run checks the retry without changing anything. With --wait it follows the\n" +
			"run as 'trigger --wait' does, and exits 0 when the run succeeds, 1 when it fails.",
		Example: "  cmmsflow retry manual__2026-11-29T02:00:00+00:00 --wait\n" +
			"  cmmsflow retry scheduled__2026-11-30T06:00:00+00:00 --from pmgen",
		Args: runIDArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := wf.check(); err != nil {
				return err
			}
			c, err := a.Client()
			if err != nil {
				return err
			}
			run, err := c.RetryRun(cmd.Context(), &controlv1.RetryRunRequest{RunId: args[0], FromStep: from, DryRun: dry})
			if err != nil {
				return a.apiError(err)
			}
			out := cmd.OutOrStdout()
			step := retriedStep(run)
			if dry {
				fmt.Fprintf(out, "dry run: run %s of %s would run again from %s (attempt %d); nothing changed\n",
					run.GetRunId(), run.GetPipeline(), step.GetStep(), step.GetAttempts()+1)
				return nil
			}
			fmt.Fprintf(out, "run %s of %s runs again from %s (attempt %d)\n",
				run.GetRunId(), run.GetPipeline(), step.GetStep(), step.GetAttempts()+1)
			return wf.follow(cmd, a, c, run.GetRunId(), run)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the step to re-run from (default: the run's failed step)")
	f.BoolVar(&dry, "dry-run", false, "check the retry and say what it would do, changing nothing")
	wf.register(cmd)
	return cmd
}

// retriedStep is the step a retry restarted: the first pending step of the
// run it returned (the steps before it succeeded).
func retriedStep(run *controlv1.Run) *controlv1.Step {
	steps := run.GetSteps()
	if i := slices.IndexFunc(steps, func(s *controlv1.Step) bool { return s.GetState() == "pending" }); i >= 0 {
		return steps[i]
	}
	return &controlv1.Step{}
}
