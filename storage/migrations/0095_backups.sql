-- One row per `vigil db backup` run, written on the primary when the run ends; the metric
-- vigil_backup_last_success_timestamp_seconds is max(finished_at) of the succeeded rows.
CREATE TABLE backups (
    id          bigserial PRIMARY KEY,
    label       text NOT NULL,
    target      text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    succeeded   boolean NOT NULL,
    size_bytes  bigint,
    error       text
);
CREATE INDEX backups_succeeded_finished ON backups (finished_at) WHERE succeeded;
