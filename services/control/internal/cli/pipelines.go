package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// Run states that end a run.
var finalStates = []string{"success", "failed", "cancelled", "skipped"}

func newPipelinesCommand(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "pipelines",
		GroupID: groupPipeline,
		Short:   "List the pipelines: schedule, pause state, last and next run",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.Client()
			if err != nil {
				return err
			}
			resp, err := c.ListPipelines(cmd.Context(), &controlv1.ListPipelinesRequest{})
			if err != nil {
				return a.apiError(err)
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tSCHEDULE\tPAUSED\tLAST RUN\tNEXT RUN")
			for _, p := range resp.GetPipelines() {
				last := "-"
				if r := p.GetLastRun(); r != nil {
					last = r.GetState() + " " + fmtTime(r.GetQueuedAt())
				}
				sched := p.GetSchedule()
				if tz := p.GetTimeZone(); tz != "" {
					sched += " (" + tz + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.GetId(), sched, yesNo(p.GetPaused()), last, fmtTime(p.GetNextRun()))
			}
			return tw.Flush()
		},
	}
}

func newPauseCommand(a *App, pause bool) *cobra.Command {
	use, short, done := "pause PIPELINE", "Pause a pipeline: scheduled kicks are ignored (admin)", "paused"
	if !pause {
		use, short, done = "unpause PIPELINE", "Unpause a pipeline (admin)", "unpaused"
	}
	return &cobra.Command{
		Use:     use,
		GroupID: groupPipeline,
		Short:   short,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.Client()
			if err != nil {
				return err
			}
			var p *controlv1.Pipeline
			if pause {
				p, err = c.PausePipeline(cmd.Context(), &controlv1.PausePipelineRequest{Pipeline: args[0]})
			} else {
				p, err = c.UnpausePipeline(cmd.Context(), &controlv1.UnpausePipelineRequest{Pipeline: args[0]})
			}
			if err != nil {
				return a.apiError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s (next scheduled tick %s)\n", p.GetId(), done, fmtTime(p.GetNextRun()))
			return nil
		},
	}
}

func newTriggerCommand(a *App) *cobra.Command {
	var (
		conf []string
		key  string
		wf   waitFlags
	)
	cmd := &cobra.Command{
		Use:     "trigger PIPELINE",
		GroupID: groupPipeline,
		Short:   "Queue a manual run of a pipeline (admin), optionally following it to the end",
		Long: "trigger queues a manual run. --conf sets the pipeline's per-run settings (see GetPipeline's\n" +
			"conf_keys, e.g. as_of=YYYY-MM-DD for preventive_maintenance). With --idempotency-key a repeat\n" +
			"returns the run the first trigger created. With --wait it follows the run, printing each\n" +
			"step's state changes and figures, and exits 0 when the run succeeds, 1 when it fails.",
		Example: "  cmmsflow trigger preventive_maintenance --conf as_of=2026-11-30 --wait",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cf, err := parseConf(conf)
			if err != nil {
				return &usageError{err}
			}
			if err := wf.check(); err != nil {
				return err
			}
			c, err := a.Client()
			if err != nil {
				return err
			}
			resp, err := c.TriggerPipeline(cmd.Context(), &controlv1.TriggerPipelineRequest{
				Pipeline: args[0], Conf: cf, IdempotencyKey: key,
			})
			if err != nil {
				return a.apiError(err)
			}
			run := resp.GetRun()
			out := cmd.OutOrStdout()
			if resp.GetCreated() {
				fmt.Fprintf(out, "queued run %s of %s\n", run.GetRunId(), run.GetPipeline())
			} else {
				fmt.Fprintf(out, "idempotency key %q already used: run %s of %s is %s\n", key, run.GetRunId(), run.GetPipeline(), run.GetState())
			}
			return wf.follow(cmd, a, c, run.GetRunId(), nil)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&conf, "conf", nil, "a per-run setting key=value (repeatable)")
	f.StringVar(&key, "idempotency-key", "", "return the run an earlier trigger with this key created, instead of queuing another")
	wf.register(cmd)
	return cmd
}

// waitFlags are --wait and --poll-interval of the commands that can follow
// the run they queue (trigger, retry).
type waitFlags struct {
	wait     bool
	interval time.Duration
}

// register adds the flags to cmd.
func (w *waitFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&w.wait, "wait", false, "follow the run until it ends; exit 1 if it does not succeed")
	f.DurationVar(&w.interval, "poll-interval", 500*time.Millisecond, "with --wait, how often to read the run")
}

// check refuses a --poll-interval that is not positive.
func (w *waitFlags) check() error {
	if w.interval <= 0 {
		return &usageError{fmt.Errorf("invalid --poll-interval %s: must be positive", w.interval)}
	}
	return nil
}

// follow follows run runID as a.follow does (from: the run as printed
// already, nil: none of it) when --wait is set; without it, it returns nil.
func (w *waitFlags) follow(cmd *cobra.Command, a *App, c controlv1.ControlServiceClient, runID string, from *controlv1.Run) error {
	if !w.wait {
		return nil
	}
	return a.follow(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), c, runID, w.interval, from)
}

// follow polls the run until it ends, printing every change of the run's
// and its steps' states since from (nil: print them all). A run that ends
// other than in success is an error (exit status 1) with the run's error on
// stderr.
func (a *App) follow(ctx context.Context, out, errw io.Writer, c controlv1.ControlServiceClient, runID string,
	interval time.Duration, from *controlv1.Run) error {
	seen := map[string]string{} // step (or "" for the run) → last printed state
	if from != nil {
		seen[""] = from.GetState()
		for _, st := range from.GetSteps() {
			seen[st.GetStep()] = progressKey(st)
		}
	}
	failures := 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		run, err := c.GetRun(ctx, &controlv1.GetRunRequest{RunId: runID})
		switch {
		case ctx.Err() != nil:
			fmt.Fprintf(errw, "stopped following run %s; it goes on (see 'cmmsflow run %s')\n", runID, runID)
			return &exitError{ExitError}
		case status.Code(err) == codes.Unavailable && failures < 5:
			failures++ // control restarting: try again
		case err != nil:
			return a.apiError(err)
		default:
			failures = 0
			printProgress(out, run, seen)
			if slices.Contains(finalStates, run.GetState()) {
				if run.GetState() == "success" {
					fmt.Fprintf(out, "run %s succeeded in %s\n", runID, duration(run.GetStartedAt(), run.GetEndedAt()))
					return nil
				}
				msg := run.GetError()
				if msg == "" {
					for _, st := range run.GetSteps() {
						if st.GetError() != "" {
							msg = st.GetStep() + ": " + st.GetError()
							break
						}
					}
				}
				if msg != "" {
					msg = ": " + msg
				}
				fmt.Fprintf(errw, "run %s %s%s\n", runID, run.GetState(), msg)
				return &exitError{ExitError}
			}
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// printProgress prints the run and the steps whose state or attempt changed
// since the last poll.
// A run's start is printed before its steps' changes, its end after them.
func printProgress(w io.Writer, run *controlv1.Run, seen map[string]string) {
	now := time.Now().Format(time.TimeOnly)
	final := slices.Contains(finalStates, run.GetState())
	if !final && seen[""] != run.GetState() {
		seen[""] = run.GetState()
		fmt.Fprintf(w, "%s  %-11s %s\n", now, "run", run.GetState())
	}
	for _, st := range run.GetSteps() {
		key := progressKey(st)
		if seen[st.GetStep()] == key {
			continue
		}
		seen[st.GetStep()] = key
		if st.GetState() == "pending" && st.GetAttempts() == 0 {
			continue
		}
		line := fmt.Sprintf("%s  %-11s %s", now, st.GetStep(), st.GetState())
		if st.GetAttempts() > 1 || st.GetState() == "up_for_retry" {
			line += fmt.Sprintf(" (attempt %d)", st.GetAttempts())
		}
		if st.GetState() == "success" || st.GetState() == "failed" {
			line += " in " + duration(st.GetStartedAt(), st.GetEndedAt())
		}
		if f := fmtFigures(st.GetFigures()); f != "" {
			line += "  " + f
		}
		if st.GetError() != "" {
			line += "  error: " + st.GetError()
		}
		fmt.Fprintln(w, line)
	}
	if final && seen[""] != run.GetState() {
		seen[""] = run.GetState()
		fmt.Fprintf(w, "%s  %-11s %s\n", now, "run", run.GetState())
	}
}

// progressKey is what a change of a step is seen by: its state and attempt.
func progressKey(st *controlv1.Step) string {
	return fmt.Sprintf("%s#%d", st.GetState(), st.GetAttempts())
}

func newRunsCommand(a *App) *cobra.Command {
	var (
		state string
		limit int
	)
	cmd := &cobra.Command{
		Use:     "runs [PIPELINE]",
		GroupID: groupPipeline,
		Short:   "List a pipeline's runs (or every pipeline's), newest first",
		Args:    usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 10000 {
				return &usageError{fmt.Errorf("invalid --limit %d: must be between 1 and 10000", limit)}
			}
			c, err := a.Client()
			if err != nil {
				return err
			}
			req := &controlv1.ListRunsRequest{State: state}
			if len(args) == 1 {
				req.Pipeline = args[0]
				// ListRuns calls an unknown pipeline an invalid filter; say not found.
				if _, err := c.GetPipeline(cmd.Context(), &controlv1.GetPipelineRequest{Pipeline: args[0]}); err != nil {
					return a.apiError(err)
				}
			}
			var runs []*controlv1.Run
			for len(runs) < limit {
				req.PageSize = int32(min(limit-len(runs), 100))
				resp, err := c.ListRuns(cmd.Context(), req)
				if err != nil {
					return a.apiError(err)
				}
				runs = append(runs, resp.GetRuns()...)
				if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
					break
				}
			}
			if len(runs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no runs")
				return nil
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprint(tw, "RUN ID\t")
			if req.Pipeline == "" {
				fmt.Fprint(tw, "PIPELINE\t")
			}
			fmt.Fprintln(tw, "STATE\tSOURCE\tQUEUED\tDURATION\tERROR")
			for _, r := range runs {
				fmt.Fprintf(tw, "%s\t", r.GetRunId())
				if req.Pipeline == "" {
					fmt.Fprintf(tw, "%s\t", r.GetPipeline())
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.GetState(), r.GetSource(), fmtTime(r.GetQueuedAt()),
					duration(r.GetStartedAt(), r.GetEndedAt()), oneLine(r.GetError(), 60))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only runs in this state: queued, running, success, failed, cancelled or skipped")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many runs")
	return cmd
}

func newRunCommand(a *App) *cobra.Command {
	return &cobra.Command{
		Use:     "run RUN_ID",
		GroupID: groupPipeline,
		Short:   "Show a run and its steps: state, attempts, times, error, figures",
		Args:    runIDArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.Client()
			if err != nil {
				return err
			}
			r, err := c.GetRun(cmd.Context(), &controlv1.GetRunRequest{RunId: args[0]})
			if err != nil {
				return a.apiError(err)
			}
			printRun(cmd.OutOrStdout(), r)
			return nil
		},
	}
}

func printRun(w io.Writer, r *controlv1.Run) {
	tw := table(w)
	fmt.Fprintf(tw, "run:\t%s\n", r.GetRunId())
	fmt.Fprintf(tw, "pipeline:\t%s\n", r.GetPipeline())
	fmt.Fprintf(tw, "state:\t%s\n", r.GetState())
	fmt.Fprintf(tw, "source:\t%s\n", r.GetSource())
	if len(r.GetConf()) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(r.GetConf())) {
			kv = append(kv, k+"="+r.GetConf()[k])
		}
		fmt.Fprintf(tw, "conf:\t%s\n", strings.Join(kv, " "))
	}
	if r.GetIdempotencyKey() != "" {
		fmt.Fprintf(tw, "idempotency key:\t%s\n", r.GetIdempotencyKey())
	}
	fmt.Fprintf(tw, "logical date:\t%s\n", fmtTime(r.GetLogicalDate()))
	fmt.Fprintf(tw, "queued:\t%s\n", fmtTime(r.GetQueuedAt()))
	fmt.Fprintf(tw, "started:\t%s\n", fmtTime(r.GetStartedAt()))
	fmt.Fprintf(tw, "ended:\t%s\n", fmtTime(r.GetEndedAt()))
	if r.GetError() != "" {
		fmt.Fprintf(tw, "error:\t%s\n", r.GetError())
	}
	if r.GetStateSetBy() != "" {
		fmt.Fprintf(tw, "state set by:\t%s\n", r.GetStateSetBy())
	}
	_ = tw.Flush()
	if len(r.GetSteps()) == 0 {
		fmt.Fprintln(w, "\nno steps yet")
		return
	}
	fmt.Fprintln(w)
	tw = table(w)
	fmt.Fprintln(tw, "STEP\tSTATE\tATTEMPTS\tSTARTED\tENDED\tDURATION\tERROR")
	for _, st := range r.GetSteps() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", st.GetStep(), st.GetState(), st.GetAttempts(),
			fmtTime(st.GetStartedAt()), fmtTime(st.GetEndedAt()), duration(st.GetStartedAt(), st.GetEndedAt()),
			oneLine(st.GetError(), 80))
	}
	_ = tw.Flush()
	for _, st := range r.GetSteps() {
		if st.GetSummary() == "" && len(st.GetFigures()) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:", st.GetStep())
		if st.GetSummary() != "" {
			fmt.Fprintf(w, " %s", st.GetSummary())
		}
		fmt.Fprintln(w)
		if f := fmtFigures(st.GetFigures()); f != "" {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// fmtTime is a time in the local zone, or "-".
func fmtTime(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().Local().Format("2006-01-02 15:04:05")
}

// duration is end-start (to now while running), or "-" before the start.
func duration(start, end *timestamppb.Timestamp) string {
	if start == nil {
		return "-"
	}
	e := time.Now()
	if end != nil {
		e = end.AsTime()
	}
	d := e.Sub(start.AsTime())
	switch {
	case d < 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}

// fmtFigures is "k=v k=v" in key order.
func fmtFigures(f map[string]float64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		v := f[k]
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			b.WriteString(k + "=" + strconv.FormatInt(int64(v), 10))
		} else {
			b.WriteString(k + "=" + strconv.FormatFloat(v, 'g', 6, 64))
		}
	}
	return b.String()
}

// oneLine shortens s to one line of at most n runes.
func oneLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}
