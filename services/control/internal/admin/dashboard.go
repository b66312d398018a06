package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bounds of the dashboard: the weeks its trend charts show, the riskiest
// vehicles and open alerts it lists, and the champion scorings it reads to
// find the one a week before the latest (daily monitoring plus the ETL's).
const (
	trendWeeks       = 12
	riskiestVehicles = 10
	dashboardAlerts  = 20
	weekOfScorings   = 32
)

// Dashboard is the landing view: KPI tiles of the latest weekly report
// against the one before, the trend charts of the stored reports, the
// champion's riskiest vehicles and the open alerts.
type Dashboard struct {
	// Week is the latest report's ISO week, PreviousWeek the one its tiles
	// compare with; both empty without a report.
	Week         string         `json:"week"`
	PreviousWeek string         `json:"previous_week"`
	Tiles        []Tile         `json:"tiles"`
	Charts       []Chart        `json:"charts"`
	Riskiest     []RiskyVehicle `json:"riskiest"`
	Alerts       []Alert        `json:"alerts"`
}

func (h *Handler) dashboard(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	reports, err := h.loadReports(ctx, trendWeeks)
	if err != nil {
		return nil, err
	}
	scorings, err := h.loadScorings(ctx, "champion", weekOfScorings)
	if err != nil {
		return nil, err
	}
	d := Dashboard{}
	if d.Riskiest, err = h.loadRiskiest(ctx, riskiestVehicles); err != nil {
		return nil, err
	}
	if d.Alerts, err = h.loadAlerts(ctx, "open", dashboardAlerts); err != nil {
		return nil, err
	}
	cur, prev := map[string]float64{}, map[string]float64{}
	if len(reports) > 0 {
		d.Week, cur = reports[0].ISOWeek, figures(reports[0].KPIs)
	}
	if len(reports) > 1 {
		d.PreviousWeek, prev = reports[1].ISOWeek, figures(reports[1].KPIs)
	}
	scoredBefore := criticalWeekOverWeek(scorings, cur, prev)
	d.Tiles = tiles(cur, prev, d.PreviousWeek)
	for i := range d.Tiles {
		if d.Tiles[i].Key == criticalKey && d.Tiles[i].Delta != nil {
			d.Tiles[i].Against = "scoring of " + scoredBefore
		}
	}
	chrono := make([]Report, len(reports))
	for i, rep := range reports {
		chrono[len(reports)-1-i] = rep
	}
	d.Charts = trendCharts(chrono)
	return d, nil
}

// criticalWeekOverWeek sets criticalKey in cur to the latest champion
// scoring's critical count and in prev to that of the latest scoring at
// least a week older (scorings newest first), whose snapshot day it
// returns ("" for none).
func criticalWeekOverWeek(scorings []Scoring, cur, prev map[string]float64) string {
	if len(scorings) == 0 {
		return ""
	}
	latest := scorings[0]
	cur[criticalKey] = float64(latest.RiskLevels["critical"])
	day, err := time.Parse(time.DateOnly, latest.SnapshotDate)
	if err != nil {
		return ""
	}
	weekBefore := day.AddDate(0, 0, -7).Format(time.DateOnly)
	for _, s := range scorings[1:] {
		if s.SnapshotDate <= weekBefore {
			prev[criticalKey] = float64(s.RiskLevels["critical"])
			return s.SnapshotDate
		}
	}
	return ""
}

// Scoring is a scoring of the fleet by one model (model_scorings).
type Scoring struct {
	ID           int64              `json:"id"`
	RunID        string             `json:"run_id"`
	Pipeline     string             `json:"pipeline"`
	ModelVersion string             `json:"model_version"`
	Role         string             `json:"role"`
	SnapshotDate string             `json:"snapshot_date"`
	ScoredAssets int                `json:"scored_assets"`
	RiskLevels   map[string]int64   `json:"risk_levels"`
	PSI          map[string]float64 `json:"psi"`
	MaxPSI       *float64           `json:"max_psi"`
	Drift        string             `json:"drift"`
	ScoredAt     time.Time          `json:"scored_at"`
}

// loadScorings reads the n newest scorings by a model in role (champion or
// shadow), newest snapshot first.
func (h *Handler) loadScorings(ctx context.Context, role string, n int) ([]Scoring, error) {
	return collect(ctx, h, "model scorings", `
		SELECT id, run_id, pipeline, model_version, role, snapshot_date::text, scored_assets, risk_levels, psi,
		       max_psi, drift, scored_at
		FROM model_scorings WHERE role = $1 ORDER BY snapshot_date DESC, scored_at DESC, id DESC LIMIT $2`,
		pgx.RowToStructByPos[Scoring], role, n)
}

// RiskyVehicle is a vehicle's failure risk as the champion predicted it.
type RiskyVehicle struct {
	AssetID            int64     `json:"asset_id"`
	AssetTag           string    `json:"asset_tag"`
	Name               string    `json:"name"`
	VehicleType        string    `json:"vehicle_type"`
	RiskLevel          string    `json:"risk_level"`
	FailureProbability float64   `json:"failure_probability"`
	ModelVersion       string    `json:"model_version"`
	PredictedAt        time.Time `json:"predicted_at"`
}

// loadRiskiest reads the champion's n predictions (ml_predictions, one per
// asset and model) of highest failure probability, highest first.
func (h *Handler) loadRiskiest(ctx context.Context, n int) ([]RiskyVehicle, error) {
	return collect(ctx, h, "ml predictions", `
		SELECT a.id, a.asset_tag, a.name, a.vehicle_type, p.risk_level, p.failure_probability, p.model_version, p.predicted_at
		FROM ml_predictions p
		JOIN models m ON m.version = p.model_version AND m.champion
		JOIN assets a ON a.id = p.asset_id
		ORDER BY p.failure_probability DESC, a.id LIMIT $1`,
		pgx.RowToStructByPos[RiskyVehicle], n)
}

// Alert is an alert rule's, drift's or failed run's alert (alerts).
type Alert struct {
	ID             int64      `json:"id"`
	Rule           string     `json:"rule"`
	Kind           string     `json:"kind"`
	Severity       string     `json:"severity"`
	Summary        string     `json:"summary"`
	Metric         string     `json:"metric"`
	Value          *float64   `json:"value"`
	Threshold      *float64   `json:"threshold"`
	OpenedPeriod   string     `json:"opened_period"`
	ResolvedPeriod string     `json:"resolved_period"`
	Status         string     `json:"status"`
	RunID          string     `json:"run_id"`
	OpenedAt       time.Time  `json:"opened_at"`
	ResolvedAt     *time.Time `json:"resolved_at"`
}

// loadAlerts reads the n newest alerts of a status (open, resolved; ""
// for both), newest opened first.
func (h *Handler) loadAlerts(ctx context.Context, status string, n int) ([]Alert, error) {
	return collect(ctx, h, "alerts", `
		SELECT id, rule, kind, severity, summary, metric, value, threshold, opened_period, coalesce(resolved_period, ''),
		       status, run_id, opened_at, resolved_at
		FROM alerts WHERE $1 = '' OR status = $1 ORDER BY opened_at DESC, id DESC LIMIT $2`,
		pgx.RowToStructByPos[Alert], status, n)
}

// alerts lists alerts newest first: ?status= open or resolved (default
// both), at most ?limit= (default 100, as the page asks; at most 200).
func (h *Handler) alerts(_ http.ResponseWriter, r *http.Request) (any, error) {
	n, err := limit(r, 100)
	if err != nil {
		return nil, err
	}
	status := r.URL.Query().Get("status")
	if status != "" && status != "open" && status != "resolved" {
		return nil, badRequest("status: want open or resolved")
	}
	got, err := h.loadAlerts(r.Context(), status, n)
	return map[string]any{"alerts": got}, err
}
