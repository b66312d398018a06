// Command cmmsflow is the admin CLI: schema migrations, demo data, CSV
// import, API tokens and users, and the pipelines through control's API
// (pipelines, trigger [--wait], runs, run, pause, unpause). The commands live
// in services/control/internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cmmsflow/cmmsflow/services/control/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
