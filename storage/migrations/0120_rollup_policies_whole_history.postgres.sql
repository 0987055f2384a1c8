-- Plain PostgreSQL: no continuous aggregates (charts bucket the readings at query time), so
-- there is no refresh policy to widen; see the TimescaleDB variant.
SELECT 1;
