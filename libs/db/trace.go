package db

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// queryTracer makes a client span of every query run inside a recording
// span (a delivery, a traced API call), as its child. Outside one (the relay's
// polling, a health check) it does nothing, so tracing off costs one context
// lookup per query.
type queryTracer struct{}

const tracerScope = "github.com/cmmsflow/cmmsflow/libs/db"

func (queryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx
	}
	text := d.SQL
	if len(text) > 2000 {
		text = text[:2000]
	}
	ctx, _ = parent.TracerProvider().Tracer(tracerScope).Start(ctx, spanName(d.SQL),
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "postgresql"), attribute.String("db.query.text", text)))
	return ctx
}

func (queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if d.Err != nil {
		span.RecordError(d.Err)
		span.SetStatus(codes.Error, "query failed")
	} else {
		span.SetAttributes(attribute.Int64("db.response.returned_rows", d.CommandTag.RowsAffected()))
	}
	span.End()
}

// spanName is the statement's operation and, for writes, its table:
// "INSERT outbox", "UPDATE runs", "SELECT", "begin".
func spanName(sql string) string {
	f := strings.Fields(sql)
	if len(f) == 0 {
		return "postgresql"
	}
	op := strings.ToUpper(f[0])
	var table string
	switch op {
	case "INSERT", "DELETE":
		if len(f) > 2 {
			table = f[2] // INSERT INTO t, DELETE FROM t
		}
	case "UPDATE":
		if len(f) > 1 {
			table = f[1]
		}
	}
	if i := strings.IndexAny(table, "( "); i >= 0 {
		table = table[:i]
	}
	if table == "" {
		return op
	}
	return op + " " + table
}
