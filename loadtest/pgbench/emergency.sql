-- The statements of POST /api/v1/tasks/emergency, in one transaction as the service sends them:
-- (at random points of the seeded area, or at one point with same_point=1) the nearest available officer locked (others skipped), the critical task, its assignment,
-- the officer on task (returned for its event), the task read back, its audit row and its three events
-- (the officer's availability, the task, the alert).
\set hi random(1, 4611686018427387903)
\set lat_m random(0, 30000) * (1 - :same_point)
\set lng_m random(0, 40000) * (1 - :same_point)
\set lat 40.42 + (:lat_m - 15000 * (1 - :same_point)) / 100000.0
\set lng -3.70 + (:lng_m - 20000 * (1 - :same_point)) / 100000.0
\set lo random(1, 4611686018427387903)
BEGIN;
SELECT o.id, ST_Distance(o.location, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography) AS distance_m
FROM officers o WHERE o.deleted_at IS NULL AND o.location IS NOT NULL AND o.availability = 'available'
ORDER BY o.location <-> ST_SetSRID(ST_MakePoint(:lng, :lat), 4326)::geography
LIMIT 1 FOR UPDATE SKIP LOCKED \gset officer_
INSERT INTO tasks (title, description, kind, priority, scheduled_start, scheduled_end, location, location_description,
                   delegate_id, notes, id, code, created_by)
VALUES ('Bench emergency', NULL, 'emergency', 'critical', now(), NULL,
        ST_SetSRID(ST_MakePoint(-3.70, 40.42), 4326)::geography, NULL, :creator::uuid, NULL,
        (lpad(to_hex(:hi::bigint), 16, '0') || lpad(to_hex(:lo::bigint), 16, '0'))::uuid,
        'T-' || lpad(nextval('task_code_seq')::text, 6, '0'), :creator::uuid);
SELECT "officers"."id" FROM "officers" WHERE "officers"."id" = ANY(ARRAY[:officer_id::uuid])
    AND "officers"."deleted_at" IS NULL;
INSERT INTO task_assignments (task_id, officer_id, assigned_by)
SELECT (lpad(to_hex(:hi::bigint), 16, '0') || lpad(to_hex(:lo::bigint), 16, '0'))::uuid, officer, :creator::uuid
FROM unnest(ARRAY[:officer_id::uuid]) AS officer ON CONFLICT DO NOTHING;
UPDATE officers o SET availability = 'on_task' WHERE o.id = ANY(ARRAY[:officer_id::uuid]) AND o.availability <> 'on_task'
RETURNING o.id, o.user_id, o.badge_number, o.rank, o.unit, o.specialty, o.availability::text AS availability,
          ST_Y(o.location::geometry) AS lat, ST_X(o.location::geometry) AS lng, o.location_accuracy_m,
          o.location_updated_at, o.created_at, o.updated_at;
INSERT INTO event_log (id, event_type, task_id, officer_id, audience, actor_id, request_id, payload)
VALUES (gen_random_uuid(), 'officer.availability_changed', NULL, :officer_id::uuid, '{}', :creator::uuid, 'bench',
        '{"availability": "on_task"}');
SELECT t.id, t.code, t.title, t.description, t.kind::text AS kind, t.priority::text AS priority,
       t.status::text AS status, t.scheduled_start, t.scheduled_end, t.actual_start, t.actual_end, t.paused_at,
       t.total_paused_seconds, ST_Y(t.location::geometry) AS lat, ST_X(t.location::geometry) AS lng,
       t.location_description, t.delegate_id, t.created_by, t.notes, t.version, t.created_at, t.updated_at,
       ARRAY(SELECT a.officer_id FROM task_assignments a WHERE a.task_id = t.id ORDER BY a.assigned_at, a.officer_id)
           AS officer_ids,
       ARRAY(SELECT o.user_id FROM task_assignments a JOIN officers o ON o.id = a.officer_id WHERE a.task_id = t.id)
           AS officer_user_ids
FROM tasks t WHERE t.id = (lpad(to_hex(:hi::bigint), 16, '0') || lpad(to_hex(:lo::bigint), 16, '0'))::uuid
    AND t.deleted_at IS NULL;
INSERT INTO audit_events (id, actor_id, actor_role, action, resource_type, resource_id, outcome, request_id, ip,
                          user_agent, details)
VALUES (gen_random_uuid(), :creator::uuid, 'operator'::user_role, 'task.emergency', 'task',
        (lpad(to_hex(:hi::bigint), 16, '0') || lpad(to_hex(:lo::bigint), 16, '0'))::uuid, 'success', 'bench',
        '127.0.0.1', 'pgbench', '{}');
INSERT INTO event_log (id, event_type, task_id, officer_id, audience, actor_id, request_id, payload)
VALUES (gen_random_uuid(), 'task.created', (lpad(to_hex(:hi::bigint), 16, '0') || lpad(to_hex(:lo::bigint), 16, '0'))::uuid,
        NULL, '{}', :creator::uuid, 'bench', '{"title": "Bench emergency"}');
INSERT INTO event_log (id, event_type, task_id, officer_id, audience, actor_id, request_id, payload)
VALUES (gen_random_uuid(), 'alert.emergency', (lpad(to_hex(:hi::bigint), 16, '0') || lpad(to_hex(:lo::bigint), 16, '0'))::uuid,
        :officer_id::uuid, '{}', :creator::uuid, 'bench', '{"title": "Bench emergency"}');
COMMIT;
