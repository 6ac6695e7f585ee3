-- The statements of PUT /api/v1/officers/{id}/location for one officer (`officer`), in one
-- transaction as the service sends them (without the consent read, the audit row and the event):
-- the profile's position, then the history row.
\set step random(0, 30000)
BEGIN;
UPDATE officers SET location = ST_SetSRID(ST_MakePoint(-3.70, 40.40 + :step / 1000000.0), 4326)::geography,
       location_accuracy_m = 5, location_updated_at = now()
WHERE id = :officer::uuid AND deleted_at IS NULL;
INSERT INTO officer_locations (officer_id, location, accuracy_m, recorded_at)
VALUES (:officer::uuid, ST_SetSRID(ST_MakePoint(-3.70, 40.40 + :step / 1000000.0), 4326)::geography, 5, now());
END;
