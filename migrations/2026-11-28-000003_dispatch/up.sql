CREATE TYPE officer_availability AS ENUM ('available', 'on_task', 'off_duty', 'unavailable');
CREATE TYPE task_kind AS ENUM ('patrol', 'investigation', 'surveillance', 'intervention', 'administrative', 'training', 'emergency');
-- Declared from least to most pressing so that ORDER BY priority sorts by urgency.
CREATE TYPE task_priority AS ENUM ('low', 'medium', 'high', 'urgent', 'critical');
CREATE TYPE task_status AS ENUM ('scheduled', 'in_progress', 'paused', 'completed', 'cancelled');
CREATE TYPE task_action AS ENUM ('start', 'pause', 'resume', 'complete', 'cancel');

CREATE TABLE officers (
    id                  uuid PRIMARY KEY,
    user_id             uuid NOT NULL REFERENCES users (id),
    badge_number        text NOT NULL CHECK (badge_number ~ '^[A-Za-z0-9-]{1,32}$'),
    rank                text CHECK (char_length(rank) <= 64),
    unit                text CHECK (char_length(unit) <= 64),
    specialty           text CHECK (char_length(specialty) <= 64),
    availability        officer_availability NOT NULL DEFAULT 'off_duty',
    location            geography(Point, 4326),
    location_accuracy_m double precision CHECK (location_accuracy_m >= 0),
    location_updated_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    CHECK ((location IS NULL) = (location_updated_at IS NULL))
);
-- One live profile per user and one live holder per badge.
CREATE UNIQUE INDEX officers_user_id_key ON officers (user_id) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX officers_badge_number_key ON officers (upper(badge_number)) WHERE deleted_at IS NULL;
CREATE INDEX officers_location_idx ON officers USING gist (location) WHERE deleted_at IS NULL;
-- Nearest-available searches (dispatch) walk only the officers that can take work.
CREATE INDEX officers_available_location_idx ON officers USING gist (location)
    WHERE deleted_at IS NULL AND availability = 'available';
CREATE INDEX officers_listing_idx ON officers (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE TRIGGER officers_touch BEFORE UPDATE ON officers FOR EACH ROW EXECUTE FUNCTION gad_touch_updated_at();

-- Every reported position; purged after the configured retention.
CREATE TABLE officer_locations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    officer_id  uuid NOT NULL REFERENCES officers (id) ON DELETE CASCADE,
    location    geography(Point, 4326) NOT NULL,
    accuracy_m  double precision CHECK (accuracy_m >= 0),
    recorded_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX officer_locations_officer_idx ON officer_locations (officer_id, recorded_at DESC);
CREATE INDEX officer_locations_received_idx ON officer_locations (received_at);

CREATE SEQUENCE task_code_seq;

CREATE TABLE tasks (
    id                   uuid PRIMARY KEY,
    code                 text NOT NULL CHECK (code ~ '^[A-Za-z0-9-]{1,32}$'),
    title                text NOT NULL CHECK (char_length(title) BETWEEN 3 AND 200),
    description          text CHECK (char_length(description) <= 10000),
    kind                 task_kind NOT NULL,
    priority             task_priority NOT NULL DEFAULT 'medium',
    status               task_status NOT NULL DEFAULT 'scheduled',
    scheduled_start      timestamptz NOT NULL,
    scheduled_end        timestamptz,
    actual_start         timestamptz,
    actual_end           timestamptz,
    paused_at            timestamptz,
    total_paused_seconds bigint NOT NULL DEFAULT 0 CHECK (total_paused_seconds >= 0),
    location             geography(Point, 4326),
    location_description text CHECK (char_length(location_description) <= 500),
    delegate_id          uuid NOT NULL REFERENCES users (id),
    created_by           uuid NOT NULL REFERENCES users (id),
    notes                text CHECK (char_length(notes) <= 10000),
    -- Bumped by the trigger below on every update; the ETag of the task.
    version              bigint NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    CONSTRAINT tasks_schedule_order CHECK (scheduled_end IS NULL OR scheduled_end > scheduled_start),
    CONSTRAINT tasks_actual_order CHECK (actual_end IS NULL OR actual_start IS NULL OR actual_end >= actual_start),
    CONSTRAINT tasks_paused_matches_status CHECK ((status = 'paused') = (paused_at IS NOT NULL)),
    CONSTRAINT tasks_started_has_start CHECK (status IN ('scheduled', 'cancelled') OR actual_start IS NOT NULL),
    CONSTRAINT tasks_finished_has_end CHECK ((status IN ('completed', 'cancelled')) = (actual_end IS NOT NULL))
);
CREATE UNIQUE INDEX tasks_code_key ON tasks (upper(code));
CREATE INDEX tasks_listing_idx ON tasks (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX tasks_status_listing_idx ON tasks (status, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX tasks_priority_listing_idx ON tasks (priority DESC, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX tasks_schedule_listing_idx ON tasks (scheduled_start, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_delegate_idx ON tasks (delegate_id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_created_by_idx ON tasks (created_by);
CREATE INDEX tasks_location_idx ON tasks USING gist (location) WHERE deleted_at IS NULL;
CREATE INDEX tasks_search_title_idx ON tasks USING gin (title gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE INDEX tasks_search_code_idx ON tasks USING gin (code gin_trgm_ops) WHERE deleted_at IS NULL;

CREATE FUNCTION gad_tasks_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER tasks_bump_version BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION gad_tasks_bump_version();

CREATE TABLE task_assignments (
    task_id     uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    officer_id  uuid NOT NULL REFERENCES officers (id),
    assigned_at timestamptz NOT NULL DEFAULT now(),
    assigned_by uuid REFERENCES users (id),
    -- Mirrors `tasks.status = 'in_progress'`; kept by the triggers below, never by application code.
    in_progress boolean NOT NULL DEFAULT false,
    PRIMARY KEY (task_id, officer_id)
);
CREATE INDEX task_assignments_officer_idx ON task_assignments (officer_id, task_id);
-- The rule "an officer is in progress on at most one task": a unique index cannot be raced.
-- Two transactions starting different tasks of one officer both write an index entry for that
-- officer; the second waits for the first and fails with a unique violation when it commits.
CREATE UNIQUE INDEX task_assignments_one_in_progress_per_officer
    ON task_assignments (officer_id) WHERE in_progress;

CREATE FUNCTION gad_assignment_mirror_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT status = 'in_progress' INTO NEW.in_progress FROM tasks WHERE id = NEW.task_id;
    RETURN NEW;
END $$;
CREATE TRIGGER task_assignments_mirror_status BEFORE INSERT OR UPDATE ON task_assignments
    FOR EACH ROW EXECUTE FUNCTION gad_assignment_mirror_status();

CREATE FUNCTION gad_task_status_to_assignments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE task_assignments SET in_progress = (NEW.status = 'in_progress') WHERE task_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_status_to_assignments AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION gad_task_status_to_assignments();

-- Exactly one row per transition, written in the transition's own transaction.
CREATE TABLE task_status_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id     uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    from_status task_status NOT NULL,
    to_status   task_status NOT NULL,
    action      task_action NOT NULL,
    actor_id    uuid REFERENCES users (id),
    reason      text CHECK (char_length(reason) <= 1000),
    at          timestamptz NOT NULL DEFAULT now(),
    CHECK (from_status <> to_status)
);
CREATE INDEX task_status_history_task_idx ON task_status_history (task_id, id);
CREATE INDEX task_status_history_actor_idx ON task_status_history (actor_id);
