package pubsub

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// With faults on, the embedded emulator delivers some messages twice and
// some after messages published later; every message still arrives, and
// the counts match what the endpoint saw.
func TestEmbeddedDeliveryFaults(t *testing.T) {
	t.Parallel()
	faults := &DeliveryFaults{DuplicateRate: 0.5, DelayRate: 0.5, MaxDelay: 300 * time.Millisecond, Seed: 42}
	faults.Enable(true)
	_, c := startEmbedded(t, Options{Project: testProject, Faults: faults})
	rec := newRecorder(t, nil)
	if err := Provision(t.Context(), c, testProject, rec.endpoint); err != nil {
		t.Fatal(err)
	}
	s, path := unfiltered(t)
	const n = 40
	for i := range n {
		publish(t, c, testProject, s.Topic, fmt.Sprintf(`{"i":%d}`, i), map[string]string{"ce-id": fmt.Sprint(i)})
		time.Sleep(10 * time.Millisecond) // distinct publish times
	}
	distinct := func(ps []push) map[string]int {
		seen := map[string]int{}
		for _, p := range ps {
			seen[p.msg.PubSubID]++
		}
		return seen
	}
	rec.waitFor("every message", 20*time.Second, func([]push) bool { return len(distinct(rec.on(path))) == n })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := faults.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	got := faults.Counts()
	extra := 0
	for _, k := range distinct(rec.on(path)) {
		extra += k - 1
	}
	if got.Duplicates == 0 || got.Delayed == 0 || got.Reordered == 0 {
		t.Fatalf("no faults injected: %+v", got)
	}
	if extra != got.Duplicates {
		t.Fatalf("endpoint saw %d extra deliveries, faults counted %+v", extra, got)
	}
	// Out of order at the endpoint: some message arrived after a later one.
	var reordered bool
	var last time.Time
	for _, p := range rec.on(path) {
		if p.msg.PublishTime.Before(last) {
			reordered = true
		}
		if p.msg.PublishTime.After(last) {
			last = p.msg.PublishTime
		}
	}
	if !reordered {
		t.Fatal("every message arrived in publish order")
	}

	// Off: no more faults.
	faults.Enable(false)
	before := faults.Counts()
	for i := range 10 {
		publish(t, c, testProject, s.Topic, fmt.Sprintf(`{"j":%d}`, i), nil)
	}
	rec.waitFor("the next messages", 10*time.Second, func([]push) bool { return len(distinct(rec.on(path))) == n+10 })
	if after := faults.Counts(); after.Delayed != before.Delayed {
		t.Fatalf("faults injected while off: %+v → %+v", before, after)
	}
}
