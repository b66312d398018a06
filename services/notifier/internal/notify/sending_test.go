package notify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email/sendgridtest"
)

// sendHold is how long the fake SendGrid and the fake webhook take to answer.
const sendHold = 2 * time.Second

// While SendGrid or a webhook takes its time to answer, no transaction is
// open on the database: neither during a step (workorders-generated) nor
// during an alert (step-failed).
func TestNoTransactionOpenWhileSending(t *testing.T) {
	var posts atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(sendHold)
		posts.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(slow.Close)
	f := newFixture(t, options{sendgrid: true, webhooks: "json=" + slow.URL + "/hook"})
	f.sg.Respond(func(r sendgridtest.Request) int {
		if r.Key() == runID+":email:admins:pm_summary" || r.Key() == "alert:"+runID {
			time.Sleep(sendHold)
		}
		return http.StatusAccepted
	})

	for _, ev := range []eventing.Event{generated(t), stepFailed(t, runID, events.Pmgen, "boom", false)} {
		stop, longest := make(chan struct{}), make(chan time.Duration, 1)
		go func() { longest <- f.sampleTransactions(stop) }()
		started := time.Now()
		eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
		took := time.Since(started)
		close(stop)
		l := <-longest
		if took < 2*sendHold {
			t.Fatalf("%s handled in %s: the slow email and webhook were not both waited for", ev.Type(), took)
		}
		if l > time.Second {
			t.Errorf("%s: a transaction stayed open %s while sending (handled in %s), want at most 1s", ev.Type(), l, took)
		} else {
			t.Logf("%s: longest transaction seen while sending for %s: %s", ev.Type(), took.Round(time.Millisecond), l)
		}
	}
	if n := len(f.sg.Requests()); n != 4 || posts.Load() != 2 {
		t.Fatalf("%d emails and %d webhook posts, want 4 (Ann, Bob, the summary, the alert) and 2", n, posts.Load())
	}
}

// sampleTransactions asks for the oldest open transaction every 50 ms until
// stop, and returns the oldest seen.
func (f *fixture) sampleTransactions(stop <-chan struct{}) time.Duration {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var longest time.Duration
	for {
		select {
		case <-stop:
			return longest
		case <-tick.C:
		}
		age, err := f.oldestTransaction()
		if err != nil {
			f.t.Error(err)
			return longest
		}
		longest = max(longest, age)
	}
}

// oldestTransaction is the age of the oldest transaction open on the test's
// database, but the asker's own (as libs/eventing's lease test samples it).
func (f *fixture) oldestTransaction() (time.Duration, error) {
	var seconds float64
	err := f.pool.QueryRow(context.Background(), `
		SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`).Scan(&seconds)
	return time.Duration(seconds * float64(time.Second)), err
}
