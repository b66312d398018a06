// Package featurefile reads a features Parquet file (the training or scoring
// rows featurejob writes, libs/features) into rows.
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
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("not a Parquet file: %w", err)
	}
	var missing []string
	for _, c := range features.Columns {
		if _, ok := f.Schema().Lookup(c); !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the features file lacks columns %s", strings.Join(missing, ", "))
	}
	r := parquet.NewGenericReader[features.Row](f)
	defer r.Close()
	rows = make([]features.Row, f.NumRows())
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
