// Package benchcpu measures the CPU time a benchmark's work takes, and the
// machine's steal meanwhile. Linux only.
//
// Wall time on a shared virtual machine includes the time the hypervisor
// gives the vCPUs to others (steal): in bursts of seconds, a third of two
// vCPUs has been seen to go, so one side of a pair can run slower than the
// other for reasons that are not its own. CPU time is not charged for
// steal (the kernel's paravirtual steal clock), so it is closer to the work
// done; it still rises while the host is busy, as a vCPU that runs then runs
// slower. It is counted wherever the work runs:
//
//   - this process, through getrusage (its threads, and its children once
//     waited for);
//   - the live descendants of this process (a bucket emulator in a child
//     process, say), from /proc/<pid>/stat;
//   - other process trees the work runs in, given by their roots: the
//     PostgreSQL server (libs/pgtest.ServerPID), whose backends do a
//     query's work. A root's own time counts its children that have ended
//     and been waited for (a backend whose connection closed).
//
// In use:
//
//	m, err := benchcpu.Start(serverPID)
//	... the work ...
//	u, err := m.Stop() // u.CPU, u.Steal
//
// Whatever else those processes do meanwhile counts too (autovacuum, another
// test's queries on the same server): measure on a quiet machine.
package benchcpu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of /proc's times: USER_HZ, 100 on every Linux
// architecture Go runs on.
const userHZ = 100

// Usage is what a Meter measured.
type Usage struct {
	// CPU is the user and system time of the processes measured.
	CPU time.Duration
	// Steal is the share of the machine's CPU time that went to steal
	// (0 to 1), over all its CPUs.
	Steal float64
}

// Meter is a measurement in progress.
type Meter struct {
	roots []int
	cpu   time.Duration
	stat  machine
}

// Start samples the CPU time of this process and its descendants, and of
// the process trees rooted at roots, and the machine's counters.
func Start(roots ...int) (*Meter, error) {
	m := &Meter{roots: roots}
	var err error
	if m.cpu, err = m.sample(); err != nil {
		return nil, err
	}
	if m.stat, err = readMachine(); err != nil {
		return nil, err
	}
	return m, nil
}

// Stop is the CPU time used since Start, and the steal's share.
func (m *Meter) Stop() (Usage, error) {
	cpu, err := m.sample()
	if err != nil {
		return Usage{}, err
	}
	stat, err := readMachine()
	if err != nil {
		return Usage{}, err
	}
	u := Usage{CPU: cpu - m.cpu}
	if total := stat.total - m.stat.total; total > 0 {
		u.Steal = float64(stat.steal-m.stat.steal) / float64(total)
	}
	return u, nil
}

// sample is the CPU time so far of this process (with its waited-for
// children), its live descendants, and the trees of m.roots.
func (m *Meter) sample() (time.Duration, error) {
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		return 0, fmt.Errorf("benchcpu: getrusage: %w", err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		return 0, fmt.Errorf("benchcpu: getrusage: %w", err)
	}
	cpu := rusageCPU(self) + rusageCPU(children)
	procs, err := readProcs()
	if err != nil {
		return 0, err
	}
	me := os.Getpid()
	below := procs.children()
	counted := map[int]bool{me: true}
	for _, pid := range below.descendants(me) {
		counted[pid] = true
		cpu += procs[pid].total()
	}
	for _, root := range m.roots {
		if _, ok := procs[root]; !ok {
			return 0, fmt.Errorf("benchcpu: no process %d", root)
		}
		for _, pid := range append([]int{root}, below.descendants(root)...) {
			if !counted[pid] {
				counted[pid] = true
				cpu += procs[pid].total()
			}
		}
	}
	return cpu, nil
}

func rusageCPU(r syscall.Rusage) time.Duration {
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// proc is a process's line of /proc/<pid>/stat: its parent and its times
// in clock ticks, its own (utime, stime) and its waited-for children's.
type proc struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

func (p proc) total() time.Duration {
	return time.Duration(p.utime+p.stime+p.cutime+p.cstime) * time.Second / userHZ
}

type procs map[int]proc

// readProcs reads every process's stat; one that ends meanwhile is left
// out.
func readProcs() (procs, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("benchcpu: %w", err)
	}
	out := procs{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("benchcpu: %w", err)
		}
		p, err := parseStat(data)
		if err != nil {
			return nil, fmt.Errorf("benchcpu: /proc/%d/stat: %w", pid, err)
		}
		out[pid] = p
	}
	return out, nil
}

// tree is each process's children.
type tree map[int][]int

func (ps procs) children() tree {
	t := tree{}
	for p, st := range ps {
		t[st.ppid] = append(t[st.ppid], p)
	}
	return t
}

// descendants are the processes below pid, at any depth.
func (t tree) descendants(pid int) []int {
	var out []int
	for queue := t[pid]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, t[queue[0]]...)
	}
	return out
}

// parseStat reads a /proc/<pid>/stat line: "pid (comm) state ppid …", comm
// possibly holding spaces and parentheses, utime to cstime the 14th to
// 17th fields.
func parseStat(data []byte) (proc, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return proc{}, errors.New("no command name")
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is the 3rd field, state
	if len(f) < 15 {
		return proc{}, fmt.Errorf("%d fields after the command name, want 15 or more", len(f))
	}
	var p proc
	var err error
	if p.ppid, err = strconv.Atoi(f[1]); err != nil {
		return proc{}, err
	}
	for j, dst := range []*int64{&p.utime, &p.stime, &p.cutime, &p.cstime} {
		if *dst, err = strconv.ParseInt(f[11+j], 10, 64); err != nil {
			return proc{}, err
		}
	}
	return p, nil
}

// machine is the first line of /proc/stat: all CPUs' time, in ticks.
type machine struct{ total, steal int64 }

func readMachine() (machine, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machine{}, fmt.Errorf("benchcpu: %w", err)
	}
	return parseMachine(data)
}

// parseMachine reads "cpu user nice system idle iowait irq softirq steal
// guest guest_nice": total is the first eight (guest time is in user).
func parseMachine(data []byte) (machine, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return machine{}, fmt.Errorf("benchcpu: /proc/stat: first line %q, want cpu and 8 counters or more", line)
	}
	var m machine
	for j := 1; j <= 8; j++ {
		n, err := strconv.ParseInt(f[j], 10, 64)
		if err != nil {
			return machine{}, fmt.Errorf("benchcpu: /proc/stat: %w", err)
		}
		m.total += n
		if j == 8 {
			m.steal = n
		}
	}
	return m, nil
}

// Parent is pid's parent process: a PostgreSQL backend's is the server
// (libs/pgtest.ServerPID).
func Parent(pid int) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("benchcpu: %w", err)
	}
	p, err := parseStat(data)
	if err != nil {
		return 0, fmt.Errorf("benchcpu: /proc/%d/stat: %w", pid, err)
	}
	return p.ppid, nil
}
