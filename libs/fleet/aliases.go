package fleet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ColumnAliases maps, per file (named without ".csv": "work_orders"), a
// header of an export (lower case) to the documented column it holds.
type ColumnAliases map[string]map[string]string

// ReadColumnAliases reads a column-alias file: one alias a line, written
//
//	file.header = column
//
// e.g. "work_orders.WO Number = wo_number": in work_orders.csv the header
// "WO Number" stands for wo_number. Headers are matched as columns are
// (case-insensitive, surrounding spaces ignored) and may hold spaces and
// dots but not "="; blank lines and lines starting with # are skipped. An
// unknown file or column, a malformed line or a header given twice for one
// file is an error naming the line.
func ReadColumnAliases(path string) (ColumnAliases, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fleet: column aliases: %w", err)
	}
	defer f.Close()
	return parseColumnAliases(filepath.Base(path), f)
}

func parseColumnAliases(name string, r io.Reader) (ColumnAliases, error) {
	aliases := ColumnAliases{}
	var errs []error
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := aliases.add(text); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, line, err))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("fleet: column aliases: %s: %w", name, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("fleet: column aliases:\n%w", errors.Join(errs...))
	}
	return aliases, nil
}

// add records one "file.header = column" line.
func (a ColumnAliases) add(text string) error {
	left, column, ok := strings.Cut(text, "=")
	file, header, ok2 := strings.Cut(left, ".")
	file, header, column = strings.TrimSpace(file), strings.ToLower(strings.TrimSpace(header)), strings.TrimSpace(column)
	if !ok || !ok2 || file == "" || header == "" || column == "" {
		return fmt.Errorf("%q: want file.header = column, e.g. work_orders.WO Number = wo_number", text)
	}
	i := slices.IndexFunc(importSpecs, func(s fileSpec) bool { return s.stem() == file })
	if i < 0 {
		return fmt.Errorf("unknown file %q (known: %s)", file, strings.Join(fileStems(), ", "))
	}
	spec := importSpecs[i]
	if !slices.Contains(spec.columns, column) {
		return fmt.Errorf("unknown column %q of %s (known: %s)", column, spec.name, strings.Join(spec.columns, ", "))
	}
	if a[file] == nil {
		a[file] = map[string]string{}
	}
	if prev, dup := a[file][header]; dup {
		return fmt.Errorf("header %q of %s is already an alias of %s", header, spec.name, prev)
	}
	a[file][header] = column
	return nil
}

func fileStems() []string {
	out := make([]string, len(importSpecs))
	for i, s := range importSpecs {
		out[i] = s.stem()
	}
	return out
}
