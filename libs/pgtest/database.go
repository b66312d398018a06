package pgtest

import (
	"context"
	"fmt"
	"time"
)

// CreateDatabase makes an empty database named prefix_<random> on the server
// of the superuser URL admin (CMMSFLOW_TEST_DATABASE_URL, say) for a whole
// stack, as the e2e suite and `make bench` start one. It returns the new
// database's URL and a func that drops it, forcing off its connections.
func CreateDatabase(ctx context.Context, admin, prefix string) (string, func(), error) {
	name := prefix + "_" + randSuffix()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("pgtest: create database: %w", err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return withDatabase(admin, name), drop, nil
}
