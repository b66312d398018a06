package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is one service process of the stack: started from its binary with its
// environment, its output prefixed with its name.
type Proc struct {
	Name   string
	URL    string // http://127.0.0.1:PORT
	bin    string
	dir    string // working directory
	env    []string
	out    *prefixWriter
	health string // path polled by WaitReady

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start launches the process. It is an error to start a running process.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.Name)
	}
	cmd := exec.Command(p.bin)
	cmd.Env = p.env
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Own process group: Ctrl-C reaches the stack, which stops services in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		if p.cmd == cmd {
			p.cmd = nil
		}
		p.mu.Unlock()
		if err != nil && !isSignalled(err) {
			fmt.Fprintf(p.out, "exited: %v\n", err)
		}
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

func isSignalled(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Stop sends SIGTERM and waits up to grace for a clean exit, then SIGKILLs.
func (p *Proc) Stop(grace time.Duration) {
	p.signal(syscall.SIGTERM, grace)
}

// Kill ends the process at once with SIGKILL, as a crash would.
func (p *Proc) Kill() {
	p.signal(syscall.SIGKILL, 5*time.Second)
}

func (p *Proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// WaitReady polls the process's health path until it answers 200.
func (p *Proc) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		if !p.Running() {
			return fmt.Errorf("%s exited during start-up (see its log lines above)", p.Name)
		}
		pid, err := p.healthPID(client)
		if err == nil && pid == p.pid() {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("pid %d answered, not %s's %d: another process holds its port", pid, p.Name, p.pid())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s: %v", p.Name, p.URL+p.health, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// healthPID asks the health endpoint which process answers.
func (p *Proc) healthPID(client *http.Client) (int, error) {
	resp, err := client.Get(p.URL + p.health)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		PID int `json:"pid"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body); err != nil {
		return 0, err
	}
	return body.PID, nil
}

// pid is the running process's id, or 0.
func (p *Proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// prefixWriter writes each line of a process's output as "name | line".
// A service's writer also appends the raw line to its log file (file) and
// prints it rendered (render) on the console.
type prefixWriter struct {
	mu     *sync.Mutex // shared by all processes of the stack
	w      io.Writer
	prefix string
	buf    []byte
	file   io.Writer           // nil: no log file
	render func([]byte) []byte // nil: printed as it is
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := indexNL(w.buf)
		if i < 0 {
			break
		}
		line := w.buf[:i]
		if w.file != nil {
			_, _ = w.file.Write(w.buf[:i+1]) // a full disk must not stop the service
		}
		if w.render != nil {
			line = w.render(line)
		}
		fmt.Fprintf(w.w, "%s | %s\n", w.prefix, line)
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}
