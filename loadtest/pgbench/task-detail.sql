-- The statement of GET /api/v1/tasks/{id} for a random one of the tasks loadtest/mix/run.sh picked
-- (bench_task_ids; the subquery that looks up the id is the only work pgbench adds).
\set n random(1, 10000)
SELECT t.id, t.code, t.title, t.description, t.kind::text AS kind, t.priority::text AS priority,
       t.status::text AS status, t.scheduled_start, t.scheduled_end, t.actual_start, t.actual_end, t.paused_at,
       t.total_paused_seconds, ST_Y(t.location::geometry) AS lat, ST_X(t.location::geometry) AS lng,
       t.location_description, t.delegate_id, t.created_by, t.notes, t.version, t.created_at, t.updated_at,
       ARRAY(SELECT a.officer_id FROM task_assignments a WHERE a.task_id = t.id ORDER BY a.assigned_at, a.officer_id)
           AS officer_ids,
       ARRAY(SELECT o.user_id FROM task_assignments a JOIN officers o ON o.id = a.officer_id WHERE a.task_id = t.id)
           AS officer_user_ids
FROM tasks t WHERE t.id = (SELECT id FROM bench_task_ids WHERE n = :n) AND t.deleted_at IS NULL;
