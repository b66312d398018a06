package extract

import "github.com/cmmsflow/cmmsflow/libs/features"

// The columns of each table's query, in order, into the fields of its raw
// row type.

type asset = features.Asset

var assetColumns = []column[asset]{
	required(int8Codec, func(r *asset) *int64 { return &r.ID }),
	required(textCodec, func(r *asset) *string { return &r.AssetTag }),
	required(textCodec, func(r *asset) *string { return &r.Name }),
	required(textCodec, func(r *asset) *string { return &r.VehicleType }),
	required(textCodec, func(r *asset) *string { return &r.Make }),
	required(textCodec, func(r *asset) *string { return &r.Model }),
	nullable(int4Codec, func(r *asset) **int32 { return &r.Year }),
	required(textCodec, func(r *asset) *string { return &r.Status }),
	required(dateCodec, func(r *asset) *int32 { return &r.CommissionedDate }),
	required(float8Codec, func(r *asset) *float64 { return &r.MeterReading }),
	required(float8Codec, func(r *asset) *float64 { return &r.EngineHours }),
	required(textCodec, func(r *asset) *string { return &r.Location }),
	required(tstzCodec, func(r *asset) *int64 { return &r.CreatedAt }),
	required(tstzCodec, func(r *asset) *int64 { return &r.UpdatedAt }),
}

type workOrder = features.WorkOrder

var workOrderColumns = []column[workOrder]{
	required(int8Codec, func(r *workOrder) *int64 { return &r.ID }),
	required(textCodec, func(r *workOrder) *string { return &r.WONumber }),
	required(int8Codec, func(r *workOrder) *int64 { return &r.AssetID }),
	nullable(int8Codec, func(r *workOrder) **int64 { return &r.PlanID }),
	nullable(dateCodec, func(r *workOrder) **int32 { return &r.DueDate }),
	required(textCodec, func(r *workOrder) *string { return &r.Type }),
	required(textCodec, func(r *workOrder) *string { return &r.Status }),
	required(textCodec, func(r *workOrder) *string { return &r.Priority }),
	required(textCodec, func(r *workOrder) *string { return &r.Title }),
	required(tstzCodec, func(r *workOrder) *int64 { return &r.CreatedAt }),
	nullable(tstzCodec, func(r *workOrder) **int64 { return &r.StartedAt }),
	nullable(tstzCodec, func(r *workOrder) **int64 { return &r.CompletedAt }),
	nullable(float8Codec, func(r *workOrder) **float64 { return &r.RepairHours }),
}

type plan = features.MaintenancePlan

var planColumns = []column[plan]{
	required(int8Codec, func(r *plan) *int64 { return &r.ID }),
	required(textCodec, func(r *plan) *string { return &r.Code }),
	required(int8Codec, func(r *plan) *int64 { return &r.AssetID }),
	required(textCodec, func(r *plan) *string { return &r.Name }),
	nullable(int4Codec, func(r *plan) **int32 { return &r.IntervalValue }),
	nullable(textCodec, func(r *plan) **string { return &r.IntervalUnit }),
	nullable(float8Codec, func(r *plan) **float64 { return &r.MeterInterval }),
	nullable(textCodec, func(r *plan) **string { return &r.MeterUnit }),
	required(int4Codec, func(r *plan) *int32 { return &r.LeadDays }),
	required(textCodec, func(r *plan) *string { return &r.ScheduleMode }),
	nullable(dateCodec, func(r *plan) **int32 { return &r.NextDueDate }),
	nullable(float8Codec, func(r *plan) **float64 { return &r.NextDueMeter }),
	nullable(dateCodec, func(r *plan) **int32 { return &r.LastCompletedDate }),
	nullable(float8Codec, func(r *plan) **float64 { return &r.LastCompletedMeter }),
	nullable(dateCodec, func(r *plan) **int32 { return &r.EndDate }),
	required(textCodec, func(r *plan) *string { return &r.Priority }),
	required(float8Codec, func(r *plan) *float64 { return &r.EstimatedHours }),
	required(boolCodec, func(r *plan) *bool { return &r.Active }),
	required(tstzCodec, func(r *plan) *int64 { return &r.CreatedAt }),
}
