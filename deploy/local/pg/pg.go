// Package pg runs a private PostgreSQL cluster for the local stack and the
// tests: initdb into a folder, start it on a loopback port, stop it.
//
// As root (CI, containers) the server runs as the postgres system user, since
// PostgreSQL refuses to run as root. That user must be able to enter the data
// folder, and a clone under a private folder (/root, any `mktemp -d`: mode
// 0700) is closed to it. Then the data lives in the postgres user's home,
// under cmmsflow/<folder name>-<hash of the folder's path>, and the folder
// asked for is a symbolic link to it; no permission of the user's folders
// is changed.
package pg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a PostgreSQL data directory served on a loopback port.
type Cluster struct {
	// Dir is the data folder, or a link to it (see the package comment).
	Dir string
	// Port to serve on; 0 picks a free one (or, when the server of Dir is
	// already running, the port it serves on).
	Port int
	// Fast trades durability for speed (fsync off); for test clusters.
	Fast bool

	bin  string
	cred *syscall.Credential
	data string // where the data is: Dir, or its link's target
	home string // the server's user's home, as root
}

// AdminURL is the superuser URL for database name.
func (c *Cluster) URL(database string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), Path: "/" + database}
	u.RawQuery = "sslmode=disable"
	return u.String()
}

// Start initialises the cluster if its folder is empty and starts the server,
// unless one is already running on that folder. It returns whether it
// started the server (and so should stop it).
func (c *Cluster) Start(ctx context.Context) (started bool, err error) {
	if err := c.setup(); err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx); err != nil {
			return false, err
		}
	}
	if c.running(ctx) {
		if c.Port == 0 {
			if c.Port, err = c.pidPort(); err != nil {
				return false, err
			}
		}
		return false, c.waitReady(ctx)
	}
	if c.Port == 0 {
		if c.Port, err = freePort(); err != nil {
			return false, err
		}
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", c.Port, c.data)
	if c.Fast {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	opts += " -c max_connections=300"
	out, err := c.run(ctx, "pg_ctl", "-D", c.data, "-l", filepath.Join(c.data, "server.log"), "-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.data, "server.log"))
		return false, fmt.Errorf("pg: start: %w\n%s\n%s", err, out, tail(string(log), 20))
	}
	return true, c.waitReady(ctx)
}

// Stop shuts the server down (fast mode: active sessions are ended).
func (c *Cluster) Stop(ctx context.Context) error {
	if err := c.setup(); err != nil {
		return err
	}
	if out, err := c.run(ctx, "pg_ctl", "-D", c.data, "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pg: stop: %w: %s", err, out)
	}
	return nil
}

// EnsureDatabase creates database name if it does not exist.
func (c *Cluster) EnsureDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pg: connect: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

func (c *Cluster) setup() error {
	if c.data != "" {
		return nil
	}
	bin, err := findBin()
	if err != nil {
		return err
	}
	c.bin = bin
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return errors.New("pg: running as root needs the postgres system user (PostgreSQL refuses to run as root)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		c.home = u.HomeDir
	}
	if c.Dir, err = filepath.Abs(c.Dir); err != nil {
		return fmt.Errorf("pg: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(c.Dir), 0o755); err != nil {
		return fmt.Errorf("pg: %w", err)
	}
	data, err := c.dataDir()
	if err != nil {
		return err
	}
	if err := os.Mkdir(data, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("pg: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(data, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pg: %w", err)
		}
	}
	c.data = data
	return nil
}

// dataDir returns where the data goes: Dir itself when the server's user can
// enter Dir's parent, else a folder in that user's home that Dir links to.
func (c *Cluster) dataDir() (string, error) {
	if target, err := os.Readlink(c.Dir); err == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(c.Dir), target)
		}
		return target, c.ensureParent(target) // linked by an earlier start
	}
	if c.cred == nil || c.canEnter(filepath.Dir(c.Dir)) {
		return c.Dir, nil
	}
	if entries, err := os.ReadDir(c.Dir); err == nil && len(entries) > 0 {
		return "", fmt.Errorf("pg: the postgres user cannot enter %s, which holds data already: move it out of the private folder, or remove it", c.Dir)
	}
	sum := sha256.Sum256([]byte(c.Dir))
	data := filepath.Join(c.home, "cmmsflow", filepath.Base(c.Dir)+"-"+hex.EncodeToString(sum[:6]))
	if err := c.ensureParent(data); err != nil {
		return "", err
	}
	_ = os.Remove(c.Dir) // an empty folder left by an older version
	if err := os.Symlink(data, c.Dir); err != nil {
		return "", fmt.Errorf("pg: link %s to %s: %w", c.Dir, data, err)
	}
	return data, nil
}

// ensureParent makes the folder that holds data, owned by the server's user.
func (c *Cluster) ensureParent(data string) error {
	parent := filepath.Dir(data)
	if _, err := os.Stat(parent); err == nil {
		return nil
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("pg: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(parent, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pg: %w", err)
		}
	}
	return nil
}

// canEnter reports whether the server's user can enter dir: every folder on
// the way grants it search permission (mode bits, groups and ACLs alike).
func (c *Cluster) canEnter(dir string) bool {
	cmd := exec.Command("/bin/sh", "-c", `cd -- "$1"`, "sh", dir)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd.Run() == nil
}

// Remove deletes the cluster's data (and the link to it); the server must be
// stopped.
func (c *Cluster) Remove() error {
	if err := c.setup(); err != nil {
		return err
	}
	if err := os.RemoveAll(c.data); err != nil {
		return fmt.Errorf("pg: %w", err)
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("pg: %w", err)
	}
	return nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	out, err := c.run(ctx, "initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions")
	if err != nil {
		return fmt.Errorf("pg: initdb: %w: %s", err, out)
	}
	return nil
}

func (c *Cluster) running(ctx context.Context) bool {
	_, err := c.run(ctx, "pg_ctl", "-D", c.data, "status")
	return err == nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pg: server on port %d not ready: %w", c.Port, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = os.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Own process group: a Ctrl-C in the terminal must not reach the server
	// before the stack stops it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	err := cmd.Run()
	return out.String(), err
}

// findBin locates the PostgreSQL server binaries: pg_ctl on PATH, else the
// newest /usr/lib/postgresql/<version>/bin.
func findBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	if len(dirs) > 0 {
		return dirs[len(dirs)-1], nil
	}
	return "", errors.New("pg: PostgreSQL server binaries not found (install postgresql, or set DATABASE_URL)")
}

// pidPort reads the port of the running server from postmaster.pid.
func (c *Cluster) pidPort() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("pg: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, errors.New("pg: postmaster.pid has no port line")
	}
	return strconv.Atoi(strings.TrimSpace(lines[3]))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pg: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
