"""Schemathesis hooks for scripts/fuzz.sh: the rules of GAD that JSON Schema cannot state, and
the fuzzing admin's own account kept usable.

`positive_data_acceptance` expects every schema-valid request to be accepted. A few rules of
SPEC lie outside what a schema can say (docs/API.md §1.8): they relate two fields, refer to rows
that must exist, or need a secret. A generated positive case that breaks one of them is not a
valid request, so it is left out (a rule across fields) or pointed at what exists (a reference,
a secret, a fresh idempotency key). Only positive cases of the operations named here change;
negative cases and every other check are untouched.
"""

import json
import os
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import schemathesis

BASE = os.environ["FUZZ_BASE"]
TOKEN = os.environ["FUZZ_TOKEN"]
ADMIN_ID = os.environ["FUZZ_ADMIN_ID"]


def positive(case):
    return case.meta is not None and case.meta.generation.mode.is_positive


def operation(ctx):
    return f"{ctx.operation.method.upper()} {ctx.operation.path}"


def get(path):
    """The JSON of `GET path` as the fuzzing admin, or None when it is not 200."""
    request = urllib.request.Request(BASE + path, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except (urllib.error.HTTPError, ValueError):
        return None


def exists(kind, id_):
    try:
        uuid.UUID(str(id_))
    except ValueError:
        return False
    return get(f"/api/v1/{kind}/{id_}") is not None


def instant(raw):
    """An RFC 3339 time, or None when it does not parse (the server then decides alone)."""
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def ordered(start, end):
    """False only when both are times and `end` is not after `start`."""
    start, end = instant(start), instant(end)
    return start is None or end is None or end > start


# The roles as the served document lists them.
PATCH_USER = get("/api/v1/openapi.json")["components"]["schemas"]["PatchUserRequest"]
ROLES = [role for role in PATCH_USER["properties"]["role"]["enum"] if role is not None]


def own_account(case):
    """Whether the case acts on the fuzzing admin itself. Deactivating, demoting or erasing it
    revokes the token that every later case sends, so those cases would only see 401."""
    return str((case.path_parameters or {}).get("id")) == ADMIN_ID


def body(case):
    return case.body if isinstance(case.body, dict) else {}


@schemathesis.hook
def filter_case(ctx, case):
    """The fuzzing admin is not deactivated or erased (in any case); rules across fields or
    against the clock, each a 422 by SPEC or docs/API.md, are not valid data (positive cases)."""
    name = operation(ctx)
    if name in ("DELETE /api/v1/users/{id}", "DELETE /api/v1/users/{id}/gdpr-delete") and own_account(case):
        return False
    if not positive(case):
        return True
    query = case.query or {}
    if name == "POST /api/v1/tasks":
        # `scheduled_end` after `scheduled_start`.
        return ordered(body(case).get("scheduled_start"), body(case).get("scheduled_end"))
    if name == "PATCH /api/v1/tasks/{id}":
        # The same rule against the task as stored, for the field the patch leaves alone.
        patch = body(case)
        if "scheduled_start" not in patch and "scheduled_end" not in patch:
            return True
        task = get(f"/api/v1/tasks/{case.path_parameters.get('id')}") or {}
        start = patch.get("scheduled_start") or task.get("scheduled_start")
        end = patch["scheduled_end"] if "scheduled_end" in patch else task.get("scheduled_end")
        return ordered(start, end)
    if name == "GET /api/v1/stats/overview":
        # `from` before `to`.
        return ordered(query.get("from"), query.get("to"))
    if name == "PUT /api/v1/officers/{id}/location":
        # `recorded_at` not in the future (a minute of clock skew allowed).
        recorded_at = instant(body(case).get("recorded_at"))
        return recorded_at is None or recorded_at <= datetime.now(timezone.utc) + timedelta(minutes=1)
    if name == "GET /api/v1/tasks":
        # `near_lat`, `near_lng` and `radius_m` together or not at all.
        given = [key in query for key in ("near_lat", "near_lng", "radius_m")]
        return all(given) or not any(given)
    return True


@schemathesis.hook
def map_case(ctx, case):
    """The fuzzing admin keeps its role and stays active (in any case); in positive cases,
    references to rows that must exist (422 otherwise), a secret the fuzzer cannot know, and an
    idempotency key that SPEC §4 refuses (422) with any body but its first."""
    name = operation(ctx)
    fields = body(case)
    if name in ("PATCH /api/v1/users/{id}", "PUT /api/v1/users/{id}") and own_account(case):
        # Valid values that would end the session stay valid but keep the account as it is.
        if fields.get("role") in ROLES:
            fields["role"] = "admin"
        if fields.get("is_active") is False:
            fields["is_active"] = True
    if not positive(case):
        return case
    if name == "POST /api/v1/officers" and not exists("users", fields.get("user_id")):
        fields["user_id"] = ADMIN_ID
    if name in ("POST /api/v1/tasks", "PATCH /api/v1/tasks/{id}"):
        if fields.get("delegate_id") is not None and not exists("users", fields["delegate_id"]):
            del fields["delegate_id"]
    if name in ("POST /api/v1/tasks", "POST /api/v1/tasks/{id}/assignments") and isinstance(
        fields.get("officer_ids"), list
    ):
        fields["officer_ids"] = [id_ for id_ in fields["officer_ids"] if exists("officers", id_)]
    if name in ("PATCH /api/v1/users/{id}", "PUT /api/v1/users/{id}"):
        # Changing one's own password needs the current one, which only the harness knows; and a
        # changed password would end the session every later case uses.
        fields.pop("password", None)
        fields.pop("current_password", None)
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    return case
