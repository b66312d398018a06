package source

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// SampleRows is how many rows of each relation Check reads for the NULL and
// enum checks (the first ones the relation returns).
const SampleRows = 10000

// Querier is a transaction, a connection or a pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Mismatch is one way a schema differs from the contract. Column is empty
// when the whole relation is missing.
type Mismatch struct {
	Relation, Column, Problem string
}

func (m Mismatch) String() string {
	if m.Column == "" {
		return m.Relation + ": " + m.Problem
	}
	return m.Relation + "." + m.Column + ": " + m.Problem
}

// Check compares schema's relations with the contract and returns every
// mismatch: a missing relation or column, a column of an incompatible type,
// and, in the first SampleRows rows, a NULL where the contract wants a
// value or an enum value outside the allowed set.
func Check(ctx context.Context, q Querier, schema string) ([]Mismatch, error) {
	cols, err := columnTypes(ctx, q, schema)
	if err != nil {
		return nil, err
	}
	var out []Mismatch
	for _, rel := range Contract {
		have, ok := cols[rel.Name]
		if !ok {
			out = append(out, Mismatch{rel.Name, "", "relation missing"})
			continue
		}
		present := typeMismatches(rel, have, &out)
		sampled, err := sample(ctx, q, schema, rel.Name, present)
		if err != nil {
			return nil, err
		}
		out = append(out, sampled...)
	}
	return out, nil
}

// columnTypes maps each relation of schema to its columns' types.
func columnTypes(ctx context.Context, q Querier, schema string) (map[string]map[string]string, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname, a.attname, a.atttypid::regtype::text
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p', 'f')`, schema)
	if err != nil {
		return nil, fmt.Errorf("source: columns of %s: %w", schema, err)
	}
	out := map[string]map[string]string{}
	var rel, name, typ string
	_, err = pgx.ForEachRow(rows, []any{&rel, &name, &typ}, func() error {
		if out[rel] == nil {
			out[rel] = map[string]string{}
		}
		out[rel][name] = typ
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("source: columns of %s: %w", schema, err)
	}
	return out, nil
}

// typeMismatches adds rel's missing and wrong-typed columns to out and
// returns the others.
func typeMismatches(rel Relation, have map[string]string, out *[]Mismatch) []Column {
	var ok []Column
	for _, c := range rel.Columns {
		typ, found := have[c.Name]
		switch {
		case !found:
			*out = append(*out, Mismatch{rel.Name, c.Name, "column missing (want " + c.Type + ")"})
		case !slices.Contains(compatible[c.Type], typ):
			*out = append(*out, Mismatch{rel.Name, c.Name, "type " + typ + ", want " + c.Type})
		default:
			ok = append(ok, c)
		}
	}
	return ok
}

// sample checks the NULLs and enum values of cols in the first SampleRows
// rows of schema.rel, in one statement.
func sample(ctx context.Context, q Querier, schema, rel string, cols []Column) ([]Mismatch, error) {
	args := []any{SampleRows}
	var exprs []string
	var checked []Column
	for _, c := range cols {
		id := pgx.Identifier{c.Name}.Sanitize()
		if !c.Null {
			exprs = append(exprs, "count(*) FILTER (WHERE "+id+" IS NULL)")
			checked = append(checked, Column{Name: c.Name})
		}
		if c.Values != nil {
			args = append(args, c.Values)
			n := "$" + strconv.Itoa(len(args))
			exprs = append(exprs, "array_agg(DISTINCT "+id+"::text ORDER BY "+id+"::text) FILTER (WHERE "+id+"::text <> ALL("+n+"::text[]))")
			checked = append(checked, c)
		}
	}
	if len(exprs) == 0 {
		return nil, nil
	}
	sql := "SELECT " + strings.Join(exprs, ", ") + " FROM (SELECT * FROM " +
		pgx.Identifier{schema, rel}.Sanitize() + " LIMIT $1) s"
	dest := make([]any, len(checked))
	for i, c := range checked {
		if c.Values != nil {
			dest[i] = new([]string)
		} else {
			dest[i] = new(int64)
		}
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("source: sample %s: %w", rel, err)
	}
	if _, err := pgx.ForEachRow(rows, dest, func() error { return nil }); err != nil {
		return nil, fmt.Errorf("source: sample %s: %w", rel, err)
	}
	return sampleMismatches(rel, checked, dest), nil
}

func sampleMismatches(rel string, checked []Column, got []any) []Mismatch {
	var out []Mismatch
	for i, c := range checked {
		switch v := got[i].(type) {
		case *int64:
			if *v > 0 {
				out = append(out, Mismatch{rel, c.Name, fmt.Sprintf("NULL in %d of the first %d rows; the readers need a value", *v, SampleRows)})
			}
		case *[]string:
			if len(*v) > 0 {
				out = append(out, Mismatch{rel, c.Name, fmt.Sprintf("unknown values %s (allowed: %s)", quoted(*v), strings.Join(c.Values, ", "))})
			}
		}
	}
	return out
}

// quoted lists up to 10 values, quoted.
func quoted(vs []string) string {
	var b []string
	for i, v := range vs {
		if i == 10 {
			b = append(b, fmt.Sprintf("and %d more", len(vs)-i))
			break
		}
		b = append(b, strconv.Quote(v))
	}
	return strings.Join(b, ", ")
}
