// Package eventingtest holds what tests of event handlers share: reading
// what a handler emitted to the outbox, delivering events, and watching the
// database's transactions while a step works.
package eventingtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// WatchTransactions samples pg_stat_activity every 50 ms, on pool's
// database, until the returned function is called; that function returns
// the age of the oldest open transaction seen (the sampler's own aside).
func WatchTransactions(t testing.TB, pool *pgxpool.Pool) (longest func() time.Duration) {
	t.Helper()
	stop := make(chan struct{})
	var (
		wg     sync.WaitGroup
		oldest time.Duration
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			var age float64
			err := pool.QueryRow(context.Background(), `
				SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`).Scan(&age)
			if err != nil {
				t.Errorf("sample pg_stat_activity: %v", err)
				return
			}
			if d := time.Duration(age * float64(time.Second)); d > oldest {
				oldest = d
			}
		}
	}()
	var once sync.Once
	return func() time.Duration {
		once.Do(func() { close(stop); wg.Wait() })
		return oldest
	}
}
