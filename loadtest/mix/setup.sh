# Shared by run.sh and endpoints.sh (sourced, after `root`, `base` and `connections` are set):
# the ids of the detail requests, the session of bench@example.org, and the steady state both
# sides of a comparison start from.
source "$root/.data/env"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }

# 10,000 random live tasks: the detail requests' ids, the same for wrk and pgbench.
psql "$DATABASE_URL" -qc "DROP TABLE IF EXISTS bench_task_ids;
    CREATE TABLE bench_task_ids AS
        SELECT row_number() OVER () AS n, id FROM
            (SELECT id FROM tasks WHERE deleted_at IS NULL ORDER BY random() LIMIT 10000) AS picked;
    CREATE UNIQUE INDEX ON bench_task_ids (n);"
ids=$(mktemp)
trap 'rm -f "$ids"' EXIT
psql "$DATABASE_URL" -qtAc "SELECT id FROM bench_task_ids ORDER BY n" >"$ids"

# What mix.lua reads: the bearer token, the ids file and the create body.
MIX_TOKEN=$("$root/loadtest/token.sh" bench@example.org benchmark-password-1 "$base")
MIX_IDS=$ids
MIX_BODY=$(sed "s/@NOW@/$(date -u +%Y-%m-%dT%H:%M:%SZ)/" "$root/loadtest/bodies/task.json")
export MIX_TOKEN MIX_IDS MIX_BODY
creator=$(psql "$DATABASE_URL" -qtAc "SELECT id FROM users WHERE email = 'bench@example.org'")

# Both sides are measured at steady state: after a warm-up of their own (connections open,
# statements prepared, caches filled), on a vacuumed, analysed database, as autovacuum keeps a
# production one (a server with autovacuum off piles up dead rows, and the plans that go with
# them), and after a checkpoint, so that neither pays for writing out the other's pages.
settle() { psql "$DATABASE_URL" -qc "VACUUM ANALYZE" -qc "CHECKPOINT"; }

# pgbench with the given scripts (file[@weight]…) for $1 seconds at the same concurrency, over
# the transport GAD uses: plain TCP (libpq would otherwise negotiate TLS with a server that
# offers it, and the limit would carry encryption GAD's connections do not pay). Returns once
# the postmaster has reaped pgbench's backends, so that cpu_ticks counts their CPU.
statements() {
    local seconds=$1 scripts=() backends
    shift
    for script in "$@"; do scripts+=(-f "$root/loadtest/pgbench/$script"); done
    backends=$(pgrep -xc postgres)
    PGSSLMODE=disable pgbench -n -M prepared -D creator="$creator" -c "$connections" -j 2 -T "$seconds" "${scripts[@]}" "$DATABASE_URL"
    for _ in $(seq 50); do (($(pgrep -xc postgres) > backends)) || break; sleep 0.1; done
}

# Where a run's CPU went on this machine, from /proc in clock ticks: the machine's busy time,
# every PostgreSQL process (backends that exited count through the postmaster's children) and
# GAD's server process (GAD_PID, else the newest local process named gad, else none).
gad_pid=${GAD_PID:-$(pgrep -xn gad || true)}
cpu_ticks() {
    local pg=0 gad=0 pid
    for pid in $(pgrep -x postgres); do
        pg=$((pg + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    [[ -n $gad_pid ]] && gad=$(awk '{ print $14 + $15 }' "/proc/$gad_pid/stat")
    echo "$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat) $pg $gad"
}
# cpu_report <label> <units of work> <before> <after>: microseconds of CPU per unit of work, by
# PostgreSQL, GAD and everything else (the load generator, Redis, the kernel's own threads).
cpu_report() {
    python3 - "$@" "$(getconf CLK_TCK)" <<'PY'
import sys
label, work, before, after, hz = sys.argv[1:]
work, hz = float(work), float(hz)
busy, pg, gad = (b - a for a, b in zip(map(int, before.split()), map(int, after.split())))
per = lambda ticks: 1e6 * ticks / hz / work
print(f"{label}: PostgreSQL {per(pg):.0f} us, GAD {per(gad):.0f} us, "
      f"the rest {per(busy - pg - gad):.0f} us; {per(busy):.0f} us in all")
PY
}
