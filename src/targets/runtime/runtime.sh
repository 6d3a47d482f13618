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
    *) printf 'unknown module "%s"\n' "$(field "$d" module)" >&2 ;;
  esac
  if [ "$ok" != 1 ]; then
    case $(field "$d" module) in file) (file_deactivate "$d") ;; esac
    rm -rf "$d"
    die "activation of $key failed"
  fi
}

# ---------------------------------------------------------------- verbs

case $VERB in
  hello)
    printf 'strata-runtime %s\n' "$ROOT"
    ;;
  lock)
    owner=${1:?usage: lock OWNER}
    mkdir -p "$ROOT"
    if ! mkdir "$ROOT/lock" 2>/dev/null; then
      held=$(cat "$ROOT/lock/owner" 2>/dev/null)
      case $held in "$owner "*) exit 0 ;; esac
      printf 'locked by %s\n' "${held:-an unknown owner}" >&2
      exit 75
    fi
    printf '%s %s\n' "$owner" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$ROOT/lock/owner.tmp" && mv "$ROOT/lock/owner.tmp" "$ROOT/lock/owner"
    ;;
  unlock)
    owner=${1:?usage: unlock OWNER}
    held=$(cat "$ROOT/lock/owner" 2>/dev/null)
    case $held in
      "$owner "*) rm -rf "$ROOT/lock" ;;
      '') rm -rf "$ROOT/lock" ;;
      *) printf 'lock is held by %s, not by us\n' "$held" >&2; exit 75 ;;
    esac
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
  *)
    usage "unknown verb $VERB"
    ;;
esac
