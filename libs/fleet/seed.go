package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults for the zero values of SeedOptions.
const (
	DefaultAssets         = 300
	DefaultTechnicians    = 12
	DefaultYears          = 2
	DefaultInventoryItems = 60
)

// Upper bounds that keep the generated keys in their formats and the run in
// memory.
const (
	MaxAssets         = 99_999
	MaxTechnicians    = 999
	MaxYears          = 20
	MaxInventoryItems = 9_999
)

// SeedOptions shape the synthetic fleet. Zero values take the defaults.
type SeedOptions struct {
	// Seed drives the random generator: the same Seed and Now give the same data.
	Seed uint64
	// Now is the moment the history ends ("today"); zero means time.Now().
	// Pass a fixed value for reproducible data.
	Now            time.Time
	Assets         int // default 300
	Technicians    int // default 12
	Years          int // years of work-order history, default 2
	InventoryItems int // default 60
}

// ErrNotEmpty is returned by Seed when the CMMS tables already hold data.
var ErrNotEmpty = errors.New("fleet: the database already holds CMMS data (technicians, assets, plans, work orders or inventory); seed only fills an empty database")

func (o SeedOptions) normalized() (SeedOptions, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC().Truncate(time.Second)
	def := func(v *int, d, limit int, name string) error {
		switch {
		case *v == 0:
			*v = d
		case *v < 0 || *v > limit:
			return fmt.Errorf("fleet: %s must be between 1 and %d, got %d", name, limit, *v)
		}
		return nil
	}
	return o, errors.Join(
		def(&o.Assets, DefaultAssets, MaxAssets, "assets"),
		def(&o.Technicians, DefaultTechnicians, MaxTechnicians, "technicians"),
		def(&o.Years, DefaultYears, MaxYears, "years"),
		def(&o.InventoryItems, DefaultInventoryItems, MaxInventoryItems, "inventory items"),
	)
}

// Seed generates a synthetic vehicle fleet (see generate.go for the model) and
// writes it in one transaction. It refuses with ErrNotEmpty when any CMMS
// table already has rows; callers may check IsEmpty first.
func Seed(ctx context.Context, pool *pgxpool.Pool, o SeedOptions) (Stats, error) {
	o, err := o.normalized()
	if err != nil {
		return Stats{}, err
	}
	ds := generate(o)
	var st Stats
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := lock(ctx, tx); err != nil {
			return err
		}
		empty, err := isEmpty(ctx, tx)
		if err != nil {
			return err
		}
		if !empty {
			return ErrNotEmpty
		}
		out := &copySink{}
		if err := write(ctx, tx, ds, existing{}, out); err != nil {
			return err
		}
		st = out.changes().Stats()
		return nil
	})
	if err != nil {
		return Stats{}, err
	}
	return st, nil
}
