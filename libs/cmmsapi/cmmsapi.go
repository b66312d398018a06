// Package cmmsapi is the CMMS's work-order API as cmmsflow speaks it: the
// body pmgen's backend client posts and the local Django CMMS stand-in
// (deploy/local/djangocmms) accepts.
package cmmsapi

// WorkOrder is the JSON body of a work-order POST, in the contract's
// spellings (upper-case type, status and priority).
type WorkOrder struct {
	WONumber             string `json:"wo_number"`
	AssetID              int64  `json:"asset_id"`
	AssetTag             string `json:"asset_tag"`
	PlanID               int64  `json:"plan_id"`
	PlanCode             string `json:"plan_code"`
	DueDate              string `json:"due_date"` // YYYY-MM-DD
	Type                 string `json:"type"`
	Status               string `json:"status"`
	Priority             string `json:"priority"`
	Title                string `json:"title"`
	Description          string `json:"description"`
	AssignedTechnicianID *int64 `json:"assigned_technician_id"`
	SkippedOccurrences   int    `json:"skipped_occurrences"`
	RunID                string `json:"run_id"`
}
