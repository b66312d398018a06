package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/source"
)

func newSourceCommand(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "source",
		GroupID: groupDatabase,
		Short:   "Check, apply and grant a mapping of your own CMMS",
		Long: "A mapping is one SQL file of views over your CMMS's tables, in the same database, that\n" +
			"return the relations the pipelines read (the source contract, version " + fmt.Sprint(source.Version) + "): assets,\n" +
			"work_orders, maintenance_plans, technicians and inventory_items. deploy/source/django-cmms.sql\n" +
			"is an example to adapt; README \"Mapping your CMMS\" describes the contract.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newSourceApplyCommand(a, false), newSourceApplyCommand(a, true), newSourceGrantCommand(a))
	return cmd
}

// newSourceApplyCommand is `source apply` (commit) or `source check`.
func newSourceApplyCommand(a *App, commit bool) *cobra.Command {
	use, short, long := "check FILE", "Check a mapping against the source contract, changing nothing",
		"check does all that apply does, in a transaction it rolls back: nothing changes either way."
	if commit {
		use, short, long = "apply FILE", "Apply a mapping: create its views in the mapping schema",
			"apply recreates the mapping schema (--schema, dropped and created empty), runs FILE in it\n"+
				"(search_path = that schema), checks every relation's columns, types and enum values (on the\n"+
				"first "+fmt.Sprint(source.SampleRows)+" rows) against the source contract, and on success records the mapping in\n"+
				source.RecordTable+" and commits. Roles granted on the old schema keep their rights.\n"+
				"Run the services with SOURCE_SCHEMA=<schema> then."
	}
	var schema string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long + "\n\nEvery mismatch is printed as relation.column: problem; with any, or if FILE fails,\nnothing changes and the status is 1.",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSourceApply(cmd, a, args[0], schema, commit)
		},
	}
	cmd.Flags().StringVar(&schema, "schema", source.DefaultSchema, "the mapping schema")
	return cmd
}

// errRollback ends a transaction that must not commit.
var errRollback = errors.New("rolled back")

func runSourceApply(cmd *cobra.Command, a *App, file, schema string, commit bool) error {
	mapping, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	pool, err := a.Pool(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(mapping)
	var mismatches []source.Mismatch
	err = db.InTx(ctx, pool, func(tx pgx.Tx) error {
		if mismatches, err = source.Apply(ctx, tx, schema, string(mapping)); err != nil {
			return err
		}
		if len(mismatches) > 0 || !commit {
			return errRollback
		}
		return source.Record(ctx, tx, schema, hex.EncodeToString(sum[:]))
	})
	if err != nil && !errors.Is(err, errRollback) {
		return fmt.Errorf("%s: %w; nothing changed", file, schemaHint(err))
	}
	w := cmd.OutOrStdout()
	switch {
	case len(mismatches) > 0:
		for _, m := range mismatches {
			fmt.Fprintln(cmd.ErrOrStderr(), m.String())
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s with source contract version %d; nothing changed\n",
			file, plural(int64(len(mismatches)), "problem"), source.Version)
		return &exitError{ExitError}
	case commit:
		fmt.Fprintf(w, "applied %s to schema %s (source contract version %d, sha256 %x)\n", file, schema, source.Version, sum)
		fmt.Fprintf(w, "run the services with SOURCE_SCHEMA=%s; give them a read-only login with 'cmmsflow source grant ROLE'\n", schema)
	default:
		fmt.Fprintf(w, "%s meets source contract version %d; nothing changed\n", file, source.Version)
	}
	return nil
}

func newSourceGrantCommand(a *App) *cobra.Command {
	var schema string
	cmd := &cobra.Command{
		Use:   "grant ROLE",
		Short: "Let a login read the mapping schema (and nothing else of the CMMS)",
		Long: "grant gives ROLE (an existing login: a password user or a Cloud SQL IAM user) SELECT on the\n" +
			"mapping schema's views, and what a service needs in cmmsflow's own automation schema (read and\n" +
			"write its tables, read " + source.RecordTable + "). It gets no right on your CMMS's tables: the\n" +
			"views read them with their owner's rights. Run it after apply; apply keeps it afterwards.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSourceGrant(cmd, a, args[0], schema)
		},
	}
	cmd.Flags().StringVar(&schema, "schema", source.DefaultSchema, "the mapping schema")
	return cmd
}

func runSourceGrant(cmd *cobra.Command, a *App, role, schema string) error {
	if err := source.ValidSchema(schema); err != nil {
		return &usageError{err}
	}
	ctx := cmd.Context()
	pool, err := a.Pool(ctx)
	if err != nil {
		return err
	}
	err = db.InTx(ctx, pool, func(tx pgx.Tx) error {
		var super bool
		err := tx.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = $1`, role).Scan(&super)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no role %q: create the login first", role)
		} else if err != nil {
			return err
		}
		if super {
			return fmt.Errorf("role %q is a superuser: it can write anywhere; grant a plain login", role)
		}
		return source.Grant(ctx, tx, schema, role)
	})
	if err != nil {
		return schemaHint(err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "granted %s: SELECT on schema %s, read/write on %s's tables\n", role, schema, db.AutomationSchema)
	return nil
}
