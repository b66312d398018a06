// Package cli implements the cmmsflow admin command line: one file per
// command group, each command built by a newXCommand(*App) function and
// registered in NewRootCommand.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/cmmsflow/cmmsflow/libs/db"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/api"
)

// Exit statuses.
const (
	ExitOK    = 0
	ExitError = 1 // the command failed
	ExitUsage = 2 // bad flags or arguments
)

// EnvDatabaseURL is the environment variable --database-url defaults to.
const EnvDatabaseURL = "DATABASE_URL"

// App is what every command shares: input and output streams, the
// environment and the global flags, and the resources opened on demand
// (closed by Run).
type App struct {
	// Stdin is nil when there is no input.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	databaseURL string
	pool        *pgxpool.Pool

	control    string
	tokenStdin bool
	// token is the API token once read (tokenRead): from standard input
	// with --token-stdin, else from $CMMSFLOW_TOKEN.
	token     string
	tokenRead bool
	conn      *grpc.ClientConn
	client    controlv1.ControlServiceClient
	// dial, when set, opens the API's connections in place of the network
	// (tests).
	dial func(ctx context.Context, addr string) (net.Conn, error)
}

// Run executes the command line args (without the program name) and returns
// the process exit status.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &App{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: getenv}
	defer a.close()
	root := NewRootCommand(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var exit *exitError
	var usage *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &exit):
		return exit.code
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "cmmsflow: %v\nRun 'cmmsflow --help' for usage.\n", usage.err)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "cmmsflow: %v\n", err)
		return ExitError
	}
}

// Command groups in the help output.
const (
	groupDatabase = "database"
	groupAPI      = "api"
	groupPipeline = "pipeline"
)

// NewRootCommand builds the command tree.
func NewRootCommand(a *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "cmmsflow",
		Short: "Administer a cmmsflow installation",
		Long: "cmmsflow administers a cmmsflow installation: it migrates the database schema,\n" +
			"seeds a synthetic demo fleet, imports CMMS data from CSV files and checks and applies mappings\n" +
			"of an existing CMMS (source); through control's API it\n" +
			"lists, triggers, follows and pauses the pipelines.\n\n" +
			"The API commands reach control at --control (default $" + EnvControl + ") with the API token of\n" +
			"$" + EnvToken + ", or of the first line of standard input with --token-stdin; a token is never\n" +
			"taken on the command line, where ps shows it. The token goes over plain http only to a\n" +
			"loopback host (localhost, 127.0.0.0/8, ::1); any other host needs https.",
		Args:          usageArgs(cobra.NoArgs),
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{tokenFlagHint(err)} })
	root.PersistentFlags().StringVar(&a.databaseURL, "database-url", "",
		"PostgreSQL URL (default $"+EnvDatabaseURL+")")
	root.PersistentFlags().StringVar(&a.control, "control", "",
		"control's URL (default $"+EnvControl+", else "+DefaultControl+")")
	root.PersistentFlags().BoolVar(&a.tokenStdin, "token-stdin", false,
		"read the API bearer token from the first line of standard input (default: $"+EnvToken+")")
	root.CompletionOptions.DisableDefaultCmd = true

	root.AddGroup(&cobra.Group{ID: groupDatabase, Title: "Database commands:"})
	root.AddGroup(&cobra.Group{ID: groupPipeline, Title: "Pipeline commands (control's API):"})
	root.AddGroup(&cobra.Group{ID: groupAPI, Title: "API commands:"})
	for _, c := range []*cobra.Command{
		newMigrateCommand(a),
		newSeedCommand(a),
		newShiftCommand(a),
		newImportCommand(a),
		newSourceCommand(a),
		newTokenCommand(a),
		newUserCommand(a),
		newPipelinesCommand(a),
		newTriggerCommand(a),
		newRunsCommand(a),
		newRunCommand(a),
		newRetryCommand(a),
		newMarkCommand(a),
		newPauseCommand(a, true),
		newPauseCommand(a, false),
		newBackfillCommand(a),
	} {
		root.AddCommand(c)
	}
	return root
}

// Pool connects to the database on first use.
func (a *App) Pool(ctx context.Context) (*pgxpool.Pool, error) {
	if a.pool != nil {
		return a.pool, nil
	}
	url := a.databaseURL
	if url == "" && a.Getenv != nil {
		url = a.Getenv(EnvDatabaseURL)
	}
	if url == "" {
		return nil, fmt.Errorf("no database: pass --database-url or set %s", EnvDatabaseURL)
	}
	pool, err := db.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	a.pool = pool
	return pool, nil
}

func (a *App) close() {
	if a.pool != nil {
		a.pool.Close()
	}
	if a.conn != nil {
		_ = a.conn.Close()
	}
}

// usageError marks bad flags and arguments (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitError ends a command with a status after it printed its own message.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

// runIDArgs takes exactly n arguments, the first a run id that
// api.ValidateRunID accepts: a malformed one is a usage error, refused
// before control is called.
func runIDArgs(n int) cobra.PositionalArgs {
	return usageArgs(func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return err
		}
		if err := api.ValidateRunID(args[0]); err != nil {
			return fmt.Errorf("RUN_ID %q: %w", args[0], err)
		}
		return nil
	})
}

// schemaHint adds a hint to errors that mean the schema is not there yet.
func schemaHint(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "42P01" { // undefined_table
		return fmt.Errorf("%w (run 'cmmsflow migrate' first)", err)
	}
	return err
}

func plural(n int64, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
