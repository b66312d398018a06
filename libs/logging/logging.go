// Package logging builds the slog logger every service uses: JSON with Cloud
// Logging's keys (severity, message, logging.googleapis.com/trace and
// spanId; durations as "1.5s"), or text.
//
// A line logged with a context inside a span (log.InfoContext(ctx, …))
// carries the span's trace and span ids: in JSON as
// logging.googleapis.com/trace = projects/<project>/traces/<trace-id> and
// logging.googleapis.com/spanId, so Cloud Logging shows it with its trace;
// in text as trace_id and span_id.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Options selects the output.
type Options struct {
	Format    string // "json" (Cloud Logging) or "text"
	Level     string // debug, info, warn, error
	ProjectID string // to qualify trace ids on GCP
}

// New returns a logger writing to w.
func New(w io.Writer, o Options) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.Level)); err != nil {
		level = slog.LevelInfo
	}
	if strings.EqualFold(o.Format, "text") {
		return slog.New(traceHandler{Handler: slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})})
	}
	return slog.New(traceHandler{json: true, Handler: slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				// "1.5s", as the text format writes it, not nanoseconds.
				return slog.String(a.Key, a.Value.Duration().String())
			}
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				return slog.String("severity", severity(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				a.Key = "message"
			case "trace_id":
				if o.ProjectID != "" && a.Value.String() != "" {
					return slog.String("logging.googleapis.com/trace", "projects/"+o.ProjectID+"/traces/"+a.Value.String())
				}
			case "span_id":
				if o.ProjectID != "" {
					a.Key = "logging.googleapis.com/spanId"
				}
			case "trace_sampled":
				if o.ProjectID != "" {
					a.Key = "logging.googleapis.com/trace_sampled"
				}
			}
			return a
		},
	})})
}

// traceHandler adds the trace and span ids of the span in a record's
// context (and, in JSON, whether the trace is sampled).
type traceHandler struct {
	slog.Handler
	json bool
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		if h.json {
			r.AddAttrs(slog.Bool("trace_sampled", sc.IsSampled()))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{Handler: h.Handler.WithAttrs(as), json: h.json}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{Handler: h.Handler.WithGroup(name), json: h.json}
}

func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}

type ctxKey struct{}

// With returns ctx carrying log.
func With(ctx context.Context, log *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, log)
}

// From returns the logger in ctx, or the default logger.
func From(ctx context.Context) *slog.Logger { return FromOr(ctx, slog.Default()) }

// FromOr returns the logger in ctx (a delivery's, naming its run and step),
// or def when ctx has none (work outside a delivery).
func FromOr(ctx context.Context, def *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return def
}
