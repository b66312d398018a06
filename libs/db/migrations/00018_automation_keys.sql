-- +goose Up
-- The automation tables name CMMS rows by id only: the CMMS relations come
-- from the source schema (libs/db), which may be a mapping of another CMMS
-- whose ids cmmsflow's own copy in cmms does not have. A foreign key into
-- cmms would refuse a prediction or a notification of a mapped source's
-- asset or technician.
ALTER TABLE cmmsflow.ml_predictions DROP CONSTRAINT ml_predictions_asset_id_fkey;
ALTER TABLE cmmsflow.notifications DROP CONSTRAINT notifications_technician_id_fkey;

-- +goose Down
ALTER TABLE cmmsflow.notifications ADD CONSTRAINT notifications_technician_id_fkey
    FOREIGN KEY (technician_id) REFERENCES cmms.technicians (id) ON DELETE SET NULL;
ALTER TABLE cmmsflow.ml_predictions ADD CONSTRAINT ml_predictions_asset_id_fkey
    FOREIGN KEY (asset_id) REFERENCES cmms.assets (id) ON DELETE CASCADE;
