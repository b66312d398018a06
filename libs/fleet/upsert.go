package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// upsertSink merges a table's rows into it: COPY into a temporary table of
// the same column types, then one INSERT … ON CONFLICT (key) DO UPDATE that
// updates only the rows that differ. RETURNING (xmax = 0) tells the rows it
// inserted from those it updated; the rest of the file's rows were unchanged.
type upsertSink struct{ changeLog }

func (s *upsertSink) put(ctx context.Context, tx pgx.Tx, t table, rows [][]any) error {
	c := TableChanges{Table: t.name}
	if len(rows) > 0 {
		stage := "import_" + t.name
		cols := strings.Join(t.cols, ", ")
		// Unqualified: the table is the one search_path finds; the copy
		// is in pg_temp and goes at the end of the transaction.
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE `+stage+` ON COMMIT DROP AS SELECT `+cols+
			` FROM `+t.name+` WITH NO DATA`); err != nil {
			return fmt.Errorf("fleet: stage %s: %w", t.name, err)
		}
		if _, err := copyRows(ctx, tx, stage, t.cols, rows); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, mergeSQL(t, stage)).Scan(&c.Inserted, &c.Updated); err != nil {
			return fmt.Errorf("fleet: merge %s: %w", t.name, err)
		}
		c.Unchanged = int64(len(rows)) - c.Inserted - c.Updated
	}
	s.ch = append(s.ch, c)
	return nil
}

// mergeSQL inserts stage's rows into t; a row whose key exists updates
// every column but the id, the key and the created_at the import sets, and
// only when a compared column (all but those and updated_at) differs.
func mergeSQL(t table, stage string) string {
	var set, compared []string
	for _, c := range t.cols {
		if c == "id" || c == t.key || (c == "created_at" && slices.Contains(t.auto, c)) {
			continue
		}
		set = append(set, c)
		if !slices.Contains(t.auto, c) {
			compared = append(compared, c)
		}
	}
	cols := strings.Join(t.cols, ", ")
	return `WITH merged AS (
	INSERT INTO ` + t.name + ` AS t (` + cols + `) SELECT ` + cols + ` FROM ` + stage + `
	ON CONFLICT (` + t.key + `) DO UPDATE SET (` + strings.Join(set, ", ") + `) = ROW(` + prefixed("excluded.", set) + `)
	WHERE ROW(` + prefixed("t.", compared) + `) IS DISTINCT FROM ROW(` + prefixed("excluded.", compared) + `)
	RETURNING t.xmax = 0 AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged`
}

func prefixed(prefix string, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = prefix + c
	}
	return strings.Join(out, ", ")
}
