-- The statements of POST /api/v1/tasks without officers, in one transaction as the service sends
-- them: the task (returned as the response), its audit row and its event; three round trips.
-- Ids are time-ordered as the service's UUID v7 are (the transaction's start in milliseconds,
-- then random bits), so rows land where the service's do: at the right edge of each primary key,
-- and the newest tasks a list reads are the ones just written.
\set hi random(0, 65535)
\set lo random(1, 4611686018427387903)
-- BEGIN leaves with the first statements, the insert returns the row (the response) and the audit
-- row travels with it; then the event, which carries the stored task; then COMMIT.
\startpipeline
BEGIN;
INSERT INTO tasks AS t (title, description, kind, priority, scheduled_start, scheduled_end, location, location_description,
                        delegate_id, notes, id, code, created_by)
VALUES ('Bench patrol', NULL, 'patrol', 'medium', now() + interval '1 day', NULL,
        ST_SetSRID(ST_MakePoint(-3.70, 40.42), 4326)::geography, NULL, :creator::uuid, NULL,
        (lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint), 12, '0') || lpad(to_hex(:hi::bigint), 4, '0') || lpad(to_hex(:lo::bigint), 16, '0'))::uuid,
        (SELECT 'T-' || lpad(n::text, greatest(length(n::text), 6), '0') FROM nextval('task_code_seq') AS n), :creator::uuid)
RETURNING t.id, t.code, t.title, t.description, t.kind::text AS kind, t.priority::text AS priority,
       t.status::text AS status, t.scheduled_start, t.scheduled_end, t.actual_start, t.actual_end, t.paused_at,
       t.total_paused_seconds, ST_Y(t.location::geometry) AS lat, ST_X(t.location::geometry) AS lng,
       t.location_description, t.delegate_id, t.created_by, t.notes, t.version, t.created_at, t.updated_at,
       ARRAY(SELECT a.officer_id FROM task_assignments a WHERE a.task_id = t.id ORDER BY a.assigned_at, a.officer_id)
           AS officer_ids,
       ARRAY(SELECT o.user_id FROM task_assignments a JOIN officers o ON o.id = a.officer_id WHERE a.task_id = t.id)
           AS officer_user_ids;
INSERT INTO audit_events (id, actor_id, actor_role, action, resource_type, resource_id, outcome, request_id, ip,
                          user_agent, details)
VALUES ((lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint), 12, '0') || substr(md5(random()::text), 13))::uuid, :creator::uuid, 'operator'::user_role, 'task.create', 'task',
        (lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint), 12, '0') || lpad(to_hex(:hi::bigint), 4, '0') || lpad(to_hex(:lo::bigint), 16, '0'))::uuid, 'success', 'bench', '127.0.0.1', 'pgbench', '{}');
\endpipeline
INSERT INTO event_log (id, event_type, task_id, officer_id, audience, actor_id, request_id, payload)
VALUES ((lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint), 12, '0') || substr(md5(random()::text), 13))::uuid, 'task.created', (lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint), 12, '0') || lpad(to_hex(:hi::bigint), 4, '0') || lpad(to_hex(:lo::bigint), 16, '0'))::uuid, NULL,
        '{}', :creator::uuid, 'bench', '{"title": "Bench patrol", "kind": "patrol", "priority": "medium", "status": "scheduled"}');
COMMIT;
