package eventing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/pubsubtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

const childEnv = "EVENTING_TEST_OUTBOX_CHILD_DB"

func TestMain(m *testing.M) {
	if url := os.Getenv(childEnv); url != "" {
		commitThenDie(url)
		return
	}
	os.Exit(m.Run())
}

// commitThenDie is the child process: it commits a state change with its
// event in the outbox and is killed before it can publish.
func commitThenDie(url string) {
	ctx := context.Background()
	pool, err := db.Connect(ctx, url)
	if err != nil {
		panic(err)
	}
	ev, err := eventing.New(events.StepSucceeded, events.Source(events.Pmgen), "run-kill", events.PreventiveMaintenance, "",
		&eventsv1.StepSucceeded{Step: events.Pmgen, Summary: "committed before the crash"})
	if err != nil {
		panic(err)
	}
	err = db.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO technicians (code, name, email) VALUES ('T-KILL', 'n', 'e@x')`); err != nil {
			return err
		}
		return eventing.Emit(ctx, tx, ev)
	})
	if err != nil {
		panic(err)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute)
}

func TestOutboxEventSurvivesKillAfterCommit(t *testing.T) {
	pool, url := pgtest.NewWithURL(t)
	ps := pubsubtest.New(t)
	got := ps.Subscribe(t, "step-succeeded")

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+url)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child should die by SIGKILL, got %v: %s", err, out)
	}
	var pending int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL AND event_type = $1`, events.StepSucceeded).Scan(&pending); err != nil || pending != 1 {
		t.Fatalf("want the committed event pending in the outbox, got %d (%v)", pending, err)
	}
	if m := got.Next(200 * time.Millisecond); m != nil {
		t.Fatal("nothing may be published before the restart")
	}

	// The restarted service's relay publishes on start-up, without waiting
	// for its poll interval.
	pub := eventing.NewPubSubPublisher(ps.Client)
	defer pub.Close()
	relay := eventing.NewRelay(pool, pub, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); relay.Run(ctx) }()
	defer func() { cancel(); <-done }()

	m := got.Next(5 * time.Second)
	if m == nil {
		t.Fatal("the event was not published after restart")
	}
	ev, err := eventing.FromMessage(eventing.Message{Attributes: m.Attributes, Data: m.Data})
	if err != nil {
		t.Fatal(err)
	}
	var p eventsv1.StepSucceeded
	if err := ev.Decode(&p); err != nil || p.Summary != "committed before the crash" || ev.RunID != "run-kill" {
		t.Fatalf("published %+v %v", &p, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for pending != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending)
	}
	if pending != 0 {
		t.Fatal("published row not marked")
	}
	if m := got.Next(300 * time.Millisecond); m != nil {
		t.Fatal("published twice")
	}
}

func TestPruneKeepsWhatMayStillMatter(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO outbox (topic, event_id, event_type, attributes, data, published_at) VALUES
			('t', 'old-published', 'x', '{}', '', now() - interval '8 days'),
			('t', 'new-published', 'x', '{}', '', now() - interval '1 day'),
			('t', 'old-pending',   'x', '{}', '', NULL);
		UPDATE outbox SET created_at = now() - interval '40 days' WHERE event_id = 'old-pending';
		INSERT INTO processed_events (consumer, event_id, event_type, processed_at) VALUES
			('c', 'ancient', 'x', now() - interval '33 days'),
			('c', 'recent',  'x', now() - interval '30 days');`)
	if err != nil {
		t.Fatal(err)
	}
	if err := eventing.Prune(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var left []string
	rows, _ := pool.Query(ctx, `SELECT event_id FROM outbox UNION ALL SELECT event_id FROM processed_events ORDER BY 1`)
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		left = append(left, id)
	}
	if fmt.Sprint(left) != "[new-published old-pending recent]" {
		t.Fatalf("left %v: want unpublished rows and recent dedupe records kept", left)
	}
}
