// Package admin serves control's server-rendered admin page: pipelines with
// their schedules and last runs, the run history with every step, and the
// dead letters.
package admin

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

//go:embed templates/*.html
var templates embed.FS

var page = template.Must(template.New("admin.html").Funcs(template.FuncMap{
	"when": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
}).ParseFS(templates, "templates/admin.html"))

// Handler serves the admin page.
type Handler struct {
	pool  *pgxpool.Pool
	table scheduler.Table
	log   *slog.Logger
}

// New returns the admin page handler.
func New(pool *pgxpool.Pool, table scheduler.Table, log *slog.Logger) *Handler {
	return &Handler{pool: pool, table: table, log: log}
}

// Register mounts the page at /admin (and / redirects to it).
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("GET /admin", h)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin", http.StatusFound)
	})
}

type pipelineView struct {
	ID, Description, Schedule, TimeZone string
	Paused                              bool
	NextRun                             *time.Time
	LastState                           string
	LastRun                             *time.Time
}

type stepView struct {
	Step, State, Error, Summary, Figures string
	Attempts                             int
	StartedAt, EndedAt                   *time.Time
}

type runView struct {
	RunID, Pipeline, State, Source, Error string
	QueuedAt                              time.Time
	StartedAt, EndedAt                    *time.Time
	Steps                                 []stepView
}

type deadLetterView struct {
	Consumer, EventType, RunID, Reason string
	ReceivedAt                         time.Time
}

type pageData struct {
	Pipelines   []pipelineView
	Runs        []runView
	DeadLetters []deadLetterView
	Running     bool
	Now         time.Time
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, err := h.load(r.Context())
	if err != nil {
		h.log.Error("admin page", "error", err)
		http.Error(w, "could not load the admin page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, data); err != nil {
		h.log.Error("admin page render", "error", err)
	}
}

func (h *Handler) load(ctx context.Context) (pageData, error) {
	now := time.Now()
	d := pageData{Now: now}
	for _, p := range events.Pipelines {
		v := pipelineView{ID: p.ID, Description: p.Description, TimeZone: h.table.TimeZone, LastState: "none"}
		if e, ok := h.table.Lookup(p.ID); ok {
			v.Schedule = e.Schedule
			next := e.Next(now)
			v.NextRun = &next
		}
		err := h.pool.QueryRow(ctx, `SELECT paused FROM pipelines WHERE id = $1`, p.ID).Scan(&v.Paused)
		if err != nil && err != pgx.ErrNoRows {
			return d, err
		}
		err = h.pool.QueryRow(ctx, `SELECT state, queued_at FROM runs WHERE pipeline = $1 ORDER BY queued_at DESC LIMIT 1`, p.ID).
			Scan(&v.LastState, &v.LastRun)
		if err != nil && err != pgx.ErrNoRows {
			return d, err
		}
		d.Pipelines = append(d.Pipelines, v)
	}
	rows, err := h.pool.Query(ctx, `
		SELECT run_id, pipeline, state, source, error, queued_at, started_at, ended_at
		FROM runs ORDER BY queued_at DESC LIMIT 50`)
	if err != nil {
		return d, err
	}
	d.Runs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (runView, error) {
		var v runView
		err := row.Scan(&v.RunID, &v.Pipeline, &v.State, &v.Source, &v.Error, &v.QueuedAt, &v.StartedAt, &v.EndedAt)
		return v, err
	})
	if err != nil {
		return d, err
	}
	for i := range d.Runs {
		if d.Runs[i].State == "running" || d.Runs[i].State == "queued" {
			d.Running = true
		}
		rows, err := h.pool.Query(ctx, `
			SELECT step, state, error, summary, figures::text, attempts, started_at, ended_at
			FROM steps WHERE run_id = $1 ORDER BY position`, d.Runs[i].RunID)
		if err != nil {
			return d, err
		}
		d.Runs[i].Steps, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (stepView, error) {
			var v stepView
			err := row.Scan(&v.Step, &v.State, &v.Error, &v.Summary, &v.Figures, &v.Attempts, &v.StartedAt, &v.EndedAt)
			return v, err
		})
		if err != nil {
			return d, err
		}
	}
	rows, err = h.pool.Query(ctx, `
		SELECT consumer, event_type, run_id, reason, received_at FROM dead_letters ORDER BY id DESC LIMIT 20`)
	if err != nil {
		return d, err
	}
	d.DeadLetters, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (deadLetterView, error) {
		var v deadLetterView
		err := row.Scan(&v.Consumer, &v.EventType, &v.RunID, &v.Reason, &v.ReceivedAt)
		return v, err
	})
	return d, err
}
