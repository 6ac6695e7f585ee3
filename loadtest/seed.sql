-- Benchmark data for the dispatch measurements (docs/BASELINE_PERFORMANCE.md): 10,000 officers
-- around Madrid (70 % available) and 100,000 tasks with a location, half of them assigned to an
-- officer. Idempotent: rows it made earlier are removed first. Run by loadtest/seed.sh.
\set ON_ERROR_STOP on
BEGIN;
DELETE FROM task_assignments WHERE task_id IN (SELECT id FROM tasks WHERE code LIKE 'PERF-%');
DELETE FROM tasks WHERE code LIKE 'PERF-%';
DELETE FROM officers WHERE badge_number LIKE 'PERF-%';
DELETE FROM users WHERE email LIKE 'perf-officer-%@example.org';

INSERT INTO users (id, email, password_hash, first_name, last_name, role)
SELECT gen_random_uuid(), 'perf-officer-' || n || '@example.org', '!', 'Perf', 'Officer', 'officer'
FROM generate_series(1, 10000) AS n;

INSERT INTO officers (id, user_id, badge_number, unit, availability, location, location_accuracy_m, location_updated_at)
SELECT gen_random_uuid(), u.id, 'PERF-' || substr(u.email, 14, strpos(u.email, '@') - 14), 'Centro',
       (CASE WHEN random() < 0.7 THEN 'available' ELSE 'off_duty' END)::officer_availability,
       ST_SetSRID(ST_MakePoint(-3.70 + (random() - 0.5) * 0.4, 40.42 + (random() - 0.5) * 0.3), 4326)::geography,
       10, now()
FROM users u WHERE u.email LIKE 'perf-officer-%@example.org';

INSERT INTO tasks (id, code, title, kind, priority, scheduled_start, scheduled_end, location, delegate_id, created_by,
                   created_at)
SELECT (lpad(to_hex((extract(epoch FROM now() - (100000 - n) * interval '1 second') * 1000)::bigint), 12, '0')
        || substr(md5(n::text), 1, 20))::uuid,  -- time-ordered, like the service's UUID v7
       'PERF-' || n, 'Patrol sector ' || n,
       (ARRAY['patrol', 'investigation', 'surveillance', 'intervention', 'administrative', 'training'])[1 + n % 6]::task_kind,
       (ARRAY['low', 'medium', 'high', 'urgent'])[1 + n % 4]::task_priority,
       now() + (n % 240) * interval '1 hour', now() + (n % 240) * interval '1 hour' + interval '4 hours',
       ST_SetSRID(ST_MakePoint(-3.70 + (random() - 0.5) * 0.4, 40.42 + (random() - 0.5) * 0.3), 4326)::geography,
       creator.id, creator.id, now() - (100000 - n) * interval '1 second'
FROM generate_series(1, 100000) AS n,
     (SELECT id FROM users WHERE email = 'bench@example.org') AS creator;

INSERT INTO task_assignments (task_id, officer_id)
SELECT t.id, o.id
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM tasks WHERE code LIKE 'PERF-%') t
JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM officers WHERE badge_number LIKE 'PERF-%') o
  ON o.n = 1 + t.n % 10000
WHERE t.n % 2 = 0;
COMMIT;
ANALYZE;
