// Command testenv runs a command (the test suite) with a private PostgreSQL
// server started for it: `testenv -- go test ./...`. The server's superuser
// URL is passed as CMMSFLOW_TEST_DATABASE_URL; the server stops afterwards.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/cmmsflow/cmmsflow/deploy/local/pg"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
)

func main() {
	dir := flag.String("dir", ".local/test-pg", "PostgreSQL data folder")
	port := flag.Int("port", 0, "PostgreSQL port (loopback); 0 picks a free one")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: testenv [-dir D] [-port P] -- command [args...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(*dir, *port, flag.Args()))
}

func run(dir string, port int, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs, err := filepath.Abs(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	cluster := &pg.Cluster{Dir: abs, Port: port, Fast: true}
	started, err := cluster.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	if started {
		defer func() {
			if err := cluster.Stop(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, "testenv:", err)
			}
		}()
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), pgtest.EnvVar+"="+cluster.URL("postgres"))
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	return 0
}
