// Package logging builds the slog logger every service uses: JSON with Cloud
// Logging's keys (severity, message, logging.googleapis.com/trace) on GCP,
// readable text locally.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
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
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
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
			}
			return a
		},
	}))
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
func From(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
