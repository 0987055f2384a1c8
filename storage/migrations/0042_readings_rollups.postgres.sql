-- Plain PostgreSQL: charts bucket the readings with date_bin at query time (the primary
-- key (device_id, ts) serves the range scan); nothing to create here.
SELECT 1;
