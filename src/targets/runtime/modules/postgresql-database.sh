# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- module: postgresql-database
#
# A database on a PostgreSQL server the item's env names (PGHOST, PGPORT, PGUSER); its
# helpers are pgdb_*. Its state is the database itself (pg_dump, pg_restore).
# shellcheck disable=SC2034 # read by module_fn (lib/items.sh)
MODULE_postgresql_database='activate deactivate probe snapshot restore'

# psql against database $2 of the item's server (PGHOST, PGPORT, PGUSER from its env file);
# more arguments go to psql. Model values reach SQL only as psql variables (:'db', :"db").
pgdb_psql() {
  local pd pdb
  pd=$1 pdb=$2
  shift 2
  # shellcheck source=/dev/null # the item's env file, written by strata on the machine
  (. "$pd/env" && exec psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$pdb" "$@")
}

pgdb_name() {
  local n
  n=$(field "$1" database)
  case $n in
    '' | [!A-Za-z_]* | *[!A-Za-z0-9_]*) die "unsafe database name: $n" ;;
  esac
  printf '%s' "$n"
}

# Waits (up to 10 s) while the server answers but still rejects connections (starting up).
pgdb_wait() {
  local i
  command -v pg_isready >/dev/null 2>&1 || return 0
  i=0
  while [ "$i" -lt 200 ]; do
    # shellcheck source=/dev/null # the item's env file, written by strata on the machine
    (. "$1/env" && exec pg_isready -q -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres) >/dev/null 2>&1
    [ $? = 1 ] || return 0
    sleep_briefly
    i=$((i + 1))
  done
}

# Creates the database when it is missing and then runs the artifact's schema.sql in it, once.
# An existing database is left exactly as it is. `db_state` says which, for probes.
postgresql_database_activate() {
  local d key db schema art found
  d=$1 key=$2
  db=$(pgdb_name "$d") || exit "$EXIT_FAILED"
  mkdir -p "$(state_dir "$key")"
  schema=
  art=$(field "$d" artifact)
  if [ -n "$art" ]; then
    [ -d "$ROOT/store/$art" ] || die "artifact $art is not in the store"
    [ -f "$ROOT/store/$art/schema.sql" ] || die "the artifact of $key has no schema.sql"
    schema=$ROOT/store/$art/schema.sql
  fi
  pgdb_wait "$d"
  found=$(printf '%s\n' "SELECT 1 FROM pg_database WHERE datname = :'db';" | pgdb_psql "$d" postgres -v db="$db") ||
    die "cannot query the PostgreSQL server of $key"
  if [ "$found" = 1 ]; then
    printf 'present %s existing\n' "$db" >"$d/db_state"
    return 0
  fi
  printf '%s\n' 'CREATE DATABASE :"db";' | pgdb_psql "$d" postgres -v db="$db" || die "cannot create database $db"
  if [ -n "$schema" ] && ! pgdb_psql "$d" "$db" -1 -f "$schema" </dev/null; then
    # Only a database made a moment ago, holding nothing but a failed schema, is ever dropped.
    printf '%s\n' 'DROP DATABASE :"db";' | pgdb_psql "$d" postgres -v db="$db"
    die "schema.sql failed in the new database $db, which was dropped again"
  fi
  printf 'present %s created\n' "$db" >"$d/db_state"
}

# Deactivation leaves the database and its data where they are: it is never dropped.
postgresql_database_deactivate() { :; }

postgresql_database_snapshot() {
  local db
  db=$(pgdb_name "$1") || exit "$EXIT_FAILED"
  # shellcheck source=/dev/null # the item's env file, written by strata on the machine
  (. "$1/env" && exec pg_dump --format=custom -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$db") || die "pg_dump of database $db failed"
}

# One transaction: a restore that fails changes nothing.
postgresql_database_restore() {
  local db
  db=$(pgdb_name "$1") || exit "$EXIT_FAILED"
  # shellcheck source=/dev/null # the item's env file, written by strata on the machine
  (. "$1/env" && exec pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction --exit-on-error -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$db") ||
    die "restoring database $db failed; it was left unchanged"
}


postgresql_database_probe() {
  local db found
  db=$(pgdb_name "$1" 2>/dev/null) || return 0
  found=$(printf '%s\n' "SELECT 1 FROM pg_database WHERE datname = :'db';" | pgdb_psql "$1" postgres -v db="$db" 2>/dev/null) ||
    { probe_drift="the database server of $db does not answer"; return 0; }
  [ "$found" = 1 ] || probe_drift="database $db is missing"
}
