package benchcpu

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// burnEnv makes the test binary a child that burns that much CPU and exits.
const burnEnv = "BENCHCPU_TEST_BURN"

func TestMain(m *testing.M) {
	if d, err := time.ParseDuration(os.Getenv(burnEnv)); err == nil {
		burn(d)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// burn spins until this process has used d of CPU.
func burn(d time.Duration) {
	var r syscall.Rusage
	for x := 0; ; x++ {
		if x%1_000_000 == 0 {
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
				panic(err)
			}
			if rusageCPU(r) >= d {
				return
			}
		}
	}
}

// burner starts a child process of this test that burns d of CPU.
func burner(t *testing.T, d time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), burnEnv+"="+d.String())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func measure(t *testing.T, work func(), roots ...int) Usage {
	t.Helper()
	m, err := Start(roots...)
	if err != nil {
		t.Fatal(err)
	}
	work()
	u, err := m.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if u.Steal < 0 || u.Steal > 1 {
		t.Errorf("steal share %v, want 0 to 1", u.Steal)
	}
	return u
}

// between fails unless got is in [lo, hi]: the lower bound the CPU burnt,
// the upper one what it may add (the Go runtime, the child's start, the
// 10 ms ticks of /proc).
func between(t *testing.T, what string, got, lo, hi time.Duration) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s: CPU %v, want %v to %v", what, got, lo, hi)
	}
}

func TestThisProcess(t *testing.T) {
	u := measure(t, func() { burn(cpuNow(t) + 300*time.Millisecond) })
	between(t, "this process", u.CPU, 290*time.Millisecond, 600*time.Millisecond)
}

func cpuNow(t *testing.T) time.Duration {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		t.Fatal(err)
	}
	return rusageCPU(r)
}

// A child counts while it runs (from /proc) and once waited for
// (getrusage), once either way.
func TestChildren(t *testing.T) {
	u := measure(t, func() {
		if err := burner(t, 300*time.Millisecond).Wait(); err != nil {
			t.Fatal(err)
		}
	})
	between(t, "a child waited for", u.CPU, 280*time.Millisecond, 900*time.Millisecond)

	cmd := burner(t, 300*time.Millisecond)
	u = measure(t, func() {
		for !zombie(t, cmd.Process.Pid) { // done, not yet waited for
			time.Sleep(5 * time.Millisecond)
		}
	}, cmd.Process.Pid) // a root that is a descendant counts once
	between(t, "a child done, not waited for", u.CPU, 280*time.Millisecond, 900*time.Millisecond)
}

// zombie says whether pid has ended without being waited for.
func zombie(t *testing.T, pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndexByte(data, ')')
	return i > 0 && bytes.HasPrefix(data[i+1:], []byte(" Z"))
}

func TestNoSuchRoot(t *testing.T) {
	if _, err := Start(1 << 30); err == nil {
		t.Fatal("Start with a root that is no process: no error")
	}
}

func TestDescendants(t *testing.T) {
	ps := procs{1: {}, 10: {ppid: 1}, 11: {ppid: 10}, 12: {ppid: 10}, 13: {ppid: 12}, 20: {ppid: 1}}
	got := ps.children().descendants(10)
	slices.Sort(got)
	if !slices.Equal(got, []int{11, 12, 13}) {
		t.Errorf("descendants of 10: %v, want [11 12 13]", got)
	}
	if got := ps.children().descendants(13); len(got) != 0 {
		t.Errorf("descendants of a leaf: %v", got)
	}
}

func TestParseStat(t *testing.T) {
	line := "4242 (postgres: a) b) S 4200 4200 4200 0 -1 4194368 100 0 0 0 250 37 12 3 20 0 1 0 5000 1000 100\n"
	p, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := proc{ppid: 4200, utime: 250, stime: 37, cutime: 12, cstime: 3}
	if p != want {
		t.Errorf("parsed %+v, want %+v", p, want)
	}
	if p.total() != 3020*time.Millisecond {
		t.Errorf("total %v, want 3.02s", p.total())
	}
	for _, bad := range []string{"4242 postgres S 1", "4242 (x) S 1 2 3", "4242 (x) S one 2 3 4 5 6 7 8 9 10 11 12 13 14 15"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestParseMachine(t *testing.T) {
	m, err := parseMachine([]byte("cpu  100 5 50 800 10 0 5 30 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m != (machine{total: 1000, steal: 30}) {
		t.Errorf("parsed %+v, want total 1000, steal 30", m)
	}
	if _, err := parseMachine([]byte("intr 1 2 3\n")); err == nil {
		t.Error("a first line that is not cpu: no error")
	}
}

func TestParent(t *testing.T) {
	cmd := burner(t, time.Millisecond)
	got, err := Parent(cmd.Process.Pid)
	if err != nil || got != os.Getpid() {
		t.Errorf("Parent of a child: %d, %v; want %d", got, err, os.Getpid())
	}
	if _, err := Parent(1 << 30); err == nil {
		t.Error("Parent of no process: no error")
	}
}
