package local

import (
	"bufio"
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
)

// The work orders sorted by asset, then creation, in bounded memory: they
// are collected in runs of at most runRows; each full run is sorted and
// written to a file in the build's temporary directory (woRecord bytes a
// work order), the last one stays in memory, and eachAsset merges the runs.
// The raw table's row order is not relied on (the extractor does not order
// it). A run's sort breaks ties by read order and the merge by run, so the
// work orders of one asset created in the same microsecond keep the order
// they were read in, whatever the run size.

// woRecord is the size of an encoded WorkOrder.
const woRecord = 4 + 8 + 8 + 4 + 1 + 1 + 8

const (
	flagPreventive = 1 << iota
	flagCorrective
	flagHasRepair
)

func appendWO(b []byte, w *WorkOrder) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(w.Asset))
	b = le.AppendUint64(b, uint64(w.Created))
	b = le.AppendUint64(b, uint64(w.Completed))
	b = le.AppendUint32(b, uint32(w.Due))
	b = append(b, w.Priority, flag(w.Preventive, flagPreventive)|flag(w.Corrective, flagCorrective)|flag(w.HasRepair, flagHasRepair))
	return le.AppendUint64(b, math.Float64bits(w.Repair))
}

func decodeWO(b []byte, w *WorkOrder) {
	le := binary.LittleEndian
	*w = WorkOrder{
		Asset: int32(le.Uint32(b[0:])), Created: int64(le.Uint64(b[4:])), Completed: int64(le.Uint64(b[12:])),
		Due: int32(le.Uint32(b[20:])), Priority: b[24],
		Preventive: b[25]&flagPreventive != 0, Corrective: b[25]&flagCorrective != 0, HasRepair: b[25]&flagHasRepair != 0,
		Repair: math.Float64frombits(le.Uint64(b[26:])),
	}
}

func flag(set bool, f byte) byte {
	if set {
		return f
	}
	return 0
}

func byAssetCreated(a, b WorkOrder) int {
	return cmp.Or(cmp.Compare(a.Asset, b.Asset), cmp.Compare(a.Created, b.Created))
}

// inRun orders a run: by asset, creation, then read order (unique: the
// sort need not be stable).
func inRun(a, b WorkOrder) int {
	return cmp.Or(byAssetCreated(a, b), cmp.Compare(a.order, b.order))
}

// ioBuffer is the buffer of each run file, written or read.
const ioBuffer = 64 << 10

// woSorter sorts the work orders.
type woSorter struct {
	dir      string
	runRows  int
	run      []WorkOrder
	files    []*os.File
	n        int64 // work orders added
	earliest int64 // first creation, us; never when none
	spilled  func(kind string)
}

func newWOSorter(dir string, runRows int, spilled func(kind string)) *woSorter {
	return &woSorter{dir: dir, runRows: runRows, earliest: never, spilled: spilled}
}

func (s *woSorter) add(w *WorkOrder) error {
	s.n++
	s.earliest = min(s.earliest, w.Created)
	if len(s.run) == cap(s.run) { // double, up to a run
		s.run = slices.Grow(s.run, min(max(len(s.run), 1024), s.runRows-len(s.run)))
	}
	s.run = append(s.run, *w)
	s.run[len(s.run)-1].order = uint32(len(s.run) - 1)
	if len(s.run) < s.runRows {
		return nil
	}
	return s.spill()
}

// spill sorts the run and writes it to a new file.
func (s *woSorter) spill() error {
	slices.SortFunc(s.run, inRun)
	f, err := os.CreateTemp(s.dir, "work-orders-*.run")
	if err != nil {
		return fmt.Errorf("spill work orders: %w", err)
	}
	s.files = append(s.files, f)
	bw := bufio.NewWriterSize(f, ioBuffer)
	rec := make([]byte, 0, woRecord)
	for i := range s.run {
		_, _ = bw.Write(appendWO(rec, &s.run[i])) // a failed write sticks: Flush reports it
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("spill work orders: %w", err)
	}
	s.run = s.run[:0]
	if s.spilled != nil {
		s.spilled("run")
	}
	return nil
}

// close closes the run files (the build removes its directory) and drops
// the run in memory.
func (s *woSorter) close() {
	for _, f := range s.files {
		_ = f.Close()
	}
	s.files, s.run = nil, nil
}

// eachAsset calls fn with the work orders of each asset that has any, in
// asset order, each asset's sorted by creation. ws is only valid during the
// call. It closes the sorter.
func (s *woSorter) eachAsset(ctx context.Context, fn func(asset int32, ws []WorkOrder) error) error {
	defer s.close()
	slices.SortFunc(s.run, inRun)
	m := make(merge, 0, len(s.files)+1)
	for i, f := range s.files {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		m = append(m, &cursor{order: i, r: bufio.NewReaderSize(f, ioBuffer)})
	}
	m = append(m, &cursor{order: len(s.files), mem: s.run})
	live := m[:0]
	for _, c := range m {
		if ok, err := c.next(); err != nil {
			return err
		} else if ok {
			live = append(live, c)
		}
	}
	heap.Init(&live)
	var group []WorkOrder
	for len(live) > 0 {
		c := live[0]
		if len(group) > 0 && group[0].Asset != c.cur.Asset {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(group[0].Asset, group); err != nil {
				return err
			}
			group = group[:0]
		}
		group = append(group, c.cur)
		if ok, err := c.next(); err != nil {
			return err
		} else if ok {
			heap.Fix(&live, 0)
		} else {
			heap.Pop(&live)
		}
	}
	if len(group) > 0 {
		return fn(group[0].Asset, group)
	}
	return nil
}

// cursor reads one sorted run: from a file (r) or from memory (mem).
type cursor struct {
	order int // the run's place in the input: breaks ties
	cur   WorkOrder
	r     *bufio.Reader
	mem   []WorkOrder
	rec   [woRecord]byte
}

func (c *cursor) next() (bool, error) {
	if c.r == nil {
		if len(c.mem) == 0 {
			return false, nil
		}
		c.cur, c.mem = c.mem[0], c.mem[1:]
		return true, nil
	}
	if _, err := io.ReadFull(c.r, c.rec[:]); err == io.EOF {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("read spilled work orders: %w", err)
	}
	decodeWO(c.rec[:], &c.cur)
	return true, nil
}

// merge is a heap of cursors by their current work order.
type merge []*cursor

func (m merge) Len() int { return len(m) }
func (m merge) Less(i, j int) bool {
	return cmp.Or(byAssetCreated(m[i].cur, m[j].cur), cmp.Compare(m[i].order, m[j].order)) < 0
}
func (m merge) Swap(i, j int) { m[i], m[j] = m[j], m[i] }
func (m *merge) Push(x any)   { *m = append(*m, x.(*cursor)) }
func (m *merge) Pop() any {
	old := *m
	c := old[len(old)-1]
	*m = old[:len(old)-1]
	return c
}
