-- A Django-style CMMS (apps assets, work_orders, maintenance, inventory and
-- technicians), as the old backend kept it: integer keys, lowercase status
-- values, extra columns and soft-deleted rows (deleted_at set). The shipped
-- mapping, deploy/source/django-cmms.sql, is tested against it.
CREATE SCHEMA django;

CREATE TABLE django.technicians_technician (
    id            serial PRIMARY KEY,
    employee_code varchar(32) NOT NULL UNIQUE,
    full_name     varchar(200) NOT NULL,
    email         varchar(254) NOT NULL,
    phone         varchar(32) NOT NULL DEFAULT '',
    skill         varchar(50) NOT NULL DEFAULT 'general',
    is_active     boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);

CREATE TABLE django.assets_asset (
    id              serial PRIMARY KEY,
    tag             varchar(50) NOT NULL UNIQUE,
    name            varchar(200) NOT NULL,
    vehicle_type    varchar(20) NOT NULL,
    make            varchar(100) NOT NULL DEFAULT '',
    model           varchar(100) NOT NULL DEFAULT '',
    year            integer,
    vin             varchar(17),
    status          varchar(20) NOT NULL DEFAULT 'active',
    commissioned_on date NOT NULL,
    odometer_km     numeric(12, 1) NOT NULL DEFAULT 0,
    engine_hours    numeric(10, 1) NOT NULL DEFAULT 0,
    site            varchar(100),
    notes           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE django.maintenance_maintenanceplan (
    id                     serial PRIMARY KEY,
    code                   varchar(50) NOT NULL UNIQUE,
    asset_id               integer NOT NULL REFERENCES django.assets_asset (id),
    name                   varchar(200) NOT NULL,
    description            text NOT NULL DEFAULT '',
    interval_value         integer,
    interval_unit          varchar(10),  -- 'day', 'week', 'month', 'year'
    meter_interval         numeric(12, 1),
    meter_unit             varchar(10),  -- 'km', 'hr'
    lead_days              integer NOT NULL DEFAULT 0,
    is_floating            boolean NOT NULL DEFAULT false,
    next_due_date          date,
    next_due_meter         numeric(12, 1),
    last_completed_date    date,
    last_completed_meter   numeric(12, 1),
    end_date               date,
    priority               varchar(10) NOT NULL DEFAULT 'medium',
    estimated_hours        numeric(6, 2) NOT NULL DEFAULT 1,
    assigned_technician_id integer REFERENCES django.technicians_technician (id),
    is_active              boolean NOT NULL DEFAULT true,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    deleted_at             timestamptz
);

CREATE TABLE django.work_orders_workorder (
    id                     serial PRIMARY KEY,
    number                 varchar(30) NOT NULL UNIQUE,
    asset_id               integer NOT NULL REFERENCES django.assets_asset (id),
    plan_id                integer REFERENCES django.maintenance_maintenanceplan (id),
    due_date               date,
    kind                   varchar(20) NOT NULL,  -- 'preventive', 'corrective'
    status                 varchar(20) NOT NULL DEFAULT 'open',
    priority               varchar(10) NOT NULL DEFAULT 'medium',
    title                  varchar(200) NOT NULL,
    description            text NOT NULL DEFAULT '',
    created_at             timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    completed_at           timestamptz,
    labour_hours           numeric(8, 2),
    cost                   numeric(12, 2),
    assigned_technician_id integer REFERENCES django.technicians_technician (id),
    deleted_at             timestamptz
);

CREATE TABLE django.inventory_inventoryitem (
    id               serial PRIMARY KEY,
    sku              varchar(50) NOT NULL UNIQUE,
    name             varchar(200) NOT NULL,
    category         varchar(50) NOT NULL DEFAULT 'general',
    quantity_on_hand integer NOT NULL DEFAULT 0,
    reorder_point    integer NOT NULL DEFAULT 0,
    unit_cost        numeric(12, 2) NOT NULL DEFAULT 0,
    bin_location     varchar(50) NOT NULL DEFAULT '',
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);

INSERT INTO django.technicians_technician (id, employee_code, full_name, email, is_active, created_at, deleted_at) VALUES
    (1, 'T-01', 'Ada Mechanic', 'ada@example.com', true, '2024-01-02 08:00:00+00', NULL),
    (2, 'T-02', 'Bo Welder', 'bo@example.com', false, '2024-01-02 08:00:00+00', NULL),
    (3, 'T-03', 'Gone Person', 'gone@example.com', true, '2024-01-02 08:00:00+00', '2025-06-01 00:00:00+00');

INSERT INTO django.assets_asset (id, tag, name, vehicle_type, make, model, year, vin, status, commissioned_on,
                                 odometer_km, engine_hours, site, created_at, updated_at, deleted_at) VALUES
    (1, 'TRK-001', 'Truck one', 'truck', 'Volvo', 'FH', 2020, 'VIN1', 'active', '2020-03-01', 120000.5, 4000.0, 'Depot A',
     '2020-03-01 09:00:00+00', '2026-01-10 09:00:00+00', NULL),
    (2, 'VAN-002', 'Van two', 'van', 'Ford', 'Transit', NULL, NULL, 'in_maintenance', '2022-07-15', 45000.0, 900.0, NULL,
     '2022-07-15 09:00:00+00', '2026-01-11 09:00:00+00', NULL),
    (3, 'BUS-003', 'Old bus', 'bus', 'MAN', 'Lion', 2012, NULL, 'retired', '2012-01-01', 800000.0, 30000.0, 'Depot B',
     '2012-01-01 09:00:00+00', '2025-12-01 09:00:00+00', NULL),
    (4, 'CAR-004', 'Deleted car', 'car', 'VW', 'Golf', 2019, NULL, 'active', '2019-05-01', 60000.0, 0, 'Depot A',
     '2019-05-01 09:00:00+00', '2025-02-01 09:00:00+00', '2025-02-01 09:00:00+00');

INSERT INTO django.maintenance_maintenanceplan (id, code, asset_id, name, interval_value, interval_unit, meter_interval,
        meter_unit, lead_days, is_floating, next_due_date, priority, assigned_technician_id, is_active, created_at, deleted_at) VALUES
    (1, 'PM-TRK-001-OIL', 1, 'Oil change', 3, 'month', NULL, NULL, 7, false, '2026-02-01', 'high', 1, true,
     '2020-03-01 09:00:00+00', NULL),
    (2, 'PM-TRK-001-TYRES', 1, 'Tyres', NULL, NULL, 50000, 'km', 0, false, NULL, 'medium', NULL, true,
     '2020-03-01 09:00:00+00', NULL),
    (3, 'PM-VAN-002-SVC', 2, 'Service', 1, 'year', 500, 'hr', 14, true, '2026-07-15', 'low', 2, false,
     '2022-07-15 09:00:00+00', NULL),
    (4, 'PM-CAR-004-SVC', 4, 'Service of a deleted car', 1, 'year', NULL, NULL, 0, false, '2026-05-01', 'low', NULL, true,
     '2019-05-01 09:00:00+00', NULL),
    (5, 'PM-TRK-001-OLD', 1, 'Deleted plan', 6, 'week', NULL, NULL, 0, false, '2026-01-01', 'critical', NULL, true,
     '2020-03-01 09:00:00+00', '2024-01-01 00:00:00+00');

INSERT INTO django.work_orders_workorder (id, number, asset_id, plan_id, due_date, kind, status, priority, title,
        created_at, started_at, completed_at, labour_hours, cost, assigned_technician_id, deleted_at) VALUES
    (1, 'WO-1', 1, 1, '2025-11-01', 'preventive', 'completed', 'high', 'Oil change',
     '2025-10-25 08:00:00+00', '2025-10-31 08:00:00+00', '2025-10-31 10:30:00+00', 2.5, 180.00, 1, NULL),
    (2, 'WO-2', 2, NULL, NULL, 'corrective', 'in_progress', 'critical', 'Brakes',
     '2026-01-10 08:00:00+00', '2026-01-11 08:00:00+00', NULL, NULL, NULL, 2, NULL),
    (3, 'WO-3', 1, 5, '2023-12-01', 'preventive', 'cancelled', 'low', 'Under a deleted plan',
     '2023-11-20 08:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL),
    (4, 'WO-4', 3, NULL, NULL, 'corrective', 'on_hold', 'medium', 'Door',
     '2025-06-01 08:00:00+00', NULL, NULL, NULL, NULL, 3, NULL),
    (5, 'WO-5', 4, 4, '2025-05-01', 'preventive', 'open', 'low', 'Of a deleted car',
     '2025-04-20 08:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL),
    (6, 'WO-6', 1, NULL, NULL, 'corrective', 'open', 'medium', 'Deleted work order',
     '2025-03-01 08:00:00+00', NULL, NULL, NULL, NULL, NULL, '2025-03-02 08:00:00+00');

INSERT INTO django.inventory_inventoryitem (id, sku, name, quantity_on_hand, reorder_point, unit_cost, deleted_at) VALUES
    (1, 'OIL-5W30', 'Engine oil 5W-30', 40, 10, 8.50, NULL),
    (2, 'PAD-FR', 'Brake pads', 2, 4, 35.00, NULL),
    (3, 'OLD-PART', 'Discontinued', 0, 0, 1.00, '2025-01-01 00:00:00+00');
