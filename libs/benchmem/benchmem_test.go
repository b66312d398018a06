package benchmem

import (
	"runtime"
	"testing"
	"time"
)

var sink []byte

// A 64 MiB buffer held and written during the measurement is in both
// peaks; measured again after it is dropped, the RSS peak is back near the
// base: Start reset it.
func TestPeaks(t *testing.T) {
	const size = 64 << 20
	m, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	sink = make([]byte, size)
	for i := range sink {
		sink[i] = byte(i)
	}
	time.Sleep(10 * HeapInterval) // a sample or more while it is live
	p, err := m.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if p.Heap < size || p.RSS < p.RSSBase+size*9/10 {
		t.Fatalf("peak heap %.1f MiB, RSS %.1f MiB over a base of %.1f MiB: want the 64 MiB buffer in both",
			MiB(p.Heap), MiB(p.RSS), MiB(p.RSSBase))
	}
	sink = nil
	runtime.GC()
	if m, err = Start(); err != nil {
		t.Fatal(err)
	}
	q, err := m.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if q.Heap >= size/2 || q.RSS >= p.RSS-size/2 {
		t.Fatalf("after the buffer went: peak heap %.1f MiB, RSS %.1f MiB (before %.1f MiB): the peak was not reset",
			MiB(q.Heap), MiB(q.RSS), MiB(p.RSS))
	}
}

// SampleMax keeps the largest value seen, the first taken at once.
func TestSampleMax(t *testing.T) {
	values := make(chan uint64, 3)
	for _, v := range []uint64{5, 9, 2} {
		values <- v
	}
	stop := SampleMax(time.Millisecond, func() uint64 {
		select {
		case v := <-values:
			return v
		default:
			return 0
		}
	})
	for len(values) > 0 {
		time.Sleep(time.Millisecond)
	}
	if got := stop(); got != 9 {
		t.Fatalf("SampleMax: %d, want 9", got)
	}
}
