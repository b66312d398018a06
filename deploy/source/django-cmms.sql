-- Mapping of a Django-style CMMS onto cmmsflow's source contract.
--
-- AN EXAMPLE TO ADAPT. It maps the tables of the old Django backend (apps
-- assets, work_orders, maintenance, inventory and technicians, in schema
-- "django"); copy it and change the table names, column names and value
-- spellings to your CMMS's. What the views must return is the contract
-- (libs/source/contract.go, and README "Mapping your CMMS"): five relations,
-- their columns with these names and types, and the enum values in
-- cmmsflow's spelling. Extra columns are fine.
--
--   cmmsflow source check deploy/source/django-cmms.sql    # reports every mismatch, changes nothing
--   cmmsflow source apply deploy/source/django-cmms.sql    # creates the views in schema cmms_mapped
--
-- The file runs in one transaction with search_path set to the (freshly
-- created, empty) mapping schema: create the views unqualified, and name
-- your CMMS's tables with their schema. It may also create helper
-- functions there. The views run with their owner's rights (the login that
-- applies the file), so the services' read-only login needs rights on the
-- views only (cmmsflow source grant ROLE).
--
-- Things a mapping has to cope with, and how this one does:
--   * Keys. Django's integer keys are cast to bigint. A CMMS with UUID keys
--     needs a stable bigint per row; one way is a helper function here,
--         CREATE FUNCTION uuid_key(u uuid) RETURNS bigint IMMUTABLE LANGUAGE sql
--             RETURN ('x' || substr(md5(u::text), 1, 15))::bit(60)::bigint;
--     used for every key and foreign key (id, asset_id, plan_id, ...).
--   * Enum spellings. Lowercase values are upper-cased ('in_progress' ->
--     'IN_PROGRESS'); other spellings get a CASE. A value the CASE misses
--     passes through unchanged, so `check` reports it instead of it being
--     silently mapped to something.
--   * Soft-deleted rows (deleted_at set) are left out, and so are the rows
--     that hang off a deleted one (work orders and plans of a deleted
--     asset), so every asset_id a view returns is an asset the assets view
--     returns.
--   * Columns the CMMS lacks get a constant of the contract's type
--     (schedule_anchor_day, skipped_occurrences, run_id).

CREATE VIEW technicians AS
SELECT t.id::bigint          AS id,
       t.employee_code::text AS code,
       t.full_name::text     AS name,
       t.email::text         AS email,
       t.phone::text         AS phone,
       t.skill::text         AS skill,
       t.is_active           AS active,
       t.created_at
FROM django.technicians_technician t
WHERE t.deleted_at IS NULL;

CREATE VIEW assets AS
SELECT a.id::bigint                AS id,
       a.tag::text                 AS asset_tag,
       a.name::text                AS name,
       a.vehicle_type::text        AS vehicle_type,  -- already 'car', 'van', 'truck', ...
       a.make::text                AS make,
       a.model::text               AS model,
       a.year,
       upper(a.status)::text       AS status,        -- 'active' -> 'ACTIVE', 'in_maintenance' -> 'IN_MAINTENANCE'
       a.commissioned_on           AS commissioned_date,
       a.odometer_km               AS meter_reading,
       a.engine_hours,
       coalesce(a.site, '')::text  AS location,
       a.created_at,
       a.updated_at
FROM django.assets_asset a
WHERE a.deleted_at IS NULL;

CREATE VIEW maintenance_plans AS
SELECT p.id::bigint                                   AS id,
       p.code::text                                   AS code,
       p.asset_id::bigint                             AS asset_id,
       p.name::text                                   AS name,
       p.description,
       p.interval_value,
       CASE p.interval_unit WHEN 'day' THEN 'days' WHEN 'week' THEN 'weeks'
            WHEN 'month' THEN 'months' WHEN 'year' THEN 'years' ELSE p.interval_unit END::text AS interval_unit,
       p.meter_interval,
       CASE p.meter_unit WHEN 'hr' THEN 'hours' ELSE p.meter_unit END::text AS meter_unit,
       p.lead_days,
       CASE WHEN p.is_floating THEN 'floating' ELSE 'fixed' END AS schedule_mode,
       NULL::smallint                                 AS schedule_anchor_day,
       p.next_due_date,
       p.next_due_meter,
       p.last_completed_date,
       p.last_completed_meter,
       p.end_date,
       upper(p.priority)::text                        AS priority,
       p.estimated_hours,
       p.assigned_technician_id::bigint               AS assigned_technician_id,
       p.is_active                                    AS active,
       p.created_at,
       p.updated_at
FROM django.maintenance_maintenanceplan p
JOIN django.assets_asset a ON a.id = p.asset_id AND a.deleted_at IS NULL
WHERE p.deleted_at IS NULL;

CREATE VIEW work_orders AS
SELECT w.id::bigint                     AS id,
       w.number::text                   AS wo_number,
       w.asset_id::bigint               AS asset_id,
       p.id::bigint                     AS plan_id,   -- NULL when the plan was deleted
       w.due_date,
       upper(w.kind)::text              AS type,
       upper(w.status)::text            AS status,    -- 'in_progress' -> 'IN_PROGRESS'
       upper(w.priority)::text          AS priority,
       w.title::text                    AS title,
       w.description,
       w.created_at,
       w.started_at,
       w.completed_at,
       w.labour_hours                   AS repair_hours,
       w.assigned_technician_id::bigint AS assigned_technician_id,
       0                                AS skipped_occurrences,
       NULL::text                       AS run_id
FROM django.work_orders_workorder w
JOIN django.assets_asset a ON a.id = w.asset_id AND a.deleted_at IS NULL
LEFT JOIN django.maintenance_maintenanceplan p ON p.id = w.plan_id AND p.deleted_at IS NULL
WHERE w.deleted_at IS NULL;

CREATE VIEW inventory_items AS
SELECT i.id::bigint        AS id,
       i.sku::text         AS sku,
       i.name::text        AS name,
       i.category::text    AS category,
       i.quantity_on_hand  AS quantity,
       i.reorder_point     AS reorder_level,
       i.unit_cost,
       i.bin_location::text AS location,
       i.updated_at
FROM django.inventory_inventoryitem i
WHERE i.deleted_at IS NULL;
