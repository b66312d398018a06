// Command up starts the whole of cmmsflow on this machine with demo data and
// prints where to look; Ctrl-C stops everything. `make up` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cmmsflow/cmmsflow/deploy/local/stack"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
)

func main() {
	var (
		root       = flag.String("root", ".", "repository root")
		basePort   = flag.Int("base-port", 8080, "control listens here, the other services on the next ports")
		pgPort     = flag.Int("pg-port", 54320, "port of the private PostgreSQL (ignored with DATABASE_URL)")
		pubsubPort = flag.Int("pubsub-port", 8095, "Pub/Sub emulator port")
		gcsPort    = flag.Int("gcs-port", 4443, "GCS emulator port")
		cronPort   = flag.Int("cron-port", 8099, "local cron publisher health port")
		emulator   = flag.String("emulator", stack.EmulatorAuto, "Pub/Sub emulator: auto, cloudsdk or embedded")
		seed       = flag.Bool("seed", true, "load the demo fleet when the database is empty")
		assets     = flag.Int("assets", 300, "demo fleet size")
		cron       = flag.Bool("cron", true, "run the local cron publisher")
	)
	flag.Parse()
	if err := run(*root, *basePort, *pgPort, *pubsubPort, *gcsPort, *cronPort, *emulator, *seed, *assets, *cron); err != nil {
		fmt.Fprintln(os.Stderr, "up:", err)
		os.Exit(1)
	}
}

func run(root string, basePort, pgPort, pubsubPort, gcsPort, cronPort int, emulator string, seed bool, assets int, cron bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	ports := map[string]int{}
	for i, svc := range events.Services {
		ports[svc] = basePort + i
	}
	t0 := time.Now()
	bin, err := stack.Binaries(ctx, abs, filepath.Join(abs, ".local", "bin"))
	if err != nil {
		return err
	}
	s, err := stack.Start(ctx, stack.Options{
		Root: abs, BinDir: bin, DatabaseURL: os.Getenv("DATABASE_URL"), PGPort: pgPort, PubSubPort: pubsubPort, GCSPort: gcsPort,
		ServicePorts: ports, CronPort: cronPort, Emulator: emulator, Cron: cron,
		Seed: seed, SeedOptions: fleet.SeedOptions{Assets: assets, Now: time.Now()},
	})
	if err != nil {
		return err
	}
	defer s.Stop()

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\ncmmsflow is up (%s). Ctrl-C stops everything.\n\n", time.Since(t0).Round(100*time.Millisecond))
	fmt.Fprintf(w, "  admin page\t%s/admin\n", s.Services[events.Control].URL)
	fmt.Fprintf(w, "  API\t%s/v1/pipelines  (gRPC on the same port; OpenAPI at /openapi.json)\n", s.Services[events.Control].URL)
	fmt.Fprintf(w, "  admin token\t%s  (valid until Ctrl-C)\n", s.AdminToken)
	fmt.Fprintf(w, "  admin user\t%s:%s\n", s.AdminUser, s.AdminPassword)
	fmt.Fprintf(w, "  try\tcurl -s -X POST -H 'Authorization: Bearer %s' %s/v1/pipelines/preventive_maintenance:trigger\n",
		s.AdminToken, s.Services[events.Control].URL)
	fmt.Fprintf(w, "  database\t%s\n", s.DatabaseURL)
	fmt.Fprintf(w, "  pubsub\tPUBSUB_EMULATOR_HOST=%s\n", s.PubSubHost)
	fmt.Fprintf(w, "  storage\tSTORAGE_EMULATOR_HOST=%s  bucket %s (files under %s)\n", s.GCSHost, s.Bucket, filepath.Join(s.StateDir, "gcs"))
	var svcs []string
	for _, name := range events.Services[1:] {
		svcs = append(svcs, name+" "+strings.TrimPrefix(s.Services[name].URL, "http://"))
	}
	fmt.Fprintf(w, "  services\t%s\n", strings.Join(svcs, ", "))
	fmt.Fprintln(w)
	w.Flush()

	<-ctx.Done()
	fmt.Println("\nstopping…")
	return nil
}
