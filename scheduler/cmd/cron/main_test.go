package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/pubsubtest"
)

// buildCron builds this command into a temporary folder.
func buildCron(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the command")
	}
	bin := filepath.Join(t.TempDir(), "cron")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The binary starts from the environment, answers /healthz, and exits 0 on
// SIGTERM; a bad configuration exits 1 with the reason.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildCron(t)
	ps := pubsubtest.New(t)
	port := freePort(t)
	env := append(os.Environ(), "PUBSUB_EMULATOR_HOST="+ps.Addr, "GOOGLE_CLOUD_PROJECT="+pubsubtest.Project,
		"PORT="+strconv.Itoa(port), "LOG_FORMAT=json", "CRON_TIME_ZONE=Europe/Berlin")

	var out bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered: %v\n%s", err, &out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, &out)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit within 10 s of SIGTERM\n%s", &out)
	}
	for _, want := range []string{`"message":"scheduled"`, `"pipeline":"etl_ml_training"`, `"time_zone":"Europe/Berlin"`, `"message":"shutting down"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, &out)
		}
	}

	bad := exec.Command(bin)
	bad.Env = append(env, "CRON_TIME_ZONE=Mars/Olympus")
	got, err := bad.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(got), "CRON_TIME_ZONE") {
		t.Errorf("bad time zone: %v\n%s", err, got)
	}
}
