package djangocmms

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/cmmsapi"
)

// WorkOrdersPath is the work-order collection endpoint (PM_BACKEND_URL is
// Server.URL + WorkOrdersPath).
const WorkOrdersPath = "/api/v1/core/work-orders/"

// WorkOrder is the body of a work-order POST: the contract's spellings
// (upper-case type, status and priority), as pmgen's backend client sends
// them.
type WorkOrder = cmmsapi.WorkOrder

// idempotencyTable is where the CMMS remembers the keys it has answered.
const idempotencyTable = Schema + ".core_idempotencykey"

// Server is the CMMS's work-order API on 127.0.0.1. A POST with the bearer
// token and an Idempotency-Key inserts the work order into
// django.work_orders_workorder (Django spellings: lowercase kind, status
// and priority) and answers 201; the same key again answers 200 with the
// same work order and inserts nothing, whatever the number of retries or
// their concurrency; the same key with another work order is 422. A body the
// CMMS refuses (unknown or deleted asset or plan, a tag or code that does
// not match its id, a number already taken) is 422; a missing or wrong
// token 401.
type Server struct {
	URL string // http://127.0.0.1:port

	pool  *pgxpool.Pool
	token string
	srv   *http.Server
}

// Start creates the idempotency table if needed and serves the API on a
// free 127.0.0.1 port, writing through pool.
func Start(ctx context.Context, pool *pgxpool.Pool, token string) (*Server, error) {
	if token == "" {
		return nil, errors.New("djangocmms: a token is required")
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+idempotencyTable+` (
		key           text PRIMARY KEY,
		body_sha256   text NOT NULL,
		work_order_id integer NOT NULL REFERENCES `+Schema+`.work_orders_workorder (id),
		created_at    timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("djangocmms: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("djangocmms: %w", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), pool: pool, token: token}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+WorkOrdersPath, s.create)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// WorkOrdersURL is the endpoint pmgen posts to (PM_BACKEND_URL).
func (s *Server) WorkOrdersURL() string { return s.URL + WorkOrdersPath }

// Close stops the server.
func (s *Server) Close() { _ = s.srv.Close() }

type created struct {
	ID     int64  `json:"id"`
	Number string `json:"number"`
}

var errRefused = errors.New("refused")

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") || subtle.ConstantTimeCompare([]byte(auth[len("Bearer "):]), []byte(s.token)) != 1 {
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		http.Error(w, "Idempotency-Key is required", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var wo WorkOrder
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wo); err != nil {
		http.Error(w, "bad body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if msg := validate(wo); msg != "" {
		http.Error(w, msg, http.StatusUnprocessableEntity)
		return
	}
	// A request is the same as an earlier one when what the CMMS keeps of
	// it is: run_id and skipped_occurrences are cmmsflow's, not its.
	kept := wo
	kept.RunID, kept.SkippedOccurrences = "", 0
	canon, err := json.Marshal(kept)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(canon)
	out, replay, err := s.insert(r.Context(), key, hex.EncodeToString(sum[:]), wo)
	switch {
	case errors.Is(err, errRefused):
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if replay {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusCreated)
	}
	_ = json.NewEncoder(w).Encode(out)
}

func validate(wo WorkOrder) string {
	switch {
	case wo.WONumber == "" || wo.Title == "":
		return "wo_number and title are required"
	case wo.Type != "PREVENTIVE" && wo.Type != "CORRECTIVE":
		return fmt.Sprintf("type %q", wo.Type)
	case !oneOf(wo.Status, "OPEN", "IN_PROGRESS", "ON_HOLD", "COMPLETED", "CANCELLED"):
		return fmt.Sprintf("status %q", wo.Status)
	case !oneOf(wo.Priority, "LOW", "MEDIUM", "HIGH", "CRITICAL"):
		return fmt.Sprintf("priority %q", wo.Priority)
	}
	if _, err := time.Parse(time.DateOnly, wo.DueDate); err != nil {
		return fmt.Sprintf("due_date %q", wo.DueDate)
	}
	return ""
}

func oneOf(v string, vs ...string) bool {
	for _, x := range vs {
		if v == x {
			return true
		}
	}
	return false
}

// insert inserts wo and records key in one transaction, holding a lock on
// the key, so a key seen before (committed, or committed meanwhile by a
// concurrent request, which this one waited for) returns that work order
// instead.
func (s *Server) insert(ctx context.Context, key, sum string, wo WorkOrder) (created, bool, error) {
	var out created
	var replay bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, key); err != nil {
			return err
		}
		var prev string
		err := tx.QueryRow(ctx, `SELECT k.body_sha256, w.id, w.number FROM `+idempotencyTable+` k
			JOIN `+Schema+`.work_orders_workorder w ON w.id = k.work_order_id WHERE k.key = $1`, key).Scan(&prev, &out.ID, &out.Number)
		switch {
		case err == nil && prev != sum:
			return fmt.Errorf("%w: Idempotency-Key %s was used for another request", errRefused, key)
		case err == nil:
			replay = true
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO `+Schema+`.work_orders_workorder (number, asset_id, plan_id, due_date, kind, status, priority, title,
			                                             description, assigned_technician_id)
			SELECT $1, a.id, p.id, $4::date, lower($5), lower($6), lower($7), $8, $9, $10
			FROM `+Schema+`.assets_asset a
			JOIN `+Schema+`.maintenance_maintenanceplan p ON p.asset_id = a.id AND p.id = $3 AND p.deleted_at IS NULL AND p.code = $12
			WHERE a.id = $2 AND a.tag = $11 AND a.deleted_at IS NULL
			RETURNING id, number`,
			wo.WONumber, wo.AssetID, wo.PlanID, wo.DueDate, wo.Type, wo.Status, wo.Priority, wo.Title, wo.Description,
			wo.AssignedTechnicianID, wo.AssetTag, wo.PlanCode).Scan(&out.ID, &out.Number)
		var pe *pgconn.PgError
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: no asset %d (%s) with a plan %d (%s)", errRefused, wo.AssetID, wo.AssetTag, wo.PlanID, wo.PlanCode)
		case errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "23503"):
			return fmt.Errorf("%w: %s", errRefused, pe.Message)
		case err != nil:
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+idempotencyTable+` (key, body_sha256, work_order_id) VALUES ($1, $2, $3)`, key, sum, out.ID)
		return err
	})
	return out, replay, err
}
