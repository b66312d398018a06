package source

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cmmsflow/cmmsflow/libs/db"
)

// DefaultSchema is the mapping schema Apply creates unless told otherwise.
const DefaultSchema = "cmms_mapped"

// RecordTable is where Apply records the applied mappings (migration 00017).
const RecordTable = db.AutomationSchema + ".source_contract"

// Apply recreates schema (dropped with everything in it, then created
// empty), runs the mapping SQL in it (search_path = schema, so its
// unqualified CREATE VIEWs land there; it names its own tables with their
// schema), grants the roles that could read the old schema the same on
// the new one, and checks the result against the contract. All of it
// happens in tx: the caller commits (see Record) or rolls back.
func Apply(ctx context.Context, tx pgx.Tx, schema, mapping string) ([]Mismatch, error) {
	if err := ValidSchema(schema); err != nil {
		return nil, err
	}
	readers, err := recreate(ctx, tx, schema)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = "+schema); err != nil {
		return nil, err
	}
	if err := runMapping(ctx, tx, mapping); err != nil {
		return nil, err
	}
	for _, r := range readers {
		if err := Grant(ctx, tx, schema, r); err != nil {
			return nil, err
		}
	}
	return Check(ctx, tx, schema)
}

// txControl matches a statement of its own that would end or nest Apply's
// transaction (a PL/pgSQL block's BEGIN has no semicolon, its END is not
// matched).
var txControl = regexp.MustCompile(`(?im)^\s*(BEGIN|COMMIT|ROLLBACK|ABORT|START\s+TRANSACTION|END\s+TRANSACTION|SAVEPOINT|RELEASE)\b[^;\n]*;`)

// runMapping runs the mapping's statements in tx, which they must not end:
// if one does anyway, the error says so.
func runMapping(ctx context.Context, tx pgx.Tx, mapping string) error {
	if m := txControl.FindString(mapping); m != "" {
		return fmt.Errorf("source: the mapping must not control the transaction (%q): it runs in one of its own; remove it", strings.TrimSpace(m))
	}
	if _, err := tx.Exec(ctx, mapping); err != nil {
		return fmt.Errorf("source: the mapping failed: %w", err)
	}
	if st := tx.Conn().PgConn().TxStatus(); st != 'T' {
		return fmt.Errorf("source: the mapping ended the transaction it runs in (status %q): what ran before that may have been committed", st)
	}
	return nil
}

// ValidSchema refuses names that are not a plain identifier and the
// schemas cmmsflow or PostgreSQL own.
func ValidSchema(schema string) error {
	if _, err := db.SearchPath(schema); err != nil {
		return err
	}
	switch schema {
	case db.OwnSourceSchema, "public", "information_schema":
		return fmt.Errorf("source: %s cannot be a mapping schema (it is dropped and recreated)", schema)
	}
	if strings.HasPrefix(schema, "pg_") {
		return fmt.Errorf("source: %s cannot be a mapping schema", schema)
	}
	return nil
}

// recreate drops and creates schema, refusing one that holds tables (the
// CMMS's own, most likely), and returns the roles that could use it.
func recreate(ctx context.Context, tx pgx.Tx, schema string) ([]string, error) {
	var tables int
	var readers []string
	err := tx.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')),
		       coalesce((SELECT array_agg(DISTINCT r.rolname ORDER BY r.rolname) FROM aclexplode(n.nspacl) a
		                 JOIN pg_roles r ON r.oid = a.grantee
		                 WHERE a.privilege_type = 'USAGE' AND r.oid <> n.nspowner), '{}')
		FROM pg_namespace n WHERE n.nspname = $1`, schema).Scan(&tables, &readers)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if tables > 0 {
		return nil, fmt.Errorf("source: schema %s holds %d tables; a mapping schema holds views only and is dropped on apply: choose another --schema", schema, tables)
	}
	_, err = tx.Exec(ctx, fmt.Sprintf("DROP SCHEMA IF EXISTS %[1]s CASCADE; CREATE SCHEMA %[1]s", schema))
	return readers, err
}

// Record notes in RecordTable that schema meets this contract version, from
// a mapping file of the given SHA-256 (hex).
func Record(ctx context.Context, tx pgx.Tx, schema, sha256 string) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO `+RecordTable+` (schema_name, contract_version, file_sha256, applied_by)
		VALUES ($1, $2, $3, session_user)
		ON CONFLICT (schema_name) DO UPDATE SET contract_version = EXCLUDED.contract_version,
			file_sha256 = EXCLUDED.file_sha256, applied_at = now(), applied_by = EXCLUDED.applied_by`,
		schema, Version, sha256)
	if err != nil {
		return fmt.Errorf("source: record the mapping: %w", err)
	}
	return nil
}

// Grant lets role read schema (SELECT on its relations, nothing else) and
// work in cmmsflow's automation schema as a service does (read and write
// its tables, except RecordTable, which it may only read). The default
// privileges extend the latter to the automation tables later migrations
// create, when they are run by the role running Grant.
func Grant(ctx context.Context, tx pgx.Tx, schema, role string) error {
	r := pgx.Identifier{role}.Sanitize()
	auto := db.AutomationSchema
	for _, stmt := range []string{
		"GRANT USAGE ON SCHEMA " + schema + " TO " + r,
		"GRANT SELECT ON ALL TABLES IN SCHEMA " + schema + " TO " + r,
		"GRANT USAGE ON SCHEMA " + auto + " TO " + r,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + auto + " TO " + r,
		"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA " + auto + " TO " + r,
		"ALTER DEFAULT PRIVILEGES IN SCHEMA " + auto + " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO " + r,
		"ALTER DEFAULT PRIVILEGES IN SCHEMA " + auto + " GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO " + r,
		"REVOKE INSERT, UPDATE, DELETE ON " + RecordTable + " FROM " + r,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("source: grant %s: %w", role, err)
		}
	}
	return nil
}

// Verify is the start-up check of a service reading schema: nothing to do
// for cmmsflow's own tables; a mapped schema must have been applied
// (RecordTable) for this contract version.
func Verify(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, schema string) error {
	if schema == "" || schema == db.OwnSourceSchema {
		return nil
	}
	var v int
	err := q.QueryRow(ctx, `SELECT contract_version FROM `+RecordTable+` WHERE schema_name = $1`, schema).Scan(&v)
	var pg *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pg) && pg.Code == "42P01":
		return fmt.Errorf("SOURCE_SCHEMA=%s: no mapping has been applied to that schema: run 'cmmsflow migrate', then 'cmmsflow source apply FILE --schema %s' (or unset SOURCE_SCHEMA to read cmmsflow's own tables)", schema, schema)
	case err != nil:
		return fmt.Errorf("SOURCE_SCHEMA=%s: read the applied mapping in %s: %w", schema, RecordTable, err)
	case v != Version:
		return fmt.Errorf("SOURCE_SCHEMA=%s: the mapping was applied for source contract version %d, this build needs version %d: check it and apply it again ('cmmsflow source check FILE', then 'cmmsflow source apply FILE --schema %s')", schema, v, Version, schema)
	}
	return nil
}
