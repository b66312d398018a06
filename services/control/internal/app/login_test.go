package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/control/internal/app"
)

// On a login of its own (cmmsflow_control's member) control starts without
// migrating, and refuses to migrate with a message saying what to do.
func TestStartsOnItsOwnLogin(t *testing.T) {
	ctx := context.Background()
	admin, dbURL := pgtest.NewWithURL(t)
	pool, err := db.Connect(ctx, pgtest.ServiceLogin(t, admin, dbURL, events.Control))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(migrate bool) (*app.Control, error) {
		relay := eventing.NewRelay(pool, &recorder{}, log, time.Hour)
		s := &service.Service{
			Name: events.Control, Log: log, Pool: pool, Relay: relay, Mux: http.NewServeMux(),
			Router: eventing.NewRouter(eventing.RouterConfig{Service: events.Control, Pool: pool, Relay: relay, Log: log}),
		}
		var cfg app.Config
		if err := config.LoadFrom(ctx, &cfg, map[string]string{"DATABASE_URL": dbURL, "MIGRATE_ON_START": strconv.FormatBool(migrate)}); err != nil {
			t.Fatal(err)
		}
		return app.Start(ctx, s, cfg)
	}
	if _, err := start(true); err == nil || !strings.Contains(err.Error(), "MIGRATE_ON_START=false, once 'cmmsflow migrate' has run as the owner") {
		t.Fatalf("start migrating on control's login: %v", err)
	}
	c, err := start(false)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pipelines`).Scan(&n); err != nil || n != len(events.Pipelines) {
		t.Fatalf("pipelines synced at start: %d (%v), want %d", n, err, len(events.Pipelines))
	}
}
