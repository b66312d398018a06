package eventing

import (
	"context"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
)

// Delivery is one event on its way through a route's middleware chain: the
// decoded event, the message it came in, the outcome so far, and what the
// claim and complete transactions of a work route must also write.
type Delivery struct {
	Event   Event
	Message Message
	// Step is the consumer's step the event starts ("" when the route is
	// not a step).
	Step string
	// Outcome is Handled unless a middleware says otherwise (Duplicate,
	// Cancelled, Leased, DeadLettered).
	Outcome Outcome
	// Result is a step's or a work's result, set by the route's innermost
	// adapter once the work returned.
	Result StepResult
	// Tx is the transaction of a transactional route (Handle), set by
	// Transaction for its handler.
	Tx pgx.Tx

	claim    []TxFunc
	complete []TxFunc
}

// OnClaim adds f to the claim transaction of a work route (Lease): it runs
// after the lease is taken, before the work, and commits with the lease.
func (d *Delivery) OnClaim(f TxFunc) { d.claim = append(d.claim, f) }

// OnComplete adds f to the complete transaction of a work route (Lease): it
// runs after the work's own Commit, with the processed mark, and only when
// the work succeeded. f may read d.Result.
func (d *Delivery) OnComplete(f TxFunc) { d.complete = append(d.complete, f) }

// TxFunc writes inside a transaction.
type TxFunc func(ctx context.Context, tx pgx.Tx) error

// Next processes a delivery; a Middleware wraps one.
type Next func(ctx context.Context, d *Delivery) error

// Middleware wraps the processing of one delivery. The router's own chain
// is made of exported middleware (Logging, DeadLetter, Recover, Timeout,
// RunGuard, StepReport, Lease, Transaction); Router.Use and the handle
// methods' mw arguments add more, per router or per handler.
type Middleware func(Next) Next

// Handler handles an event inside tx, the transaction that also records the
// event as processed: its database effects and the events it Emits commit
// together or not at all. For handlers that only touch PostgreSQL. Return
// Permanent(err) for input no retry can fix; any other error is retried.
type Handler func(ctx context.Context, tx pgx.Tx, ev Event) error

// Work handles an event with no transaction open: it may call slow external
// services, which it keeps idempotent through deterministic ids. It returns
// the database effects to write in the complete transaction (nil for none).
type Work func(ctx context.Context, ev Event) (TxFunc, error)

// StepFunc performs a pipeline step with no transaction open. The router
// reports the step started in the claim transaction, and in the complete
// transaction writes the result's Commit, emits the step's declared output
// event with the result's Output, and reports the step succeeded with its
// figures. Failures are reported by the router too.
type StepFunc func(ctx context.Context, ev Event) (StepResult, error)

// StepTxFunc performs a pipeline step that only touches PostgreSQL inside
// the complete transaction (HandleStepTx); the result's Commit is unused.
type StepTxFunc func(ctx context.Context, tx pgx.Tx, ev Event) (StepResult, error)

// StepResult is what a step returns on success.
type StepResult struct {
	// Output is the payload of the step's output event (HandleStep's out);
	// nil exactly when the step declares none.
	Output  proto.Message
	Figures map[string]float64
	Summary string
	// Commit writes the step's database effects in the complete
	// transaction; nil for none.
	Commit TxFunc
}

// Outcome of one delivery, for logs, metrics and tests.
type Outcome string

const (
	Handled      Outcome = "handled"
	Duplicate    Outcome = "duplicate"
	DeadLettered Outcome = "dead-lettered"
	Retry        Outcome = "retry"
	// Leased: another delivery of the event holds its lease and is at work;
	// this one does nothing and is answered "retry later" (503).
	Leased Outcome = "leased"
	// Cancelled: a step event of a run that is no longer active: acked, not
	// performed.
	Cancelled Outcome = "cancelled"
)
