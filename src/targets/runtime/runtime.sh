#!/bin/sh
# strata target runtime. Uploaded by the controller on first contact, content-addressed, and
# run as: sh runtime.sh ROOT VERB [ARG...]. Needs POSIX sh and coreutils, nothing else.
#
# Contract: arguments are controller-made tokens (hashes, item keys, owners); every value
# that comes from a model arrives as file content (on stdin), is kept in files, and is only
# ever expanded inside double quotes. Exit codes: 0 done, 1 failed (reason on stderr),
# 2 usage, 75 machine locked by someone else.
set -u
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH

ROOT=${1:?usage: runtime.sh ROOT VERB [ARG...]}
VERB=${2:?usage: runtime.sh ROOT VERB [ARG...]}
shift 2

die() { printf 'strata-runtime: %s\n' "$*" >&2; exit 1; }
usage() { printf 'strata-runtime: %s\n' "$*" >&2; exit 2; }

# Hashes and keys name files in ROOT: only a closed set of characters may appear.
check_token() {
  case $1 in
    '' | .* | *[!A-Za-z0-9._-]*) usage "unsafe name: $1" ;;
  esac
}

# A relative path inside an artifact: no absolute paths, no "..", no empty segments.
check_rel() {
  case $1 in
    '' | /* | ../* | */../* | */.. | .. | *//*) die "unsafe path in stream: $1" ;;
  esac
}

sleep_briefly() { sleep 0.05 2>/dev/null || sleep 1; }

# A path on the machine may only be written under ROOT or under a declared allowed path.
check_target_path() {
  p=$1 allowed_file=$2
  case $p in
    /*) ;;
    *) die "refusing path \"$p\": not absolute" ;;
  esac
  case $p in
    */../* | */.. | */./* | */. | *//*) die "refusing path \"$p\": contains . or .. segments" ;;
  esac
  real=$(realpath -m -- "$p" 2>/dev/null) || real=$p
  for a in "$ROOT" $(cat "$allowed_file" 2>/dev/null); do
    ra=$(realpath -m -- "$a" 2>/dev/null) || ra=$a
    case $real in
      "$ra" | "$ra"/*) return 0 ;;
    esac
    [ "$ra" = / ] && return 0
  done
  die "refusing path \"$p\": outside $ROOT and the machine's allowedPaths"
}

# Reads "F SIZE MODE PATH" + SIZE bytes and "D 0 MODE PATH" entries into DIR until "Z" or "E".
unpack() {
  dest=$1
  while IFS=' ' read -r kind a b c; do
    case $kind in
      D) check_rel "$c"; mkdir -p "$dest/$c" || die "cannot create $dest/$c" ;;
      F)
        check_rel "$c"
        head -c "$a" >"$dest/$c" || die "cannot write $dest/$c"
        [ "$b" = 644 ] || chmod "$b" "$dest/$c" || die "cannot chmod $dest/$c"
        ;;
      E | Z) return 0 ;;
      *) die "malformed stream (got \"$kind\")" ;;
    esac
  done
  die "stream ended early"
}

alive() {
  [ -n "${1:-}" ] || return 1
  if [ -r "/proc/$1/stat" ]; then
    s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    case $s in Z* | X* | '') return 1 ;; esac
    return 0
  fi
  kill -0 "$1" 2>/dev/null
}

# Whether any live process remains in the process group a service was started as (its
# leader may be gone while a child it started still runs). Zombies do not count.
group_alive() {
  alive "${1:-}" && return 0
  [ -n "${1:-}" ] || return 1
  [ -d /proc/self ] || { kill -s 0 -- "-$1" 2>/dev/null; return; }
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v g="$1" '
    { s = $0; sub(/^.*\) /, "", s); split(s, f, " "); if (f[3] == g && f[1] !~ /^[ZX]/) { found = 1; exit } }
    END { exit !found }'
}

# Whether something listens on ADDRESS:PORT (or on any address at PORT), from /proc/net;
# one awk process per check, since readiness is polled.
listening() {
  addr=$1 port=$2
  set -- /proc/net/tcp
  [ -r /proc/net/tcp6 ] && set -- "$@" /proc/net/tcp6
  awk -v addr="$addr" -v port="$port" '
    BEGIN {
      p = sprintf(":%04X", port)
      a = (split(addr, o, ".") == 4) ? sprintf("%02X%02X%02X%02X", o[4], o[3], o[2], o[1]) p : ""
    }
    $4 == "0A" && ($2 == a || $2 == "00000000" p || $2 == "00000000000000000000000000000000" p || (a == "" && substr($2, length($2) - 4) == p)) { f = 1; exit }
    END { exit !f }' "$@" 2>/dev/null
}

item_dir() { printf '%s/items/%s' "$ROOT" "$1"; }
state_dir() { printf '%s/state/%s' "$ROOT" "$1"; }
field() { cat "$1/$2" 2>/dev/null; }

workdir_of() {
  art=$(field "$1" artifact)
  if [ -n "$art" ]; then
    [ -d "$ROOT/store/$art" ] || die "artifact $art is not in the store"
    printf '%s' "$ROOT/store/$art"
  else
    printf '%s' "$2"
  fi
}

# ---------------------------------------------------------------- module: process

process_activate() {
  d=$1 key=$2
  st=$(state_dir "$key")
  mkdir -p "$st"
  wd=$(workdir_of "$d" "$st") || exit 1
  port=$(field "$d" ready_port)
  if [ -n "$port" ] && listening "$(field "$d" bind)" "$port"; then
    printf 'port %s on %s is already in use by another process\n' "$port" "$(field "$d" bind)" >&2
    return 1
  fi
  (
    cd "$wd" || exit 127
    STATE_DIR=$st
    export STATE_DIR
    . "$d/env"
    exec setsid sh "$d/start"
  ) </dev/null >>"$st/log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$d/pid"
  if ! process_wait_ready "$d" "$pid" "$wd" "$st"; then
    printf -- '--- last lines of %s/log ---\n' "$st" >&2
    tail -n 20 "$st/log" >&2
    process_stop "$d"
    return 1
  fi
}

process_wait_ready() {
  d=$1 pid=$2 wd=$3 st=$4
  timeout=$(field "$d" ready_timeout)
  port=$(field "$d" ready_port)
  bind=$(field "$d" bind)
  limit=$(( ${timeout:-30} * 1000 ))
  waited=0
  while :; do
    alive "$pid" || { printf 'process exited while starting\n' >&2; return 1; }
    if [ -n "$port" ]; then
      listening "$bind" "$port" && return 0
    elif [ -f "$d/ready_command" ]; then
      (cd "$wd" && STATE_DIR=$st && export STATE_DIR && . "$d/env" && sh "$d/ready_command") </dev/null >/dev/null 2>&1 && return 0
    elif [ "$waited" -ge 200 ]; then
      return 0
    fi
    [ "$waited" -ge "$limit" ] && { printf 'not ready after %ss\n' "${timeout:-30}" >&2; return 1; }
    # Most services are up within a few tens of milliseconds: poll fast at first.
    if [ "$waited" -lt 200 ]; then
      sleep 0.01 2>/dev/null || sleep 1
      waited=$((waited + 10))
    else
      sleep_briefly
      waited=$((waited + 50))
    fi
  done
}

process_stop() {
  d=$1
  pid=$(field "$d" pid)
  if group_alive "$pid"; then
    kill -s TERM -- "-$pid" 2>/dev/null || kill -s TERM "$pid" 2>/dev/null
    i=0
    while group_alive "$pid" && [ "$i" -lt 200 ]; do sleep_briefly; i=$((i + 1)); done
    if group_alive "$pid"; then
      kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null
      i=0
      while group_alive "$pid" && [ "$i" -lt 40 ]; do sleep_briefly; i=$((i + 1)); done
    fi
  fi
  rm -f "$d/pid"
}

process_state() {
  if group_alive "$(field "$1" pid)"; then printf 'running %s' "$(field "$1" pid)"; else printf 'stopped -'; fi
}

# ---------------------------------------------------------------- module: file

file_activate() {
  d=$1
  target=$(field "$d" path)
  check_target_path "$target" "$d/allowed"
  src=$ROOT/store/$(field "$d" artifact)
  [ -d "$src" ] || die "artifact is not in the store"
  mkdir -p "$target" || die "cannot create $target"
  (cd "$src" && find . -type f) | sed 's|^\./||' >"$d/placed"
  while IFS= read -r rel; do
    mkdir -p "$(dirname "$target/$rel")" &&
      cp -p "$src/$rel" "$target/$rel.strata-new" &&
      mv -f "$target/$rel.strata-new" "$target/$rel" || die "cannot place $target/$rel"
  done <"$d/placed"
  # Checksums of what was placed, so `status` can tell a file someone changed.
  (cd "$target" && while IFS= read -r rel; do sha256sum -- "$rel"; done <"$d/placed") >"$d/sums" || die "cannot checksum $target"
}

file_deactivate() {
  d=$1
  target=$(field "$d" path)
  check_target_path "$target" "$d/allowed"
  [ -f "$d/placed" ] || return 0
  while IFS= read -r rel; do
    rm -f "$target/$rel"
  done <"$d/placed"
}

# ---------------------------------------------------------------- module: script

script_run() {
  d=$1 key=$2 which=$3
  st=$(state_dir "$key")
  mkdir -p "$st"
  wd=$(workdir_of "$d" "$st") || exit 1
  [ -f "$wd/$which" ] || { [ "$which" = deactivate ] && return 0; die "the artifact has no \"$which\" script"; }
  (cd "$wd" && STATE_DIR=$st && export STATE_DIR && . "$d/env" && sh "./$which") </dev/null >>"$st/log" 2>&1 ||
    { tail -n 20 "$st/log" >&2; die "$which script failed"; }
}

# ---------------------------------------------------------------- module: directory

directory_activate() {
  d=$1
  target=$(field "$d" path)
  check_target_path "$target" "$d/allowed"
  mkdir -p "$target" && chmod "$(field "$d" mode)" "$target" || die "cannot create $target"
}

directory_deactivate() {
  # Keeps a directory that still holds anything: removing a declaration never deletes data.
  rmdir -- "$(field "$1" path)" 2>/dev/null || true
}

# ---------------------------------------------------------------- module: postgresql-database

# psql against database $2 of the item's server (PGHOST, PGPORT, PGUSER from its env file);
# more arguments go to psql. Model values reach SQL only as psql variables (:'db', :"db").
pgdb_psql() {
  pd=$1 pdb=$2
  shift 2
  (. "$pd/env" && exec psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$pdb" "$@")
}

pgdb_name() {
  n=$(field "$1" database)
  case $n in
    '' | [!A-Za-z_]* | *[!A-Za-z0-9_]*) die "unsafe database name: $n" ;;
  esac
  printf '%s' "$n"
}

# Waits (up to 10 s) while the server answers but still rejects connections (starting up).
pgdb_wait() {
  command -v pg_isready >/dev/null 2>&1 || return 0
  i=0
  while [ "$i" -lt 200 ]; do
    (. "$1/env" && exec pg_isready -q -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres) >/dev/null 2>&1
    [ $? = 1 ] || return 0
    sleep_briefly
    i=$((i + 1))
  done
}

# Creates the database when it is missing and then runs the artifact's schema.sql in it, once.
# An existing database is left exactly as it is. `db_state` says which, for probes.
pgdb_activate() {
  d=$1 key=$2
  db=$(pgdb_name "$d") || exit 1
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
pgdb_deactivate() { :; }

pgdb_snapshot() {
  db=$(pgdb_name "$1") || exit 1
  (. "$1/env" && exec pg_dump --format=custom -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$db") || die "pg_dump of database $db failed"
}

# One transaction: a restore that fails changes nothing.
pgdb_restore() {
  db=$(pgdb_name "$1") || exit 1
  (. "$1/env" && exec pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction --exit-on-error -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$db") ||
    die "restoring database $db failed; it was left unchanged"
}

# ---------------------------------------------------------------- snapshots of STATE_DIR

# Writes the tree under DIR (without its top-level log) to stdout in the stream format that
# `unpack` reads, ended by "Z". Each file is copied aside first, so one that changes while it
# is read cannot tear the stream. Directories and regular files only; names holding a newline
# are skipped.
pack_dir() {
  src=$1 tmp=$2
  nl='
'
  if [ -d "$src" ]; then
    (cd "$src" && find . -mindepth 1 \( -path ./log -o -name "*$nl*" \) -prune -o -type d -print) | sed 's|^\./||' |
      while IFS= read -r rel; do
        printf 'D 0 %s %s\n' "$(stat -c %a -- "$src/$rel")" "$rel"
      done
    (cd "$src" && find . -mindepth 1 \( -path ./log -o -name "*$nl*" \) -prune -o -type f -print) | sed 's|^\./||' |
      while IFS= read -r rel; do
        cp -- "$src/$rel" "$tmp" 2>/dev/null || continue
        printf 'F %s %s %s\n' "$(($(wc -c <"$tmp")))" "$(stat -c %a -- "$src/$rel")" "$rel"
        cat -- "$tmp"
      done
    rm -f -- "$tmp"
  fi
  printf 'Z\n'
}

# Replaces STATE_DIR of KEY with the stream on stdin (its log stays). The stream is unpacked
# aside first, so a damaged one changes nothing; a process is stopped for the swap and started
# again on the restored state.
restore_state_dir() {
  d=$1 key=$2
  st=$(state_dir "$key")
  new=$ROOT/state/.restore.$key.$$
  old=$ROOT/state/.old.$key.$$
  rm -rf "$new" "$old"
  mkdir -p "$new" || die "cannot create $new"
  (unpack "$new") || { rm -rf "$new"; die "the snapshot of $key is damaged; nothing was changed"; }
  mod=$(field "$d" module)
  [ "$mod" = process ] && process_stop "$d"
  mkdir -p "$st"
  if [ -f "$st/log" ]; then mv -f "$st/log" "$new/log"; fi
  mv "$st" "$old" && mv "$new" "$st" || die "cannot put the restored state of $key in place"
  rm -rf "$old"
  if [ "$mod" = process ]; then
    process_activate "$d" "$key" || die "$key did not start again on the restored state"
  fi
  return 0
}

# ---------------------------------------------------------------- drift

# Prints why an active item differs from what was activated, or nothing when it does not.
item_drift() {
  d=$1
  case $(field "$d" module) in
    process)
      pid=$(field "$d" pid)
      port=$(field "$d" ready_port)
      if ! group_alive "$pid"; then
        printf 'process %s is not running' "${pid:-?}"
      elif [ -n "$port" ] && ! listening "$(field "$d" bind)" "$port"; then
        printf 'nothing listens on port %s' "$port"
      elif ! alive "$pid"; then
        printf 'process %s exited; others of its process group still run unsupervised' "$pid"
      fi
      ;;
    file)
      target=$(field "$d" path)
      [ -d "$target" ] || { printf 'directory %s is missing' "$target"; return 0; }
      [ -f "$d/sums" ] || return 0
      bad=$(cd "$target" && LC_ALL=C sha256sum -c -- "$d/sums" 2>/dev/null | grep -v ': OK$' | head -n 1)
      case $bad in
        *': FAILED open or read') printf 'file %s/%s is missing' "$target" "${bad%: FAILED open or read}" ;;
        *': FAILED') printf 'file %s/%s was changed' "$target" "${bad%: FAILED}" ;;
      esac
      ;;
    directory)
      [ -d "$(field "$d" path)" ] || printf 'directory %s is missing' "$(field "$d" path)"
      ;;
    postgresql-database)
      db=$(pgdb_name "$d" 2>/dev/null) || return 0
      found=$(printf '%s\n' "SELECT 1 FROM pg_database WHERE datname = :'db';" | pgdb_psql "$d" postgres -v db="$db" 2>/dev/null) ||
        { printf 'the database server of %s does not answer' "$db"; return 0; }
      [ "$found" = 1 ] || printf 'database %s is missing' "$db"
      ;;
  esac
}

# ---------------------------------------------------------------- items

deactivate_item() {
  key=$1
  d=$(item_dir "$key")
  [ -d "$d" ] || return 0
  case $(field "$d" module) in
    process) process_stop "$d" ;;
    file) file_deactivate "$d" ;;
    script) script_run "$d" "$key" deactivate ;;
    directory) directory_deactivate "$d" ;;
    postgresql-database) pgdb_deactivate "$d" ;;
  esac
  rm -rf "$d"
}

activate_item() {
  key=$1
  d=$(item_dir "$key")
  new=$ROOT/items/.new.$key
  rm -rf "$new"
  mkdir -p "$new" || die "cannot create $new"
  unpack "$new"
  deactivate_item "$key"
  mv "$new" "$d" || die "cannot install $d"
  ok=0
  case $(field "$d" module) in
    process) process_activate "$d" "$key" && ok=1 ;;
    file) (file_activate "$d") && ok=1 ;;
    script) (script_run "$d" "$key" activate) && ok=1 ;;
    directory) (directory_activate "$d") && ok=1 ;;
    postgresql-database) (pgdb_activate "$d" "$key") && ok=1 ;;
    *) printf 'unknown module "%s"\n' "$(field "$d" module)" >&2 ;;
  esac
  if [ "$ok" != 1 ]; then
    case $(field "$d" module) in file) (file_deactivate "$d") ;; esac
    rm -rf "$d"
    die "activation of $key failed"
  fi
}

# ---------------------------------------------------------------- machine lock

# ROOT/lock/owner holds "OWNER TOKEN PID TAKEN EXPIRES" (times in seconds since the epoch, by
# this machine's clock). Taking a free lock is `mkdir ROOT/lock`; renewing, releasing and
# breaking one happen under a short guard (`mkdir ROOT/lock.guard`), so they never interleave.
lock_arg() {
  case $1 in
    '' | *[!A-Za-z0-9._:@-]*) usage "unsafe lock argument: $1" ;;
  esac
}

now_s() { date +%s; }

lock_guard() {
  g=0
  until mkdir "$ROOT/lock.guard" 2>/dev/null; do
    t=$(stat -c %Y "$ROOT/lock.guard" 2>/dev/null) || t=
    # A guard is held for milliseconds: one older than 10 s was left by a killed runtime.
    if [ -n "$t" ] && [ $(($(now_s) - t)) -gt 10 ]; then rmdir "$ROOT/lock.guard" 2>/dev/null; continue; fi
    g=$((g + 1))
    [ "$g" -lt 400 ] || die "$ROOT/lock.guard is held for too long"
    sleep_briefly
  done
  trap 'rmdir "$ROOT/lock.guard" 2>/dev/null' EXIT
  trap 'exit 129' HUP INT TERM
}

# Reads the lock into h_owner h_token h_pid h_taken h_expires (h_line: the file as it is). A
# lock without a lease (an older runtime's, or one whose owner file was never written) gets
# one of 60 s from when it was made.
read_lock() {
  h_line=$(cat "$ROOT/lock/owner" 2>/dev/null) || h_line=
  set -f
  set -- $h_line
  set +f
  h_owner=${1:-} h_token=${2:-} h_pid=${3:-} h_taken=${4:-} h_expires=${5:-}
  case $h_taken$h_expires in
    '' | *[!0-9]*)
      t=$(stat -c %Y "$ROOT/lock/owner" 2>/dev/null || stat -c %Y "$ROOT/lock" 2>/dev/null) || t=$(now_s)
      h_token=- h_pid=- h_taken=$t h_expires=$((t + 60))
      ;;
  esac
}

# The lock for strata: OWNER TOKEN PID TAKEN EXPIRES NOW.
lock_fields() { printf '%s %s %s %s %s %s' "${h_owner:--}" "${h_token:--}" "${h_pid:--}" "$h_taken" "$h_expires" "$(now_s)"; }

# The lock for people.
describe_lock() {
  if [ "$h_token" = - ]; then
    printf 'locked by %s\n' "${h_line:-an unknown owner}"
    return 0
  fi
  left=$((h_expires - $(now_s)))
  if [ "$left" -ge 0 ]; then lease="lease expires in ${left}s"; else lease="lease expired $((-left))s ago"; fi
  since=$(date -u -d "@$h_taken" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null) || since=$h_taken
  printf 'locked by %s (pid %s, since %s, %s)\n' "$h_owner" "$h_pid" "$since" "$lease"
}

write_lock() {
  printf '%s %s %s %s %s\n' "$owner" "$token" "$pid" "$1" "$(($(now_s) + lease))" >"$ROOT/lock/owner.tmp" &&
    mv -f "$ROOT/lock/owner.tmp" "$ROOT/lock/owner" || die "cannot write $ROOT/lock/owner"
}

# Prints "PID VERB" of another runtime process changing this ROOT (in this mount namespace), if any.
runtime_busy() {
  own=$(readlink /proc/self/ns/mnt 2>/dev/null)
  for f in $(grep -lsaF -- "$ROOT/runtime/" /proc/[0-9]*/cmdline 2>/dev/null); do
    p=${f#/proc/}
    p=${p%/cmdline}
    [ "$p" = "$$" ] && continue
    [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$own" ] || continue
    set -f
    set -- $(tr '\0' ' ' <"$f" 2>/dev/null)
    set +f
    [ "${3:-}" = "$ROOT" ] || continue
    case ${4:-} in
      activate | deactivate | upload | commit | uncommit | snapshot | restore) printf '%s %s' "$p" "$4"; return 0 ;;
    esac
  done
  return 1
}

# A lock taken over from a transition whose controller died: a command it started may still
# run here (a dropped SSH session does not stop it). Wait (up to 90 s) until it is over, so that
# whatever it did is there to be undone.
quiesce() {
  w=0
  while b=$(runtime_busy); do
    [ "$w" -eq 0 ] && printf 'waiting for a command of the previous holder that still runs here (pid and verb: %s)\n' "$b" >&2
    w=$((w + 1))
    [ "$w" -lt 1800 ] || { printf 'still running after 90s: %s; going on\n' "$b" >&2; return 0; }
    sleep_briefly
  done
}

lock_unguard() {
  rmdir "$ROOT/lock.guard" 2>/dev/null
  trap - EXIT HUP INT TERM
}

# ---------------------------------------------------------------- verbs

case $VERB in
  hello)
    printf 'strata-runtime %s\n' "$ROOT"
    ;;
  lock)
    # lock OWNER TOKEN PID LEASE [BREAK]: takes the lock for LEASE seconds, or renews it when
    # TOKEN holds it. A lock whose lease expired, or that the token BREAK holds (its owner
    # knows that holder is dead), is broken and taken; stdout then says
    # "broke WHY OWNER TOKEN PID TAKEN EXPIRES NOW". Held by anyone else: stdout says
    # "held OWNER TOKEN PID TAKEN EXPIRES NOW", stderr who holds it, exit 75.
    owner=${1:?usage: lock OWNER TOKEN PID LEASE [BREAK]} token=${2:-t0} pid=${3:-0} lease=${4:-60} brk=${5:--}
    for a in "$owner" "$token" "$pid" "$lease" "$brk"; do lock_arg "$a"; done
    case $pid$lease in *[!0-9]*) usage "lock: PID and LEASE are whole numbers" ;; esac
    mkdir -p "$ROOT" || die "cannot create $ROOT"
    if mkdir "$ROOT/lock" 2>/dev/null; then
      write_lock "$(now_s)"
      exit 0
    fi
    lock_guard
    if mkdir "$ROOT/lock" 2>/dev/null; then
      write_lock "$(now_s)"
      exit 0
    fi
    read_lock
    if [ "$h_owner" = "$owner" ] && [ "$h_token" = "$token" ]; then
      # Re-taken with its own token: a restarted controller recovering its transition.
      write_lock "$h_taken"
      lock_unguard
      quiesce
      exit 0
    fi
    now=$(now_s)
    why=
    if [ "$now" -gt "$h_expires" ]; then why=expired; elif [ "$brk" != - ] && [ "$brk" = "$h_token" ]; then why=dead-owner; fi
    if [ -n "$why" ]; then
      old=$(lock_fields)
      rm -rf "$ROOT/lock"
      if mkdir "$ROOT/lock" 2>/dev/null; then
        write_lock "$now"
        printf 'broke %s %s\n' "$why" "$old"
        lock_unguard
        quiesce
        exit 0
      fi
      read_lock
    fi
    printf 'held %s\n' "$(lock_fields)"
    describe_lock >&2
    exit 75
    ;;
  renew)
    # renew OWNER TOKEN LEASE: extends the lease of the lock TOKEN holds; exit 75 if it lost it.
    owner=${1:?usage: renew OWNER TOKEN LEASE} token=${2:?usage: renew OWNER TOKEN LEASE} lease=${3:-60}
    for a in "$owner" "$token" "$lease"; do lock_arg "$a"; done
    case $lease in *[!0-9]*) usage "renew: LEASE is a whole number" ;; esac
    lock_guard
    read_lock
    if [ -d "$ROOT/lock" ] && [ "$h_owner" = "$owner" ] && [ "$h_token" = "$token" ]; then
      pid=$h_pid
      write_lock "$h_taken"
      exit 0
    fi
    if [ -d "$ROOT/lock" ]; then
      printf 'held %s\n' "$(lock_fields)"
      printf 'lock lost: ' >&2
      describe_lock >&2
    else
      printf 'lock lost: nobody holds it\n' >&2
    fi
    exit 75
    ;;
  unlock)
    # unlock OWNER TOKEN: releases the lock TOKEN holds; a free lock is fine, another's is not.
    owner=${1:?usage: unlock OWNER TOKEN} token=${2:-t0}
    lock_arg "$owner"
    lock_arg "$token"
    [ -d "$ROOT/lock" ] || exit 0
    lock_guard
    read_lock
    if [ "$h_owner" = "$owner" ] && [ "$h_token" = "$token" ]; then
      rm -rf "$ROOT/lock"
      exit 0
    fi
    [ -d "$ROOT/lock" ] || exit 0
    printf 'lock is held by %s, not by us\n' "${h_line:-an unknown owner}" >&2
    exit 75
    ;;
  uncommit)
    # uncommit GEN: takes back `commit GEN` of a transition that was rolled back: when GEN is
    # current, the generation before it (or none) is current again. Idempotent.
    gen=${1:?usage: uncommit GENERATION}
    case $gen in *[!0-9]*) usage "bad generation $gen" ;; esac
    cur=$(cat "$ROOT/generations/current" 2>/dev/null)
    if [ "$cur" = "$gen" ]; then
      prev=$(cat "$ROOT/generations/previous" 2>/dev/null)
      if [ -n "$prev" ] && [ "$prev" != "$gen" ] && [ -f "$ROOT/generations/$prev.json" ]; then
        printf '%s\n' "$prev" >"$ROOT/generations/.current.tmp" && mv "$ROOT/generations/.current.tmp" "$ROOT/generations/current" || die "cannot make generation $prev current again"
      else
        rm -f "$ROOT/generations/current" || die "cannot remove $ROOT/generations/current"
      fi
      sync "$ROOT/generations" 2>/dev/null || true
    fi
    [ "$(cat "$ROOT/generations/current" 2>/dev/null)" = "$gen" ] || rm -f "$ROOT/generations/$gen.json"
    ;;
  missing)
    for h in "$@"; do
      check_token "$h"
      [ -d "$ROOT/store/$h" ] || printf '%s\n' "$h"
    done
    ;;
  upload)
    mkdir -p "$ROOT/store" || die "cannot create $ROOT/store"
    while IFS=' ' read -r kind h rest; do
      case $kind in
        A)
          check_token "$h"
          tmp=$ROOT/store/.tmp.$h.$$
          rm -rf "$tmp" && mkdir -p "$tmp"
          unpack "$tmp"
          if [ -d "$ROOT/store/$h" ]; then rm -rf "$tmp"; else mv "$tmp" "$ROOT/store/$h" || die "cannot store $h"; fi
          ;;
        Z) exit 0 ;;
        *) die "malformed upload stream" ;;
      esac
    done
    die "upload stream ended early"
    ;;
  activate)
    check_token "${1:?usage: activate KEY}"
    mkdir -p "$ROOT/items" "$ROOT/state"
    activate_item "$1"
    ;;
  deactivate)
    check_token "${1:?usage: deactivate KEY}"
    deactivate_item "$1"
    ;;
  commit)
    gen=${1:?usage: commit GENERATION}
    case $gen in *[!0-9]*) usage "bad generation $gen" ;; esac
    mkdir -p "$ROOT/generations"
    cat >"$ROOT/generations/.$gen.tmp" || die "cannot write generation"
    # A record cut short (the controller's connection dropped while sending it) is never made current.
    [ "$(tail -c 1 "$ROOT/generations/.$gen.tmp")" = "}" ] || { rm -f "$ROOT/generations/.$gen.tmp"; die "the generation record arrived incomplete"; }
    mv "$ROOT/generations/.$gen.tmp" "$ROOT/generations/$gen.json"
    cur=$(cat "$ROOT/generations/current" 2>/dev/null)
    if [ -n "$cur" ] && [ "$cur" != "$gen" ]; then
      printf '%s\n' "$cur" >"$ROOT/generations/.previous.tmp" && mv "$ROOT/generations/.previous.tmp" "$ROOT/generations/previous"
    fi
    printf '%s\n' "$gen" >"$ROOT/generations/.current.tmp" && mv "$ROOT/generations/.current.tmp" "$ROOT/generations/current"
    sync "$ROOT/generations/current" 2>/dev/null || true
    # Keep the newest 10 generations.
    ls "$ROOT/generations" | grep -E '^[0-9]+\.json$' | sort -n | head -n -10 | while IFS= read -r old; do rm -f "$ROOT/generations/$old"; done
    ;;
  manifest)
    gen=${1:-$(cat "$ROOT/generations/current" 2>/dev/null)}
    [ -n "$gen" ] || exit 0
    case $gen in *[!0-9]*) usage "bad generation $gen" ;; esac
    cat "$ROOT/generations/$gen.json"
    ;;
  status)
    printf 'generation %s\n' "$(cat "$ROOT/generations/current" 2>/dev/null || printf none)"
    printf 'lock %s\n' "$(cat "$ROOT/lock/owner" 2>/dev/null || printf none)"
    for d in "$ROOT"/items/*; do
      [ -d "$d" ] || continue
      key=${d##*/}
      drift=$(item_drift "$d")
      verdict="ok"
      [ -z "$drift" ] || verdict="drift $drift"
      case $(field "$d" module) in
        process) printf 'item %s process %s %s\n' "$key" "$(process_state "$d")" "$verdict" ;;
        *) printf 'item %s %s present - %s\n' "$key" "$(field "$d" module)" "$verdict" ;;
      esac
    done
    ;;
  snapshot)
    check_token "${1:?usage: snapshot KEY}"
    d=$(item_dir "$1")
    [ -d "$d" ] || die "$1 is not active on this machine"
    case $(field "$d" module) in
      postgresql-database) pgdb_snapshot "$d" ;;
      process | script) mkdir -p "$ROOT/state" && pack_dir "$(state_dir "$1")" "$ROOT/state/.snapshot.$1.$$" ;;
      *) die "$1 ($(field "$d" module)) has no state to snapshot" ;;
    esac
    ;;
  restore)
    check_token "${1:?usage: restore KEY}"
    d=$(item_dir "$1")
    [ -d "$d" ] || die "$1 is not active on this machine"
    case $(field "$d" module) in
      postgresql-database) pgdb_restore "$d" ;;
      process | script) restore_state_dir "$d" "$1" ;;
      *) die "$1 ($(field "$d" module)) has no state to restore" ;;
    esac
    ;;
  *)
    usage "unknown verb $VERB"
    ;;
esac
