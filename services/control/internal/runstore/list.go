package runstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// Column is a runs column a list orders or bounds by.
type Column string

// The columns a list orders or bounds by.
const (
	RunID       Column = "run_id"
	StateColumn Column = "state"
	LogicalDate Column = "logical_date"
	QueuedAt    Column = "queued_at"
	StartedAt   Column = "started_at"
	EndedAt     Column = "ended_at"
	UpdatedAt   Column = "updated_at"
)

var columns = []Column{RunID, StateColumn, LogicalDate, QueuedAt, StartedAt, EndedAt, UpdatedAt}

// Bound keeps the runs whose Column is at or after (Before: at or before)
// Time.
type Bound struct {
	Column Column
	Before bool
	Time   time.Time
}

// Cursor is the last run of a page in the default order (newest first):
// the next page starts after it.
type Cursor struct {
	QueuedAt time.Time
	RunID    string
}

// Filter selects runs; the zero Filter selects every run.
type Filter struct {
	Pipeline string  // "": every pipeline
	States   []State // nil: every state (empty, not nil: none)
	Bounds   []Bound
	After    *Cursor // keyset paging in the default order
}

// Order sorts a list by Column (then run_id the same way), NULLs last; the
// zero Order is newest first (queued_at, then run_id, descending).
type Order struct {
	Column Column
	Desc   bool
}

// Page is a list's LIMIT (0: none) and OFFSET.
type Page struct{ Limit, Offset int }

// query builds a list's WHERE clause and its arguments.
type query struct {
	where []string
	args  []any
}

func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return fmt.Sprintf("$%d", len(q.args))
}

func (q *query) cond() string {
	if len(q.where) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(q.where, " AND ")
}

func checkColumn(c Column) error {
	for _, k := range columns {
		if c == k {
			return nil
		}
	}
	return fmt.Errorf("runstore: %q is not a column runs are listed by", c)
}

func (f Filter) query() (*query, error) {
	q := &query{}
	if f.Pipeline != "" {
		q.where = append(q.where, "pipeline = "+q.arg(f.Pipeline))
	}
	if f.States != nil {
		ss := make([]string, len(f.States))
		for i, s := range f.States {
			ss[i] = string(s)
		}
		q.where = append(q.where, "state = ANY("+q.arg(ss)+"::text[])")
	}
	for _, b := range f.Bounds {
		if err := checkColumn(b.Column); err != nil {
			return nil, err
		}
		op := ">="
		if b.Before {
			op = "<="
		}
		q.where = append(q.where, string(b.Column)+" "+op+" "+q.arg(b.Time))
	}
	if f.After != nil {
		q.where = append(q.where, "(queued_at, run_id) < ("+q.arg(f.After.QueuedAt)+", "+q.arg(f.After.RunID)+")")
	}
	return q, nil
}

func (o Order) sql() (string, error) {
	if o.Column == "" {
		return "queued_at DESC, run_id DESC", nil
	}
	if err := checkColumn(o.Column); err != nil {
		return "", err
	}
	dir := "ASC"
	if o.Desc {
		dir = "DESC"
	}
	return string(o.Column) + " " + dir + " NULLS LAST, run_id " + dir, nil
}

// List reads a page of the runs f selects, in order o (without steps).
func List(ctx context.Context, db DB, f Filter, o Order, p Page) ([]*controlv1.Run, error) {
	q, err := f.query()
	if err != nil {
		return nil, err
	}
	order, err := o.sql()
	if err != nil {
		return nil, err
	}
	sql := `SELECT ` + runColumns + ` FROM runs` + q.cond() + ` ORDER BY ` + order
	if p.Limit > 0 {
		sql += ` LIMIT ` + q.arg(p.Limit)
	}
	if p.Offset > 0 {
		sql += ` OFFSET ` + q.arg(p.Offset)
	}
	runs, err := collectRuns(db.Query(ctx, sql, q.args...))
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

// Count counts the runs f selects.
func Count(ctx context.Context, db DB, f Filter) (int, error) {
	q, err := f.query()
	if err != nil {
		return 0, err
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM runs`+q.cond(), q.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count runs: %w", err)
	}
	return n, nil
}
