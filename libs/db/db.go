// Package db connects to PostgreSQL, applies the embedded schema migrations and
// runs functions inside transactions.
//
// # Schemas
//
// cmmsflow's own tables live in two schemas. Automation: runs, steps, the
// outbox, processed events, notifications, reports, models, predictions and
// the other tables only cmmsflow writes live in AutomationSchema. The CMMS
// relations the pipelines read (assets, work orders, maintenance plans,
// technicians, inventory items) are taken from one source schema and
// nowhere else: OwnSourceSchema, cmmsflow's own tables (filled by the demo
// generator or cmmsflow import), unless a service is pointed at another
// (SOURCE_SCHEMA, e.g. views mapping an existing CMMS, which libs/source
// checks against the source contract). Every connection's
// search_path is the source schema, then AutomationSchema, so SQL names
// both kinds of relation unqualified and cannot reach a CMMS relation of
// another schema.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

// Migrations holds the schema migrations, applied in order by Migrate.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// The schemas (see the package comment).
const (
	AutomationSchema = "cmmsflow"
	OwnSourceSchema  = "cmms"
)

// schemaName is what a source schema name may be: a plain lower-case
// identifier, so it needs no quoting.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Option configures Connect.
type Option func(*options)

type options struct {
	source string
	pool   func(*pgxpool.Config)
}

// WithSource makes the pool read the CMMS relations from schema instead of
// OwnSourceSchema ("" keeps the default).
func WithSource(schema string) Option {
	return func(o *options) {
		if schema != "" {
			o.source = schema
		}
	}
}

// WithPoolConfig lets the caller size the pool (MaxConns and the like)
// before it opens.
func WithPoolConfig(fn func(*pgxpool.Config)) Option {
	return func(o *options) { o.pool = fn }
}

// SearchPath is the search_path of a pool reading the CMMS relations from
// source: source, then AutomationSchema.
func SearchPath(source string) (string, error) {
	if !schemaName.MatchString(source) || source == AutomationSchema {
		return "", fmt.Errorf("db: source schema %q: want a lower-case identifier other than %s", source, AutomationSchema)
	}
	return source + ", " + AutomationSchema, nil
}

// DefaultMaxConns is a pool's size unless the URL sets pool_max_conns: no
// transaction is held while a step works (libs/eventing), so a step's own
// reads (the extractor's parallel table reads) share the service's one
// pool with its router.
const DefaultMaxConns = 10

// Connect opens a pool and checks the server answers. Its connections read
// the CMMS relations from the source schema (OwnSourceSchema unless
// WithSource says otherwise) and the automation tables from
// AutomationSchema.
func Connect(ctx context.Context, url string, opts ...Option) (*pgxpool.Pool, error) {
	if url == "" {
		return nil, errors.New("db: empty database URL")
	}
	o := options{source: OwnSourceSchema}
	for _, opt := range opts {
		opt(&o)
	}
	path, err := SearchPath(o.source)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("db: parse database URL: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = path
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if o.pool != nil {
		o.pool(cfg)
	}
	if cfg.ConnConfig.Tracer == nil {
		cfg.ConnConfig.Tracer = queryTracer{}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: open pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("db: ping %s: %w", cfg.ConnConfig.Host, err)
	}
	return pool, nil
}

// migrationSearchPath is the search_path migrations run with: a new table
// is created in AutomationSchema unless a migration names another, a CMMS
// table is altered in OwnSourceSchema, and goose's version table stays in
// public. On a new database the migrations before the schemas existed
// create their tables in public, and 00015 moves them.
const migrationSearchPath = AutomationSchema + ", " + OwnSourceSchema + ", public"

// ErrMigrationDenied is Migrate's error when the server refused the login a
// privilege: a service's login, which may not change the schema.
var ErrMigrationDenied = errors.New("the login may not change the schema: migrations run as the login that owns it (cmmsflow migrate)")

// Migrate brings the schema up to the newest embedded migration, on
// connections of its own (pool's server and login, migrationSearchPath). It
// is safe to run from several processes at once (goose takes a session
// lock).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	cfg := pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["search_path"] = migrationSearchPath
	sqlDB := stdlib.OpenDB(*cfg)
	defer sqlDB.Close()
	err := migrate(ctx, sqlDB, log)
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "42501" { // insufficient_privilege
		return fmt.Errorf("%w (login %q): %w", ErrMigrationDenied, cfg.User, err)
	}
	return err
}

func migrate(ctx context.Context, sqlDB *sql.DB, log *slog.Logger) error {
	fsys, err := fs.Sub(Migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	// The version table is named with its schema: goose looks an unqualified
	// one up in current_schema(), which is cmmsflow once it exists.
	store, err := database.NewStore(database.DialectPostgres, "public.goose_db_version")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectCustom, sqlDB, fsys, goose.WithStore(store), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("db: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("db: migrate up: %w", err)
	}
	for _, r := range results {
		if log != nil {
			log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
		}
	}
	return nil
}

// InTx runs fn in a transaction, committing when it returns nil and rolling
// back otherwise.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}
