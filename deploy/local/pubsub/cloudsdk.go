package pubsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CloudSDKAvailable reports whether the Cloud SDK Pub/Sub emulator can run
// here: gcloud on PATH, its pubsub-emulator component installed, and java on
// PATH. It runs nothing.
func CloudSDKAvailable() bool {
	_, err := cloudSDKCheck()
	return err == nil
}

// cloudSDKCheck returns gcloud's path, or why the emulator cannot run.
func cloudSDKCheck() (string, error) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return "", fmt.Errorf("gcloud is not on PATH: %w", err)
	}
	real, err := filepath.EvalSymlinks(gcloud)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", gcloud, err)
	}
	root := filepath.Dir(filepath.Dir(real)) // <sdk>/bin/gcloud
	emu := filepath.Join(root, "platform", "pubsub-emulator", "bin", "cloud-pubsub-emulator")
	if _, err := os.Stat(emu); err != nil {
		return "", fmt.Errorf("the Cloud SDK pubsub-emulator component is not installed (no %s); install it with `gcloud components install pubsub-emulator` or the google-cloud-cli-pubsub-emulator package", emu)
	}
	if _, err := exec.LookPath("java"); err != nil {
		return "", fmt.Errorf("the Cloud SDK Pub/Sub emulator needs java on PATH: %w", err)
	}
	return gcloud, nil
}

// What the Cloud SDK emulator (pubsub-emulator 0.8.20, Cloud SDK 528) does,
// measured here:
//
//   - started in 1–1.5 s here (DESIGN.md measured 10–15 s cold); GET /
//     answers "Ok" once it listens;
//   - accepts push subscriptions with retry and dead-letter policies (any
//     backoff, sub-second too) and echoes them back; UpdateSubscription works
//     for push_config, ack_deadline_seconds, retry_policy, dead_letter_policy;
//   - accepts any filter text without validating it, refuses to update a
//     filter, and does not apply filters at all, to push or pull (hence the
//     filter gate);
//   - pushes the plain body {"subscription","message":{"data","attributes",
//     "messageId","message_id","publishTime","publish_time"}}, attributes
//     always present, no deliveryAttempt field even with a dead-letter policy;
//   - paces redelivery on its own, not by the retry policy: about 1 s, then
//     3–4 s between attempts for one failing message; with several failing
//     messages on a subscription it stalls for minutes (4 messages: 3 attempts
//     each, then nothing for 10 minutes);
//   - dead-letters after MaxDeliveryAttempts when it gets there, adding
//     CloudPubSubDeadLetterSource{DeliveryCount,Subscription (the id),
//     SubscriptionProject,TopicPublishTime} — the same as the pusher.

// javaLogging is the emulator JVM's java.util.logging configuration: warnings
// and errors only. At INFO it logs two lines per connection ("Detected HTTP/2
// connection") and per forwarded header.
const javaLogging = `handlers=java.util.logging.ConsoleHandler
.level=WARNING
java.util.logging.ConsoleHandler.level=WARNING
`

// javaLoggingFile holds javaLogging in the emulator's folder.
const javaLoggingFile = "logging.properties"

// StartCloudSDK runs `gcloud beta emulators pubsub start` on 127.0.0.1 in its
// own process group and returns once the emulator answers (10–15 s on a cold
// JVM). ctx bounds the start-up only; the emulator runs until Stop, which
// ends the whole process group. gcloud runs with a private configuration
// folder, prompts, update checks and usage reporting off, so it reads no
// credentials and calls nothing outside the machine.
func StartCloudSDK(ctx context.Context, o Options) (*Emulator, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	gcloud, err := cloudSDKCheck()
	if err != nil {
		return nil, fmt.Errorf("pubsub: Cloud SDK emulator unavailable: %w", err)
	}
	host, err := loopback(o.Port)
	if err != nil {
		return nil, err
	}
	dir, cleanup, err := sdkDataDir(o.DataDir)
	if err != nil {
		return nil, err
	}
	out := &tailWriter{w: o.LogWriter, max: 64 << 10}
	p, err := startGcloud(gcloud, host, o.Project, dir, out)
	if err != nil {
		cleanup()
		return nil, err
	}

	e := &Emulator{kind: CloudSDK, host: host, project: o.Project, proc: p}
	e.stop = sync.OnceValue(func() error {
		if e.gate != nil {
			e.gate.close()
		}
		err := p.stop()
		cleanup()
		return err
	})

	startCtx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	if err := waitCloudSDK(startCtx, host, p); err != nil {
		_ = e.stop()
		return nil, fmt.Errorf("pubsub: Cloud SDK emulator on %s did not start: %w\n%s", host, err, out.tail(30))
	}
	g, err := startGate(host, o.Project, o.Logger, o.Faults)
	if err != nil {
		_ = e.stop()
		return nil, err
	}
	e.gate = g
	return e, nil
}

// sdkDataDir prepares the emulator's folder: dataDir, or a temporary one
// that cleanup removes, holding gcloud's configuration, the emulator's data
// and its Java logging configuration.
func sdkDataDir(dataDir string) (dir string, cleanup func(), err error) {
	dir, cleanup = dataDir, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cmmsflow-pubsub-"); err != nil {
			return "", nil, err
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
	}
	for _, sub := range []string{"gcloud", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, javaLoggingFile), []byte(javaLogging), 0o600); err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, cleanup, nil
}

// startGcloud starts `gcloud beta emulators pubsub start` on host for
// project, in its own process group, with its configuration and data under
// dir (sdkDataDir) and its output to out.
func startGcloud(gcloud, host, project, dir string, out io.Writer) (*sdkProcess, error) {
	cmd := exec.Command(gcloud, "beta", "emulators", "pubsub", "start",
		"--host-port="+host, "--project="+project, "--data-dir="+filepath.Join(dir, "data"), "--quiet")
	cmd.Env = append(os.Environ(),
		"CLOUDSDK_CONFIG="+filepath.Join(dir, "gcloud"),
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true",
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
		// The emulator's start script passes this to the JVM.
		"CLOUD_PUBSUB_EMULATOR_OPTS=-Djava.util.logging.config.file="+filepath.Join(dir, javaLoggingFile),
	)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pubsub: start gcloud: %w", err)
	}
	p := &sdkProcess{cmd: cmd, pgid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// waitCloudSDK polls the emulator's HTTP root, which answers "Ok" once the
// server listens, until ctx ends or the process exits.
func waitCloudSDK(ctx context.Context, host string, p *sdkProcess) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "Ok" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("gcloud exited: %v", p.waitErr)
		case <-tick.C:
		}
	}
}

// sdkProcess is gcloud and everything it spawned, one process group.
type sdkProcess struct {
	cmd     *exec.Cmd
	pgid    int
	exited  chan struct{} // closed when gcloud itself has exited
	waitErr error
}

// stop sends SIGTERM to the group, SIGKILL after 10 s, and returns once no
// process of the group is left (java may outlive gcloud otherwise).
func (p *sdkProcess) stop() error {
	_ = syscall.Kill(-p.pgid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	killed := false
	for {
		gone := groupGone(p.pgid)
		select {
		case <-p.exited:
		default:
			gone = false
		}
		if gone {
			return nil
		}
		if !killed && time.Now().After(deadline) {
			_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
			killed = true
			deadline = time.Now().Add(10 * time.Second)
		} else if killed && time.Now().After(deadline) {
			return fmt.Errorf("pubsub: process group %d still alive after SIGKILL", p.pgid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// groupGone reports whether no live process is left in process group pgid.
// Zombies do not count: an orphaned java reparented to a PID 1 that does not
// reap would otherwise look alive forever.
func groupGone(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	live, ok := liveInGroup(pgid)
	return ok && live == 0
}

// liveInGroup counts the processes of group pgid that are not zombies, from
// /proc; ok is false where /proc is not available.
func liveInGroup(pgid int) (live int, ok bool) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return 0, false
	}
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces and parens.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) < 3 || fields[2] != strconv.Itoa(pgid) {
			continue
		}
		if fields[0] != "Z" && fields[0] != "X" {
			live++
		}
	}
	return live, true
}

// tailWriter forwards writes and keeps the last max bytes for error messages.
type tailWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	max int
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	_, _ = t.w.Write(p) // a failing log writer must not stop the emulator
	return len(p), nil
}

// tail returns the last n lines written.
func (t *tailWriter) tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := bytes.Split(bytes.TrimRight(t.buf, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
