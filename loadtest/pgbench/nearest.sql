-- The statement of GET /api/v1/officers/nearest?lat=40.42&lng=-3.70 (limit 5, available only).
SELECT o.id, o.user_id, o.badge_number, o.rank, o.unit, o.specialty, o.availability::text AS availability,
       ST_Y(o.location::geometry) AS lat, ST_X(o.location::geometry) AS lng, o.location_accuracy_m,
       o.location_updated_at, o.created_at, o.updated_at,
       ST_Distance(o.location, ST_SetSRID(ST_MakePoint(-3.70, 40.42), 4326)::geography) AS distance_m
FROM officers o
WHERE o.deleted_at IS NULL AND o.location IS NOT NULL AND o.availability = 'available' AND NULL::float8 IS NULL
ORDER BY o.location <-> ST_SetSRID(ST_MakePoint(-3.70, 40.42), 4326)::geography LIMIT 5;
