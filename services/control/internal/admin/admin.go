// Package admin serves control's admin page at /admin: the dashboard (KPI
// tiles with their week-over-week change, trend charts, the riskiest
// vehicles, the open alerts) above the pipeline cards with a trigger button
// and a pause toggle and the run history, a run's step graph with its
// figures and logs, technicians' inboxes, the report archive, the local
// email outbox, the models with their monitoring (realized performance,
// drift, shadow against champion, retrains) and the alerts. Charts are SVG
// drawn server-side (svg.go).
//
// # Auth
//
// The page is a server-rendered shell (html/template) plus one embedded
// vanilla JS file; the shell holds no data. The user logs in with an API
// bearer token, which the script keeps in sessionStorage (gone when the tab
// closes) and sends as `Authorization: Bearer` on every data call: the
// ControlService's HTTP/JSON routes under /v1/ for pipelines, runs,
// triggers, pause and inboxes, and this package's read-only JSON routes
// under /admin/api/ for what the API does not cover (the dashboard, reports,
// models and their monitoring, alerts, outbox, a run's logs, every
// technician's recent inbox, the caller's role). Those routes check
// the token with internal/auth exactly as the API does (viewer or admin; 401
// otherwise, with nothing about why). No cookie is ever set, so there is no
// ambient credential for a cross-site request to ride on (no CSRF); a strict
// Content-Security-Policy (scripts from 'self' only, no inline script) and
// DOM building with textContent only keep injected data from running as
// script and reading the token. The one markup the script inserts is a
// chart's SVG, which this package writes with every datum escaped and the
// script parses as XML (image/svg+xml: no script runs) before adopting it.
package admin

import (
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
	"github.com/cmmsflow/cmmsflow/services/control/internal/steplogs"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

var page = template.Must(template.ParseFS(templates, "templates/admin.html"))

// Options are the page's environment-dependent settings.
type Options struct {
	// OutboxDir is the local email outbox (EMAIL_OUTBOX_DIR); empty: email
	// goes through SendGrid and the page has no outbox to show.
	OutboxDir string
	// Project is the Google Cloud project (GOOGLE_CLOUD_PROJECT).
	Project string
	// OnGCP links runs to Cloud Logging (set when K_SERVICE is, on Cloud Run).
	OnGCP bool
	// StorageEmulatorHost (STORAGE_EMULATOR_HOST) makes report links point
	// at the local GCS emulator instead of the Cloud Storage browser.
	StorageEmulatorHost string
	// TraceLink (TRACE_LINK) is a trace viewer's URL with {trace_id} in it
	// (e.g. http://127.0.0.1:16686/trace/{trace_id} for a local Jaeger); the
	// run page links the run's trace there instead of to Cloud Trace.
	TraceLink string
	// Logs reads steps' own log lines for the run view; nil: the view shows
	// the step transitions recorded in the database only.
	Logs steplogs.Reader
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// OptionsFromEnv reads Options from the service's environment.
func OptionsFromEnv() Options {
	return Options{
		OutboxDir:           os.Getenv("EMAIL_OUTBOX_DIR"),
		Project:             os.Getenv("GOOGLE_CLOUD_PROJECT"),
		OnGCP:               os.Getenv("K_SERVICE") != "",
		StorageEmulatorHost: os.Getenv("STORAGE_EMULATOR_HOST"),
		TraceLink:           os.Getenv("TRACE_LINK"),
	}
}

// Handler serves the admin page and its JSON routes.
type Handler struct {
	pool   *pgxpool.Pool
	tokens *auth.Tokens
	log    *slog.Logger
	opt    Options
}

// New returns the admin page handler, configured from the environment;
// tokens are the API's tokens, which the page's JSON routes accept too.
func New(pool *pgxpool.Pool, tokens *auth.Tokens, log *slog.Logger) *Handler {
	return NewWithOptions(pool, tokens, log, OptionsFromEnv())
}

// NewWithOptions is New with explicit options.
func NewWithOptions(pool *pgxpool.Pool, tokens *auth.Tokens, log *slog.Logger, opt Options) *Handler {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Handler{pool: pool, tokens: tokens, log: log, opt: opt}
}

// Register mounts the page at /admin (/ redirects to it), its script and
// style under /admin/static/ and its JSON routes under /admin/api/.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin", h.shell)
	mux.HandleFunc("GET /admin/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin", http.StatusFound)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin", http.StatusFound)
	})
	sub, _ := fs.Sub(static, "static")
	files := http.StripPrefix("/admin/static/", http.FileServerFS(sub))
	mux.Handle("GET /admin/static/", secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	mux.Handle("GET /admin/api/notifications", h.guard(h.notifications))
	mux.Handle("GET /admin/api/reports", h.guard(h.reports))
	mux.Handle("GET /admin/api/models", h.guard(h.models))
	mux.Handle("GET /admin/api/dashboard", h.guard(h.dashboard))
	mux.Handle("GET /admin/api/monitoring", h.guard(h.monitoring))
	mux.Handle("GET /admin/api/alerts", h.guard(h.alerts))
	mux.Handle("GET /admin/api/outbox", h.guard(h.outbox))
	mux.Handle("GET /admin/api/runs/{run_id}/logs", h.guard(h.runLogs))
	mux.Handle("GET /admin/api/whoami", h.guard(whoami))
}

// Me is the caller as the page shows it: its name and role, which decides
// the controls the page offers (the API enforces the role either way).
type Me struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

func whoami(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, _ := auth.IdentityFrom(r.Context())
	return Me{Name: id.Name, Role: id.Role.String()}, nil
}

// csp allows the page's own script, style and API calls and nothing else.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

type shellData struct {
	Mode    string // "Google Cloud" or "local"
	Project string
	Outbox  bool
}

// shell renders the page without any data: everything shown comes from
// token-authenticated JSON calls.
func (h *Handler) shell(w http.ResponseWriter, r *http.Request) {
	d := shellData{Mode: "local", Project: h.opt.Project, Outbox: h.opt.OutboxDir != ""}
	if h.opt.OnGCP {
		d.Mode = "Google Cloud"
	}
	secure(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := page.Execute(w, d); err != nil {
			h.log.Error("admin page render", "error", err)
		}
	})).ServeHTTP(w, r)
}

// guard admits requests carrying a configured API token (viewer or admin).
func (h *Handler) guard(next func(http.ResponseWriter, *http.Request) (any, error)) http.Handler {
	return secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		id, ok := h.tokens.Authenticate(r.Header.Get("Authorization"))
		if !ok || id.Role < auth.RoleViewer {
			auth.WriteUnauthenticated(w)
			return
		}
		v, err := next(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
		if err != nil {
			var he *httpError
			if asHTTPError(err, &he) {
				writeJSON(w, he.status, map[string]any{"message": he.msg})
				return
			}
			h.log.ErrorContext(r.Context(), "admin api", "path", r.URL.Path, "error", err)
			writeJSON(w, http.StatusInternalServerError, map[string]any{"message": "internal error"})
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
