// Package featurefile reads the Parquet files of libs/features' rows: Open
// checks a file against a row type (the raw tables featurejob reads, the
// training and scoring rows it writes), and Read decodes a features file
// into rows.
package featurefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/cmmsflow/cmmsflow/libs/features"
)

// batchRows is how many rows a read decodes at a time. parquet.Read decodes
// all of them at once, through a buffer of a generic row per row (about
// half a KiB each, more than the decoded row): 1.1 GiB at 2 million rows.
const batchRows = 1024

// MissingColumnsError is a file that lacks columns of the row type.
type MissingColumnsError struct{ Columns []string }

func (e *MissingColumnsError) Error() string {
	return "missing columns " + strings.Join(e.Columns, ", ")
}

// Open opens the Parquet file r of size bytes for reading as T's rows,
// after checking that it has every column of T's schema (a
// *MissingColumnsError when it has not). Other errors are parquet-go's.
func Open[T any](r io.ReaderAt, size int64) (*parquet.GenericReader[T], error) {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, err
	}
	want := parquet.SchemaOf(new(T))
	var missing []string
	for _, c := range want.Fields() {
		if _, ok := f.Schema().Lookup(c.Name()); !ok {
			missing = append(missing, c.Name())
		}
	}
	if len(missing) > 0 {
		return nil, &MissingColumnsError{Columns: missing}
	}
	return parquet.NewGenericReader[T](f, want), nil
}

// Read decodes a features Parquet file, checking that it has every column of
// the schema. Errors describe bad input: no retry fixes them.
func Read(data []byte) (rows []features.Row, err error) {
	if len(data) == 0 {
		return nil, errors.New("the features file is empty")
	}
	defer func() {
		if p := recover(); p != nil { // parquet-go panics on some corrupt files
			rows, err = nil, fmt.Errorf("corrupt Parquet: %v", p)
		}
	}()
	r, err := Open[features.Row](bytes.NewReader(data), int64(len(data)))
	var missing *MissingColumnsError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("the features file lacks columns %s", strings.Join(missing.Columns, ", "))
	case err != nil:
		return nil, fmt.Errorf("not a Parquet file: %w", err)
	}
	defer r.Close()
	rows = make([]features.Row, r.NumRows())
	n := 0
	for n < len(rows) {
		k, err := r.Read(rows[n:min(n+batchRows, len(rows))])
		n += k
		if errors.Is(err, io.EOF) || (err == nil && k == 0) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode features: %w", err)
		}
	}
	if n != len(rows) {
		return nil, fmt.Errorf("decode features: %d of the file's %d rows", n, len(rows))
	}
	return rows, nil
}
