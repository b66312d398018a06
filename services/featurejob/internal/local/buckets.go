package local

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// buckets turn the training figures, computed asset by asset, into the
// output's order, snapshot by snapshot: one bucket a snapshot, each holding
// (asset, Counts) records in the order they were added. A bucket keeps up to
// chunkRecords records in memory; a full chunk is appended to one file in
// the build's temporary directory, and each reads back its chunks in order.
type buckets struct {
	dir          string
	chunkRecords int
	f            *os.File // created at the first full chunk
	size         int64    // bytes written to f
	tail         [][]byte // per bucket, the records not written yet
	chunks       [][]int64
	spilled      func(kind string)
}

// countsRecord is the size of an encoded (asset, Counts) record.
const countsRecord = 4 + 7*4 + 8 + 8 + 4

func newBuckets(dir string, n, chunkRecords int, spilled func(kind string)) *buckets {
	return &buckets{dir: dir, chunkRecords: chunkRecords, tail: make([][]byte, n), chunks: make([][]int64, n), spilled: spilled}
}

func (b *buckets) add(k int, asset int32, c *Counts) error {
	if b.tail[k] == nil {
		b.tail[k] = make([]byte, 0, b.chunkRecords*countsRecord)
	}
	b.tail[k] = appendCounts(b.tail[k], asset, c)
	if len(b.tail[k]) < cap(b.tail[k]) {
		return nil
	}
	if b.f == nil {
		f, err := os.CreateTemp(b.dir, "training-*.chunks")
		if err != nil {
			return fmt.Errorf("spill training figures: %w", err)
		}
		b.f = f
	}
	if _, err := b.f.WriteAt(b.tail[k], b.size); err != nil {
		return fmt.Errorf("spill training figures: %w", err)
	}
	b.chunks[k] = append(b.chunks[k], b.size)
	b.size += int64(len(b.tail[k]))
	b.tail[k] = b.tail[k][:0]
	if b.spilled != nil {
		b.spilled("chunk")
	}
	return nil
}

// each calls fn with bucket k's records in the order they were added.
func (b *buckets) each(k int, fn func(asset int32, c *Counts) error) error {
	var c Counts
	var buf []byte
	read := func(recs []byte) error {
		for ; len(recs) > 0; recs = recs[countsRecord:] {
			if err := fn(decodeCounts(recs, &c), &c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, off := range b.chunks[k] {
		if buf == nil {
			buf = make([]byte, b.chunkRecords*countsRecord)
		}
		if _, err := b.f.ReadAt(buf, off); err != nil {
			return fmt.Errorf("read spilled training figures: %w", err)
		}
		if err := read(buf); err != nil {
			return err
		}
	}
	return read(b.tail[k])
}

func (b *buckets) close() {
	if b.f != nil {
		_ = b.f.Close()
	}
}

func appendCounts(b []byte, asset int32, c *Counts) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(asset))
	for _, v := range [...]int32{c.Total, c.Completed, c.High, c.Critical, c.Corrective, c.Missed, c.Repairs} {
		b = le.AppendUint32(b, uint32(v))
	}
	b = le.AppendUint64(b, math.Float64bits(c.RepairSum))
	b = le.AppendUint64(b, uint64(c.LastMaint))
	return le.AppendUint32(b, uint32(c.Label))
}

func decodeCounts(b []byte, c *Counts) (asset int32) {
	le := binary.LittleEndian
	i32 := func(off int) int32 { return int32(le.Uint32(b[off:])) }
	*c = Counts{Total: i32(4), Completed: i32(8), High: i32(12), Critical: i32(16), Corrective: i32(20), Missed: i32(24), Repairs: i32(28),
		RepairSum: math.Float64frombits(le.Uint64(b[32:])), LastMaint: int64(le.Uint64(b[40:])), Label: i32(48)}
	return i32(0)
}
