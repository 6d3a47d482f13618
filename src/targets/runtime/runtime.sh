#!/bin/sh
# strata target runtime. Uploaded by the controller on first contact, content-addressed, and
# run as: sh SHARED/runtime/HASH.sh SHARED/deployments/NAME VERB [ARG...]. Needs POSIX sh and
# coreutils, nothing else. ROOT (the first argument) is one deployment's directory: its items,
# their state, its generations and its lock; the artifact store and the runtime are shared by
# every deployment on the machine (SHARED/store, SHARED/runtime; see "deployments" below).
#
# Contract: arguments are controller-made tokens (hashes, item keys, owners); every value
# that comes from a model arrives as file content (on stdin), is kept in files, and is only
# ever expanded inside double quotes. Exit codes: 0 done, 1 failed (reason on stderr),
# 2 usage, 75 machine locked by someone else.
set -u
# The runtime's own records (specs with environments, generations, state, locks) are private:
# 0600 files in 0700 directories. What is deployed for services (the store, placed files and
# directories, the processes and scripts themselves) gets umask 022 where it is made.
umask 077
unset CDPATH
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

# ---------------------------------------------------------------- paths outside ROOT
#
# A path on the machine may only be written or removed under a declared allowed path (an
# "allowed root"), never inside ROOT (strata's own records are not the models' to write),
# and never through a symbolic link at or below an allowed root: strata creates no links,
# so one found there was put there by someone else and may lead anywhere (`conf -> /etc`).
# The allowed root's own ancestors are the machine's layout and are followed; the root itself
# and every component below it must be a real directory. The walk is done on the machine,
# component by component, with `cd -P` (each step checked against the path it should have
# reached, so a component swapped for a link meanwhile is caught); what is then written or
# removed is named relative to the directory the shell stands in, which a later swap of a
# component above cannot redirect.

# Sets wr_root to the shortest allowed root (a line of file $2) that holds path $1, or dies.
# The path must be absolute and plain (no ".", "..", or empty segments).
wr_root_of() {
  wr_p=$1
  case $wr_p in
    /*) ;;
    *) die "refusing path \"$wr_p\": not absolute" ;;
  esac
  case $wr_p in
    */../* | */.. | */./* | */. | *//*) die "refusing path \"$wr_p\": contains . or .. segments" ;;
  esac
  wr_root=
  if [ -f "$2" ]; then
    while IFS= read -r wr_line; do wr_consider "$wr_line"; done <"$2"
  fi
  [ -n "$wr_root" ] || die "refusing path \"$wr_p\": outside the machine's allowedPaths"
}

# wr_root_of's test of one candidate root: a plain absolute path that is $wr_p or above it.
wr_consider() {
  wr_a=$1
  case $wr_a in
    /*) ;;
    *) return 0 ;;
  esac
  case $wr_a in
    */../* | */.. | */./* | */. | *//*) return 0 ;;
  esac
  [ "$wr_a" = / ] || wr_a=${wr_a%/}
  if [ "$wr_a" != / ]; then
    case $wr_p in
      "$wr_a" | "$wr_a"/*) ;;
      *) return 0 ;;
    esac
  fi
  if [ -z "$wr_root" ] || [ "${#wr_a}" -lt "${#wr_root}" ]; then wr_root=$wr_a; fi
}

# Kept for callers of the former name: dies unless path $1 lies under an allowed root.
check_target_path() { wr_root_of "$1" "$2"; }

# A refusal while walking: activation dies; removal ($wr_mode remove) says why on stderr and
# returns 1, so that the path is left alone and the rest is still removed.
wr_refuse() {
  [ "$wr_mode" = remove ] || die "refusing path \"$wr_p\": $*"
  printf 'strata-runtime: not removing %s: %s\n' "$wr_p" "$*" >&2
  return 1
}

# Enters directory $1 (after wr_root_of), walking down from its allowed root. $2: "create"
# makes missing components (mode from the umask) and dies on a refusal; "check" only looks
# (stops at the first missing component, returning 0 with wr_reached empty) and dies on a
# refusal; "remove" returns 1 on a missing component or a refusal. On success the shell
# stands in the directory reached, whose physical path is wr_at (wr_at_lex: the same path
# as the model names it), and wr_reached is 1 when that is $1 itself.
wr_enter() {
  wr_p=$1 wr_mode=$2 wr_reached=
  if [ -L "$wr_root" ]; then
    wr_refuse "the allowed path $wr_root is a symbolic link (strata follows none at or below an allowed path)" || return 1
  fi
  if [ ! -d "$wr_root" ]; then
    case $wr_mode in
      create) mkdir -p -- "$wr_root" || die "cannot create $wr_root" ;;
      check) return 0 ;;
      *) return 1 ;;
    esac
  fi
  cd -P -- "$wr_root" 2>/dev/null || die "cannot enter $wr_root"
  wr_at=$PWD wr_at_lex=$wr_root
  wr_outside_root || return 1
  wr_rest=${wr_p#"$wr_root"}
  wr_rest=${wr_rest#/}
  while [ -n "$wr_rest" ]; do
    case $wr_rest in
      */*) wr_c=${wr_rest%%/*} wr_rest=${wr_rest#*/} ;;
      *) wr_c=$wr_rest wr_rest= ;;
    esac
    wr_step "$wr_c" || return 1
    [ -n "$wr_c" ] || return 0
  done
  wr_reached=1
}

# One step of wr_enter into component $1 of the current directory. In "check" mode a missing
# component ends the walk (wr_c is emptied: nothing below it exists to be checked).
wr_step() {
  wr_at_lex=${wr_at_lex%/}/$1
  if [ -L "./$1" ]; then
    wr_refuse "$wr_at_lex is a symbolic link (strata follows none below an allowed path)" || return 1
  fi
  if [ ! -e "./$1" ]; then
    case $wr_mode in
      create) mkdir -- "./$1" 2>/dev/null || { [ -d "./$1" ] && [ ! -L "./$1" ]; } || die "cannot create $wr_at_lex" ;;
      check) wr_c= wr_rest=; return 0 ;;
      *) return 1 ;;
    esac
  elif [ ! -d "./$1" ]; then
    wr_refuse "$wr_at_lex is not a directory" || return 1
  fi
  wr_expect=${wr_at%/}/$1
  cd -P -- "./$1" 2>/dev/null || die "cannot enter $wr_at_lex"
  if [ "$PWD" != "$wr_expect" ]; then
    wr_refuse "$wr_at_lex changed while it was checked (it now leads to $PWD)" || return 1
  fi
  wr_at=$PWD
  wr_outside_root
}

# Refuses the directory the walk stands in ($PWD, physical) when it is the machine's runtime
# root (SHARED: every deployment's records, the store, the runtime) or inside it, however it
# was reached: an allowed path holding it does not open strata's records.
wr_outside_root() {
  [ -n "${wr_root_real:-}" ] || wr_root_real=$(cd -P -- "${SHARED:-$ROOT}" 2>/dev/null && pwd -P) || wr_root_real=${SHARED:-$ROOT}
  case $PWD in
    "$wr_root_real" | "$wr_root_real"/*) wr_refuse "$wr_at_lex is inside strata's own root ${SHARED:-$ROOT}" ;;
  esac
}

# Whether the directory the shell stands in is still the one its path names (checked right
# before each write or removal in it).
wr_still_here() {
  [ . -ef "$wr_at" ] || wr_refuse "${wr_at_lex} changed while it was written (it no longer leads here)"
}

# Reads entries into DIR until "E" or "Z" (which one: $unpack_end): "D 0 MODE PATH" makes a
# directory, "F SIZE MODE PATH" is followed by SIZE raw bytes, "T LINES MODE PATH" by LINES
# lines of text. Text is read by the shell itself: an item's spec costs no process. Mode 644
# means the caller's default (no chmod): 0644 in the store (umask 022), 0600 for a spec
# (the runtime's umask 077), which is how specs, environments included, stay private.
unpack() {
  dest=$1
  while IFS=' ' read -r kind a b c; do
    case $kind in
      D) check_rel "$c"; mkdir -p "$dest/$c" || die "cannot create $dest/$c" ;;
      F)
        check_rel "$c"
        if [ "$b" = 644 ]; then
          head -c "$a" >"$dest/$c" || die "cannot write $dest/$c"
        else
          # Any other mode (0600, 0755): created owner-only, so that the bytes of a 0600 file
          # are never readable by others, not even while they are written; then its own mode.
          umask 077
          head -c "$a" >"$dest/$c" || die "cannot write $dest/$c"
          umask 022
          [ "$b" = 600 ] || chmod "$b" "$dest/$c" || die "cannot chmod $dest/$c"
        fi
        ;;
      T)
        check_rel "$c"
        case $a in '' | *[!0-9]*) die "malformed stream (text of \"$a\" lines)" ;; esac
        unpack_short=
        while [ "$a" -gt 0 ]; do
          IFS= read -r line || { unpack_short=1; break; }
          printf '%s\n' "$line"
          a=$((a - 1))
        done >"$dest/$c" || die "cannot write $dest/$c"
        [ -z "$unpack_short" ] || die "stream ended early"
        [ "$b" = 644 ] || chmod "$b" "$dest/$c" || die "cannot chmod $dest/$c"
        ;;
      E | Z) unpack_end=$kind; return 0 ;;
      *) die "malformed stream (got \"$kind\")" ;;
    esac
  done
  die "stream ended early"
}

# Makes DIR and DIR/NAME for every NAME with one mkdir (names are checked tokens).
mkdirs_under() {
  _dir=$1
  shift
  _n=$#
  while [ "$_n" -gt 0 ]; do
    set -- "$@" "$_dir/$1"
    shift
    _n=$((_n - 1))
  done
  mkdir -p -- "$_dir" "$@"
}

# Sets the variable named $1 to the first line of file $2 (nothing when there is none) without
# starting a process: this runs in polling loops. $1 is always a name written in this file.
getf() {
  _getf=
  { IFS= read -r _getf <"$2"; } 2>/dev/null
  eval "$1=\$_getf"
}

# Whether process $1 exists and is not a zombie (read by the shell itself: it is polled).
alive() {
  [ -n "${1:-}" ] || return 1
  if [ -d /proc/self ]; then
    _stat=
    { IFS= read -r _stat <"/proc/$1/stat"; } 2>/dev/null || [ -n "$_stat" ] || return 1
    _stat=${_stat##*") "}
    case $_stat in Z* | X* | '') return 1 ;; esac
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

# Writes "KEY BIND PORT" to FILE for each item among KEYS that is ready when its port listens.
port_list() {
  _out=$1
  shift
  : >"$_out"
  for _k; do
    getf _p "$ROOT/items/$_k/ready_port"
    [ -n "$_p" ] || continue
    getf _b "$ROOT/items/$_k/bind"
    printf '%s %s %s\n' "$_k" "$_b" "$_p" >>"$_out"
  done
}

# Sets `listening` to " KEY KEY ... " of the entries of LIST (from port_list) that something
# listens on, at their address or any address, per /proc/net: one awk for all of them, since
# readiness is polled.
listening_keys() {
  listening=
  [ -s "$1" ] || return 0
  _hits=$1.hits
  set -- "$1" /proc/net/tcp
  [ -r /proc/net/tcp6 ] && set -- "$@" /proc/net/tcp6
  awk '
    FILENAME == ARGV[1] {
      p = sprintf(":%04X", $3)
      n++
      key[n] = $1
      port[n] = p
      addr[n] = (split($2, o, ".") == 4) ? sprintf("%02X%02X%02X%02X", o[4], o[3], o[2], o[1]) p : ""
      next
    }
    $4 == "0A" {
      for (i = 1; i <= n; i++)
        if (!(i in hit) && ($2 == addr[i] || $2 == "00000000" port[i] || $2 == "00000000000000000000000000000000" port[i] || (addr[i] == "" && substr($2, length($2) - 4) == port[i]))) {
          hit[i] = 1
          print key[i]
        }
    }' "$@" >"$_hits" 2>/dev/null
  while IFS= read -r _k; do listening="$listening $_k "; done <"$_hits"
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

# ---------------------------------------------------------------- deployments

# Several deployments may share a machine; each owns SHARED/deployments/NAME (ROOT) and never
# reads or touches another's. ROOT/store is a symlink to the shared, content-addressed store
# (SHARED/store): an artifact two deployments use is stored once. Sets DEPLOYMENT and SHARED.
deployment_layout() {
  case $ROOT in
    /*/deployments/* | /deployments/*) ;;
    *) usage "not a deployment directory (SHARED/deployments/NAME): $ROOT" ;;
  esac
  DEPLOYMENT=${ROOT##*/}
  SHARED=${ROOT%/deployments/*}
  case $DEPLOYMENT in
    '' | [!A-Za-z]* | *[!A-Za-z0-9_-]*) usage "unsafe deployment name: $DEPLOYMENT" ;;
  esac
  [ "$SHARED/deployments/$DEPLOYMENT" = "$ROOT" ] || usage "not a deployment directory (SHARED/deployments/NAME): $ROOT"
}

# The deployment whose generation an earlier strata recorded in the single layout it used
# (SHARED/items, SHARED/generations, ...; one deployment per machine), or nothing.
legacy_owner() {
  [ -d "$SHARED/generations" ] && [ ! -L "$SHARED/generations" ] || return 0
  getf _lg "$SHARED/generations/current"
  case $_lg in '' | *[!0-9]*) return 0 ;; esac
  sed -n '1s/^{"deployment":"\([A-Za-z][A-Za-z0-9_-]*\)".*/\1/p' "$SHARED/generations/$_lg.json" 2>/dev/null
}

# Moves the single layout of an earlier strata into ROOT when its recorded generation is this
# deployment's: the generations and lock, and the items that generation lists with their state
# (other items there were left by another deployment the old layout let overwrite this one's
# record; they stay where they are). Each part moves with one rename into a staging directory
# that becomes ROOT last, so an interrupted migration is finished by the next command. A
# process keeps running: its STATE_DIR (SHARED/state/KEY) becomes a symlink to its new place.
legacy_migrate() {
  _mg=$SHARED/deployments/.migrate.$DEPLOYMENT
  if [ ! -d "$_mg" ]; then
    [ "$(legacy_owner)" = "$DEPLOYMENT" ] || return 0
    mkdir -p "$_mg/items" "$_mg/state" || die "cannot create $_mg"
    getf _lg "$SHARED/generations/current"
    _keys=$(grep -o '"key":"[A-Za-z0-9._-]*"' "$SHARED/generations/$_lg.json" | sed 's/^"key":"//; s/"$//')
    printf '%s\n' $_keys >"$_mg/.keys"
  fi
  while IFS= read -r _k; do
    [ -n "$_k" ] || continue
    check_token "$_k"
    if [ -d "$SHARED/items/$_k" ]; then mv "$SHARED/items/$_k" "$_mg/items/$_k" || die "cannot move $SHARED/items/$_k into $ROOT"; fi
    if [ -d "$SHARED/state/$_k" ] && [ ! -L "$SHARED/state/$_k" ]; then
      mv "$SHARED/state/$_k" "$_mg/state/$_k" && ln -s "../deployments/$DEPLOYMENT/state/$_k" "$SHARED/state/$_k" || die "cannot move $SHARED/state/$_k into $ROOT"
    fi
  done <"$_mg/.keys"
  for _p in generations lock; do
    if [ -d "$SHARED/$_p" ] && [ ! -L "$SHARED/$_p" ]; then mv "$SHARED/$_p" "$_mg/$_p" || die "cannot move $SHARED/$_p into $ROOT"; fi
  done
  rm -f "$_mg/.keys"
  mv "$_mg" "$ROOT" || die "cannot move the records of $DEPLOYMENT into $ROOT"
  printf 'strata-runtime: moved the records of deployment %s from %s into %s\n' "$DEPLOYMENT" "$SHARED" "$ROOT" >&2
}

# Before a verb that changes anything: ROOT exists (the old single layout moved into it if it
# was this deployment's) and reaches the shared store.
deployment_prepare() {
  if [ ! -d "$ROOT" ]; then
    legacy_migrate
    mkdir -p "$ROOT" || die "cannot create $ROOT"
  fi
  [ -d "$SHARED/store" ] || mkdir -p "$SHARED/store" || die "cannot create $SHARED/store"
  [ -L "$ROOT/store" ] || [ -d "$ROOT/store" ] || ln -s ../../store "$ROOT/store" || die "cannot link $ROOT/store"
}

# Before a verb that only reads: a deployment still in the old single layout is read there
# (it moves on its first change); a new one reads its empty ROOT without creating it.
deployment_view() {
  [ ! -d "$ROOT" ] || return 0
  [ -d "$SHARED/deployments/.migrate.$DEPLOYMENT" ] && deployment_prepare && return 0
  [ "$(legacy_owner)" != "$DEPLOYMENT" ] || ROOT=$SHARED
}

# Prints "record NAME BYTES" and BYTES of JSON: deployment NAME's current generation record in
# directory $2, when it has one.
print_record() {
  getf _rg "$2/generations/current"
  case $_rg in '' | *[!0-9]*) return 0 ;; esac
  [ -f "$2/generations/$_rg.json" ] || return 0
  printf 'record %s %s\n' "$1" "$(($(wc -c <"$2/generations/$_rg.json")))"
  cat "$2/generations/$_rg.json"
}

# Prints "pending NAME BYTES" and BYTES of JSON: the record deployment NAME (directory $2) is
# making true on this machine, announced by `claim`, while its transition holds its lock.
print_pending() {
  [ -d "$2/lock" ] && [ -f "$2/claims.pending" ] || return 0
  printf 'pending %s %s\n' "$1" "$(($(wc -c <"$2/claims.pending")))"
  cat "$2/claims.pending"
}

# What every other deployment on this machine holds or is about to: its current record and,
# while a transition of it runs, the record it announced; an earlier strata's single layout
# too while it is another deployment's. Reads only.
list_others() {
  for _dd in "$SHARED"/deployments/*; do
    [ -d "$_dd" ] || continue
    _n=${_dd##*/}
    case $_n in '' | [!A-Za-z]* | *[!A-Za-z0-9_-]*) continue ;; esac
    [ "$_n" != "$DEPLOYMENT" ] || continue
    print_record "$_n" "$_dd"
    print_pending "$_n" "$_dd"
  done
  _lo=$(legacy_owner)
  [ -z "$_lo" ] || [ "$_lo" = "$DEPLOYMENT" ] || print_record "$_lo" "$SHARED"
}

# ---------------------------------------------------------------- module: process

# Starts the process item in D (key KEY) in a session of its own and records its pid; does
# not wait for it. Returns 1 with the reason on stderr when it cannot be started.
process_spawn() {
  d=$1 key=$2
  st=$ROOT/state/$key
  [ -d "$st" ] || { mkdir -p "$st" && state_reachable "$st"; } || { printf 'cannot create %s\n' "$st" >&2; return 1; }
  getf art "$d/artifact"
  if [ -n "$art" ]; then
    wd=$ROOT/store/$art
    [ -d "$wd" ] || { printf 'artifact %s is not in the store\n' "$art" >&2; return 1; }
  else
    wd=$st
  fi
  log_safe "$st"
  (
    cd "$wd" || exit 127
    umask 022 # the service's own, as before strata's records became private
    STATE_DIR=$st
    export STATE_DIR
    . "$d/env"
    exec setsid sh "$d/start"
  ) </dev/null >>"$st/log" 2>&1 &
  printf '%s\n' "$!" >"$d/pid"
}

# Activates the process items KEYS (specs in place in ROOT/items): refuses those whose port is
# taken, starts the others at once, then waits for all of them in one loop (one /proc/net read
# per round for every port). An item is ready when its port listens, its ready command
# succeeds, or, with neither, when it is still alive after 200 ms. One that exits, or is not
# ready within its timeout, is stopped and removed. Sets `not_ready` to the keys that failed;
# reasons are appended to ROOT/items/.err.KEY.
process_activate_all() {
  not_ready=
  fresh=
  for key; do [ -d "$ROOT/state/$key" ] || fresh="$fresh $key"; done
  [ -z "$fresh" ] || { mkdirs_under "$ROOT/state" $fresh && state_reachable "$ROOT/state/${fresh##* }"; }
  list=$ROOT/items/.ports.$$
  port_list "$list" "$@"
  listening_keys "$list"
  pending=
  for key; do
    d=$ROOT/items/$key
    case $listening in
      *" $key "*)
        getf port "$d/ready_port"
        getf bind "$d/bind"
        printf 'port %s on %s is already in use by another process\n' "$port" "$bind" >>"$ROOT/items/.err.$key"
        rm -rf "$d"
        not_ready="$not_ready $key"
        continue
        ;;
    esac
    if process_spawn "$d" "$key" 2>>"$ROOT/items/.err.$key"; then
      pending="$pending $key"
    else
      rm -rf "$d"
      not_ready="$not_ready $key"
    fi
  done
  waited=0
  while [ -n "$pending" ]; do
    port_list "$list" $pending
    listening_keys "$list"
    still=
    for key in $pending; do
      d=$ROOT/items/$key
      getf pid "$d/pid"
      getf port "$d/ready_port"
      getf timeout "$d/ready_timeout"
      if ! alive "$pid"; then
        process_abandon "$key" 'process exited while starting'
        continue
      fi
      if [ -n "$port" ]; then
        case $listening in *" $key "*) continue ;; esac
      elif [ -f "$d/ready_command" ]; then
        st=$ROOT/state/$key
        getf art "$d/artifact"
        if [ -n "$art" ]; then wd=$ROOT/store/$art; else wd=$st; fi
        (cd "$wd" && umask 022 && STATE_DIR=$st && export STATE_DIR && . "$d/env" && sh "$d/ready_command") </dev/null >/dev/null 2>&1 && continue
      elif [ "$waited" -ge 200 ]; then
        continue
      fi
      if [ "$waited" -ge $((${timeout:-30} * 1000)) ]; then
        process_abandon "$key" "not ready after ${timeout:-30}s"
        continue
      fi
      still="$still $key"
    done
    pending=$still
    [ -n "$pending" ] || break
    # Most services are up within a few tens of milliseconds: poll fast at first.
    if [ "$waited" -lt 200 ]; then
      sleep 0.01 2>/dev/null || sleep 1
      waited=$((waited + 10))
    else
      sleep_briefly
      waited=$((waited + 50))
    fi
  done
  rm -f "$list" "$list.hits"
}

# A process item that did not come up: its reason and the end of its log go to its err file;
# it is stopped and removed.
process_abandon() {
  key=$1
  st=$ROOT/state/$key
  {
    printf '%s\n' "$2"
    printf -- '--- last lines of %s/log ---\n' "$st"
    log_tail "$st"
  } >>"$ROOT/items/.err.$key" 2>&1
  process_stop "$ROOT/items/$key"
  [ -n "${keep_failed:-}" ] || rm -rf "$ROOT/items/$key"
  not_ready="$not_ready $key"
}

process_stop() {
  d=$1
  getf pid "$d/pid"
  if group_alive "$pid"; then
    kill -s TERM -- "-$pid" 2>/dev/null || kill -s TERM "$pid" 2>/dev/null
    # Most services exit within milliseconds of TERM: look again soon at first.
    i=0
    while group_alive "$pid" && [ "$i" -lt 220 ]; do
      if [ "$i" -lt 20 ]; then sleep 0.01 2>/dev/null || sleep 1; else sleep_briefly; fi
      i=$((i + 1))
    done
    if group_alive "$pid"; then
      kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null
      i=0
      while group_alive "$pid" && [ "$i" -lt 40 ]; do sleep_briefly; i=$((i + 1)); done
    fi
  fi
  rm -f "$d/pid"
}

# Sets `pstate` ("running PID" or "stopped -") and `pdrift` (why the process item in D differs
# from what was activated, or nothing), given `listening` from listening_keys.
process_probe() {
  d=$1 key=$2
  getf pid "$d/pid"
  getf port "$d/ready_port"
  pdrift=
  if ! group_alive "$pid"; then
    pstate='stopped -'
    pdrift="process ${pid:-?} is not running"
    return 0
  fi
  pstate="running $pid"
  if [ -n "$port" ]; then
    case $listening in
      *" $key "*) ;;
      *) pdrift="nothing listens on port $port" ;;
    esac
  fi
  [ -n "$pdrift" ] || alive "$pid" || pdrift="process $pid exited; others of its process group still run unsupervised"
}

# ---------------------------------------------------------------- module: file

# Places the artifact's files under the item's path. Runs in a subshell (it changes the
# directory and sets an EXIT trap). Every file's path is checked first ("check": no symbolic
# link or non-directory on the way, none at the file itself), so a refusal writes nothing;
# then each file is copied into a private staging directory made in the target and renamed
# over its place from within its checked directory (`mv -T` replaces a link that appeared
# meanwhile instead of following it). Files keep the artifact's modes (`cp -p`); directories
# made for them get 0755. `placed` lists what was actually placed, so undoing a failed
# activation removes nothing it did not write.
file_activate() {
  d=$1
  fa_target=$(field "$d" path)
  fa_src=$ROOT/store/$(field "$d" artifact)
  [ -d "$fa_src" ] || die "artifact is not in the store"
  wr_root_of "$fa_target" "$d/allowed"
  (cd "$fa_src" && find . -type f) | sed 's|^\./||' >"$d/tree" || die "cannot list the artifact"
  : >"$d/placed"
  umask 022
  wr_enter "$fa_target" check
  if [ -n "$wr_reached" ]; then
    fa_top=$wr_at
    while IFS= read -r fa_rel; do
      fa_walk "$fa_rel" check
      [ -z "$fa_name" ] || fa_final_ok
    done <"$d/tree"
  fi
  wr_enter "$fa_target" create
  fa_top=$wr_at
  fa_stage=$fa_top/.strata-new.$$
  rm -rf -- "$fa_stage"
  mkdir -m 700 -- "$fa_stage" || die "cannot create $fa_stage"
  trap 'rm -rf -- "$fa_stage"' EXIT
  fa_n=0
  while IFS= read -r fa_rel; do
    fa_walk "$fa_rel" create
    fa_final_ok
    fa_n=$((fa_n + 1))
    cp -p -- "$fa_src/$fa_rel" "$fa_stage/$fa_n" || die "cannot copy $fa_target/$fa_rel"
    wr_still_here
    mv -fT -- "$fa_stage/$fa_n" "./$fa_name" 2>/dev/null ||
      { fa_final_ok && mv -f -- "$fa_stage/$fa_n" "./$fa_name"; } || die "cannot place $fa_target/$fa_rel"
    printf '%s\n' "$fa_rel" >>"$d/placed"
  done <"$d/tree"
  cd / && rm -rf -- "$fa_stage"
  trap - EXIT
  umask 077
  # Checksums of what was placed, so `status` can tell a file someone changed.
  (cd "$fa_target" && while IFS= read -r rel; do sha256sum -- "$rel"; done <"$d/placed") >"$d/sums" || die "cannot checksum $fa_target"
}

# Stands in the directory of file $1 (relative to the item's path fa_target, whose physical
# path fa_top is) and sets fa_name to its last component; $2 is the mode, as for wr_enter.
# "check" empties fa_name when a directory on the way does not exist yet; "remove" returns 1
# when the file is not to be removed (its directory is missing or reached through a link).
fa_walk() {
  wr_p=$fa_target/$1 wr_mode=$2
  cd -P -- "$fa_top" 2>/dev/null && [ "$PWD" = "$fa_top" ] || wr_refuse "$fa_target changed while it was written" || return 1
  wr_at=$fa_top wr_at_lex=$fa_target fa_name=$1
  while :; do
    case $fa_name in
      */*) wr_c=${fa_name%%/*} fa_name=${fa_name#*/} ;;
      *) return 0 ;;
    esac
    wr_step "$wr_c" || return 1
    if [ -z "$wr_c" ]; then fa_name=; return 0; fi
  done
}

# The file's own place (fa_name in the current directory) may be missing or a regular file;
# a symbolic link or a directory there is refused.
fa_final_ok() {
  if [ -L "./$fa_name" ]; then
    wr_refuse "${wr_at_lex%/}/$fa_name is a symbolic link (strata follows none below an allowed path)"
  elif [ -d "./$fa_name" ]; then
    wr_refuse "${wr_at_lex%/}/$fa_name is a directory"
  fi
}

# Removes the files the item placed, each from within its checked directory: a link found at
# a file's place is removed itself (rm never follows it); a file whose directory is gone, or
# now reached only through a link, is left alone (said on stderr).
file_deactivate() {
  d=$1
  fa_target=$(field "$d" path)
  wr_root_of "$fa_target" "$d/allowed"
  [ -f "$d/placed" ] || return 0
  wr_enter "$fa_target" remove || { cd /; return 0; }
  fa_top=$wr_at
  while IFS= read -r fa_rel; do
    fa_walk "$fa_rel" remove || continue
    if [ -d "./$fa_name" ] && [ ! -L "./$fa_name" ]; then continue; fi
    wr_still_here || continue
    rm -f -- "./$fa_name"
  done <"$d/placed"
  cd /
}

# ---------------------------------------------------------------- module: script

script_run() {
  d=$1 key=$2 which=$3
  st=$(state_dir "$key")
  [ -d "$st" ] || { mkdir -p "$st" && state_reachable "$st"; }
  wd=$(workdir_of "$d" "$st") || exit 1
  [ -f "$wd/$which" ] || { [ "$which" = deactivate ] && return 0; die "the artifact has no \"$which\" script"; }
  log_safe "$st"
  (cd "$wd" && umask 022 && STATE_DIR=$st && export STATE_DIR && . "$d/env" && sh "./$which") </dev/null >>"$st/log" 2>&1 ||
    { log_tail "$st" >&2; die "$which script failed"; }
}

# ---------------------------------------------------------------- module: directory

# Makes the directory (and what is missing above it, 0755) by the checked walk, and sets the
# mode of the directory the walk stands in (`chmod .`: never through a link).
directory_activate() {
  d=$1
  dd_target=$(field "$d" path)
  dd_mode=$(field "$d" mode)
  case $dd_mode in '' | *[!0-7]*) die "unsafe directory mode: $dd_mode" ;; esac
  umask 022
  wr_root_of "$dd_target" "$d/allowed"
  wr_enter "$dd_target" create
  chmod -- "$dd_mode" . || die "cannot set the mode of $dd_target"
  cd /
}

# Keeps a directory that still holds anything: removing a declaration never deletes data.
# rmdir runs in the checked parent, so neither a link on the way nor one at the place itself
# is followed (rmdir of a link fails).
directory_deactivate() {
  dd_target=$(field "$1" path)
  wr_root_of "$dd_target" "$1/allowed"
  if [ "$dd_target" = "$wr_root" ]; then
    rmdir -- "$dd_target" 2>/dev/null
    return 0
  fi
  dd_parent=${dd_target%/*}
  wr_enter "${dd_parent:-/}" remove || { cd /; return 0; }
  [ -L "./${dd_target##*/}" ] || rmdir -- "./${dd_target##*/}" 2>/dev/null
  cd /
  return 0
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
        # -P and the test: a file the service swapped for a link meanwhile is skipped, not
        # read through (root would ship whatever the link names).
        cp -P -- "$src/$rel" "$tmp" 2>/dev/null || continue
        if [ -L "$tmp" ]; then rm -f -- "$tmp"; continue; fi
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
  (umask 022 && unpack "$new") || { rm -rf "$new"; die "the snapshot of $key is damaged; nothing was changed"; }
  mod=$(field "$d" module)
  [ "$mod" = process ] && process_stop "$d"
  mkdir -p "$st"
  if [ -f "$st/log" ]; then mv -f "$st/log" "$new/log"; fi
  mv "$st" "$old" && mv "$new" "$st" || die "cannot put the restored state of $key in place"
  rm -rf "$old"
  if [ "$mod" = process ]; then
    rm -f "$ROOT/items/.err.$key"
    keep_failed=1
    process_activate_all "$key"
    if [ -n "$not_ready" ]; then
      cat "$ROOT/items/.err.$key" >&2
      rm -f "$ROOT/items/.err.$key"
      die "$key did not start again on the restored state"
    fi
  fi
  return 0
}

# ---------------------------------------------------------------- drift

# Prints why an active item (not a process: process_probe) differs from what was activated,
# or nothing when it does not.
item_drift() {
  d=$1
  case $(field "$d" module) in
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
  d=$ROOT/items/$key
  [ -d "$d" ] || return 0
  getf mod "$d/module"
  case $mod in
    process) process_stop "$d" ;;
    file) file_deactivate "$d" ;;
    script) script_run "$d" "$key" deactivate ;;
    directory) directory_deactivate "$d" ;;
    postgresql-database) pgdb_deactivate "$d" ;;
  esac
  rm -rf "$d"
}

# Activates the items KEYS, whose specs come on stdin (one tree per key, in order, each ended
# by "E", then "Z"): every spec is read before any item changes; each key's old activation
# is undone and the new one made; processes are started together and waited for together.
# Prints per key "ok KEY", or "failed KEY BYTES" and BYTES of reason (framed by length: the
# reason may hold any output of a service); a failed item is left inactive. Exit 0 when every
# item is ok, else 1.
activate_items() {
  [ -d "$ROOT/items" ] && [ -d "$ROOT/state" ] || mkdir -p "$ROOT/items" "$ROOT/state" || die "cannot create $ROOT/items"
  # Specs are staged in one directory (one mkdir, one mv for the lot: processes are what a
  # machine has least of when many items start at once).
  stage=$ROOT/items/.new.$$
  [ ! -e "$stage" ] || rm -rf "$stage"
  mkdirs_under "$stage" "$@" || die "cannot create $stage"
  for key; do
    unpack "$stage/$key"
    [ "$unpack_end" = E ] || { rm -rf "$stage"; die "the activate stream holds fewer specs than keys"; }
  done
  IFS= read -r z || z=
  [ "$z" = Z ] || { rm -rf "$stage"; die "malformed activate stream (no end after the last spec)"; }
  failed=
  for key; do
    e=$ROOT/items/.err.$key
    : >"$e"
    if [ -d "$ROOT/items/$key" ] && ! (deactivate_item "$key") 2>>"$e"; then
      rm -rf "$stage/$key"
      failed="$failed $key"
    fi
  done
  mv -- "$stage"/* "$ROOT/items/" 2>/dev/null
  rmdir "$stage" 2>/dev/null || rm -rf "$stage"
  procs=
  for key; do
    d=$ROOT/items/$key
    e=$ROOT/items/.err.$key
    case "$failed " in *" $key "*) continue ;; esac
    [ -d "$d" ] || { printf 'cannot install %s\n' "$d" >>"$e"; failed="$failed $key"; continue; }
    getf mod "$d/module"
    ok=
    case $mod in
      process) procs="$procs $key"; continue ;;  # started together below
      file) (file_activate "$d") 2>>"$e" && ok=1 ;;
      script) (script_run "$d" "$key" activate) 2>>"$e" && ok=1 ;;
      directory) (directory_activate "$d") 2>>"$e" && ok=1 ;;
      postgresql-database) (pgdb_activate "$d" "$key") 2>>"$e" && ok=1 ;;
      *) printf 'unknown module "%s"\n' "$mod" >>"$e" ;;
    esac
    if [ -z "$ok" ]; then
      [ "$mod" != file ] || (file_deactivate "$d") 2>/dev/null
      rm -rf "$d"
      failed="$failed $key"
    fi
  done
  if [ -n "$procs" ]; then
    process_activate_all $procs
    failed="$failed$not_ready"
  fi
  for key; do
    case "$failed " in
      *" $key "*)
        e=$ROOT/items/.err.$key
        printf 'strata-runtime: activation of %s failed\n' "$key" >>"$e"
        printf 'failed %s %s\n' "$key" "$(($(wc -c <"$e")))"
        cat "$e"
        ;;
      *) printf 'ok %s\n' "$key" ;;
    esac
  done
  rm -f "$ROOT"/items/.err.*
  [ -z "$failed" ]
}

# ---------------------------------------------------------------- artifact store

# Reads the artifact stream on stdin ("A HASH" + tree + "E" per artifact, then "Z") into the
# store. Every artifact is unpacked in one staging directory (the HASHes named get their
# directories from one mkdir), and all of them enter the store with one mv once the stream is
# complete: an interrupted upload stores nothing. Artifacts the store has already are dropped.
store_upload() {
  # Artifacts keep the modes they have in the repository; the store's directories stay 0755.
  umask 022
  [ -d "$ROOT/store" ] || mkdir -p "$ROOT/store" || die "cannot create $ROOT/store"
  stage=$ROOT/store/.tmp.$$
  [ ! -e "$stage" ] || rm -rf "$stage"
  mkdirs_under "$stage" "$@" || die "cannot create $stage"
  trap 'rm -rf "$stage"' EXIT
  trap 'exit 129' HUP INT TERM
  complete=
  while IFS=' ' read -r kind h rest; do
    case $kind in
      A)
        check_token "$h"
        [ -d "$stage/$h" ] || mkdir "$stage/$h" || die "cannot create $stage/$h"
        unpack "$stage/$h"
        [ ! -d "$ROOT/store/$h" ] || rm -rf "$stage/$h"
        ;;
      Z) complete=1; break ;;
      *) die "malformed upload stream" ;;
    esac
  done
  [ -n "$complete" ] || die "upload stream ended early"
  for h in "$stage"/*; do
    [ -d "$h" ] || continue
    mv -- "$stage"/* "$ROOT/store/" || die "cannot move the upload into $ROOT/store"
    break
  done
}

# ---------------------------------------------------------------- machine lock

# ROOT/lock/owner holds "OWNER TOKEN PID TAKEN EXPIRES" (times in seconds since the epoch, by
# this machine's clock). A lock is published whole: its directory is made and its owner record
# written under a temporary name, then renamed to ROOT/lock (one rename: the lock exists with
# its owner, or not at all), so a full disk never leaves an ownerless lock. Renewing, releasing
# and breaking one happen under a short guard (`mkdir ROOT/lock.guard`), so they never
# interleave; a lock we hold is renewed and released even when the disk is too full for the guard.
lock_arg() {
  case $1 in
    '' | *[!A-Za-z0-9._:@-]*) usage "unsafe lock argument: $1" ;;
  esac
}

now_s() { date +%s; }

# Takes the guard; returns 1 when it cannot be made for want of space (or inodes): no one can
# take it then, and only operations on a lock we already hold go on without it.
lock_guard() {
  g=0
  until mkdir "$ROOT/lock.guard" 2>/dev/null; do
    if [ ! -e "$ROOT/lock.guard" ]; then
      # Not held, yet not made: released just now, or no space. Twice in a row: no space.
      mkdir "$ROOT/lock.guard" 2>/dev/null && break
      [ -e "$ROOT/lock.guard" ] || return 1
    fi
    t=$(stat -c %Y "$ROOT/lock.guard" 2>/dev/null) || t=
    # A guard is held for milliseconds: one older than 10 s was left by a killed runtime.
    if [ -n "$t" ] && [ $(($(now_s) - t)) -gt 10 ]; then rmdir "$ROOT/lock.guard" 2>/dev/null; continue; fi
    g=$((g + 1))
    [ "$g" -lt 400 ] || die "$ROOT/lock.guard is held for too long"
    sleep_briefly
  done
  trap 'rmdir "$ROOT/lock.guard" 2>/dev/null' EXIT
  trap 'exit 129' HUP INT TERM
  guarded=1
}

# Reads the lock into h_owner h_token h_pid h_taken h_expires (h_line: the file as it is). A
# lock without an owner record can only be an older runtime's (made with mkdir, then written:
# a crash or a full disk in between): it may be broken 10 s after it was made. A record without
# a lease (an older runtime's format) gets one of 60 s from when it was written.
read_lock() {
  getf h_line "$ROOT/lock/owner"
  set -f
  set -- $h_line
  set +f
  h_owner=${1:-} h_token=${2:-} h_pid=${3:-} h_taken=${4:-} h_expires=${5:-}
  case $h_taken$h_expires in
    '' | *[!0-9]*)
      t=$(stat -c %Y "$ROOT/lock/owner" 2>/dev/null || stat -c %Y "$ROOT/lock" 2>/dev/null) || t=$(now_s)
      h_token=- h_pid=- h_taken=$t h_expires=$((t + 60))
      [ -n "$h_line" ] || h_expires=$((t + 10))
      ;;
  esac
}

# The lock for strata: OWNER TOKEN PID TAKEN EXPIRES NOW.
lock_fields() { printf '%s %s %s %s %s %s' "${h_owner:--}" "${h_token:--}" "${h_pid:--}" "$h_taken" "$h_expires" "$(now_s)"; }

iso_time() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || printf '%s' "$1"; }

# The lock for people, with when it can be broken.
describe_lock() {
  _dl_left=$((h_expires - $(now_s)))
  if [ "$h_token" = - ]; then
    if [ "$_dl_left" -gt 0 ]; then _dl_when="it can be broken from $(iso_time "$h_expires") (in ${_dl_left}s)"; else _dl_when='it can be broken now'; fi
    if [ -n "$h_line" ]; then _dl_what='an owner record without a lease, written'; else _dl_what='no owner record, made'; fi
    printf 'locked by %s (%s %s); %s\n' "${h_line:-an unknown owner}" "$_dl_what" "$(iso_time "$h_taken")" "$_dl_when"
    return 0
  fi
  if [ "$_dl_left" -ge 0 ]; then
    _dl_lease="lease expires in ${_dl_left}s"
    _dl_when="it can be broken once the lease has expired, at $(iso_time "$h_expires"), if its holder stops renewing it"
  else
    _dl_lease="lease expired $((-_dl_left))s ago"
    _dl_when='it can be broken now'
  fi
  printf 'locked by %s (pid %s, since %s, %s); %s\n' "$h_owner" "$h_pid" "$(iso_time "$h_taken")" "$_dl_lease" "$_dl_when"
}

# Refuses to take a lock, before anything is changed, when the filesystem of ROOT is almost
# full: the steps of a transition write files, and one that fills the disk half-way leaves
# services down. STRATA_MIN_FREE_KB (default 1024) sets the bar.
lock_space() {
  _ls_need=${STRATA_MIN_FREE_KB:-1024}
  _ls_free=$(df -Pk "$ROOT" 2>/dev/null | awk 'NR == 2 { print $4 }')
  case $_ls_free in '' | *[!0-9]*) return 0 ;; esac
  [ "$_ls_free" -lt "$_ls_need" ] || return 0
  die "only ${_ls_free} KiB free on the filesystem of $ROOT (a transition needs ${_ls_need} KiB): the lock was not taken and nothing was changed"
}

# Takes the free lock for us with TAKEN=$1: the owner record is written first, then published.
# Returns 1 when the lock exists already; dies, leaving nothing behind, when the record cannot be
# written (no space).
lock_take() {
  _lk_line="$owner $token $pid $1 $(($(now_s) + lease))"
  _lk_stage=$ROOT/lock.new.$$
  # A staging directory whose runtime was killed before it renamed it is litter: removed.
  for _lk_old in "$ROOT"/lock.new.*; do
    [ -d "$_lk_old" ] && ! alive "${_lk_old##*.}" && rm -rf "$_lk_old"
  done
  rm -rf "$_lk_stage" 2>/dev/null
  _lk_chk=
  if mkdir "$_lk_stage" 2>/dev/null && printf '%s\n' "$_lk_line" >"$_lk_stage/owner" 2>/dev/null; then
    { IFS= read -r _lk_chk <"$_lk_stage/owner"; } 2>/dev/null
  fi
  if [ "$_lk_chk" != "$_lk_line" ]; then
    rm -rf "$_lk_stage" 2>/dev/null
    die "cannot write the lock's owner record under $ROOT (no space left on the device?): the lock was not taken and nothing was changed"
  fi
  # (An empty ROOT/lock, an older runtime's ownerless lock, is replaced; one with an owner is not.)
  mv -T "$_lk_stage" "$ROOT/lock" 2>/dev/null && return 0
  rm -rf "$_lk_stage"
  return 1
}

# Rewrites the owner record of a lock we hold (renew, re-take) with TAKEN=$1. Atomically when
# there is space (a new file renamed over the old); when there is none, in place: the record
# keeps its length (only EXPIRES changes), so it overwrites its own bytes and needs no free block.
write_lock() {
  _lk_line="$owner $token $pid $1 $(($(now_s) + lease))"
  _lk_chk=
  if printf '%s\n' "$_lk_line" >"$ROOT/lock/owner.tmp" 2>/dev/null; then
    { IFS= read -r _lk_chk <"$ROOT/lock/owner.tmp"; } 2>/dev/null
    [ "$_lk_chk" = "$_lk_line" ] && mv -f "$ROOT/lock/owner.tmp" "$ROOT/lock/owner" 2>/dev/null && return 0
  fi
  rm -f "$ROOT/lock/owner.tmp" 2>/dev/null
  # (Trailing blanks are ignored by read_lock: a shorter record is padded to the old length.)
  while [ "${#_lk_line}" -lt "${#h_line}" ]; do _lk_line="$_lk_line "; done
  if [ "${#_lk_line}" -eq "${#h_line}" ] && printf '%s\n' "$_lk_line" 1<>"$ROOT/lock/owner" 2>/dev/null; then return 0; fi
  die "cannot write $ROOT/lock/owner (no space left on the device?)"
}

# Prints "PID VERB" of another runtime process changing this ROOT (in this mount namespace), if any.
runtime_busy() {
  own=$(readlink /proc/self/ns/mnt 2>/dev/null)
  for f in $(grep -lsaF -- "$SHARED/runtime/" /proc/[0-9]*/cmdline 2>/dev/null); do
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

# The lock is ours: report the hashes asked about that the store lacks, and finish.
# The lock is ours. `lock-upload`: store the artifacts on stdin (the guard released first, as
# the upload takes long). `lock`: report the hashes asked about that the store lacks. Finish.
locked() {
  [ -z "${guarded:-}" ] || lock_unguard
  if [ "$VERB" = lock-upload ]; then
    store_upload $hashes
    exit 0
  fi
  for h in $hashes; do
    [ -d "$ROOT/store/$h" ] || printf 'missing %s\n' "$h"
  done
  exit 0
}

lock_unguard() {
  rmdir "$ROOT/lock.guard" 2>/dev/null
  trap - EXIT HUP INT TERM
  guarded=
}

# ---------------------------------------------------------------- private records

# A STATE_DIR may belong to its service (one that drops its privileges chowns it), so its log
# is only opened by root as a regular file: a link there (which would make root append the
# service's output to any file) or a FIFO is removed first.
log_safe() {
  if [ -L "$1/log" ] || { [ -e "$1/log" ] && [ ! -f "$1/log" ] && [ ! -d "$1/log" ]; }; then rm -f -- "$1/log"; fi
}

# The end of STATE_DIR $1's log, for an error message; never read through a link.
log_tail() { [ -L "$1/log" ] || tail -n 20 -- "$1/log"; }

# A service that drops its privileges (a PostgreSQL server runs as postgres) must reach its
# STATE_DIR $1 by path: the directories between SHARED and it, made 0700 by the umask, become
# 0711 (traversable, but nobody else may list them). STATE_DIR itself stays 0700 for the
# service to chown. Called when a state directory is made.
state_reachable() {
  sr_d=${1%/*}
  set --
  sr_top=${SHARED:-$ROOT}
  while [ "$sr_d" != "$sr_top" ] && [ "${#sr_d}" -gt "${#sr_top}" ]; do
    set -- "$@" "$sr_d"
    sr_d=${sr_d%/*}
  done
  [ $# -eq 0 ] || chmod go+x -- "$@"
}

# A machine set up by an older runtime has world-readable records (0644 files in 0755
# directories): on first contact they are made private, once (the marker then costs a `test`
# per command). The items' specs, generations and the lock are strata's alone (-R); state/
# can no longer be listed (0711, see state_reachable), each STATE_DIR and its log are closed,
# and the services' files inside keep their modes. ROOT and the
# runtime root runs are made writable by their owner only, whatever umask installed them.
private_records() {
  [ -d "$ROOT" ] && [ ! -f "$ROOT/.private-records" ] || return 0
  chmod go-w -- "$SHARED" "$SHARED/runtime" "$SHARED"/runtime/*.sh 2>/dev/null
  # deployments/ and a deployment's directory: traversable (a STATE_DIR below must be
  # reachable, see state_reachable), never listable.
  if [ "$ROOT" != "$SHARED" ]; then chmod go-rw -- "$SHARED/deployments" "$ROOT" 2>/dev/null; fi
  set --
  for pr_d in items generations lock; do
    [ ! -d "$ROOT/$pr_d" ] || [ -L "$ROOT/$pr_d" ] || set -- "$@" "$ROOT/$pr_d"
  done
  [ $# -eq 0 ] || chmod -R go= -- "$@" 2>/dev/null
  if [ -d "$ROOT/state" ] && [ ! -L "$ROOT/state" ]; then
    chmod go-rw -- "$ROOT/state"
    set --
    for pr_d in "$ROOT"/state/*/; do
      pr_d=${pr_d%/}
      [ -d "$pr_d" ] && [ ! -L "$pr_d" ] || continue
      set -- "$@" "$pr_d"
      if [ -f "$pr_d/log" ] && [ ! -L "$pr_d/log" ]; then set -- "$@" "$pr_d/log"; fi
    done
    [ $# -eq 0 ] || chmod go= -- "$@"
  fi
  : >"$ROOT/.private-records"
}

# ---------------------------------------------------------------- verbs

deployment_layout
case $VERB in
  hello | status | manifest | claims | snapshot) deployment_view ;;
  *) deployment_prepare ;;
esac
private_records

case $VERB in
  hello)
    printf 'strata-runtime %s\n' "$ROOT"
    ;;
  lock | lock-upload)
    # lock OWNER TOKEN PID LEASE [BREAK]: takes the lock for LEASE seconds, or renews it when
    # TOKEN holds it. A lock whose lease expired, or that the token BREAK holds (its owner
    # knows that holder is dead), is broken and taken; stdout then says
    # "broke WHY OWNER TOKEN PID TAKEN EXPIRES NOW". Held by anyone else: stdout says
    # "held OWNER TOKEN PID TAKEN EXPIRES NOW", stderr who holds it and when it can be broken,
    # exit 75. A lock is not taken (exit 1, nothing changed) when the filesystem is almost full
    # (lock_space); one TOKEN holds already is re-taken however full it is.
    # With HASHes after BREAK ("-" for none), a taken lock is followed by "missing HASH" for
    # each one the store lacks: locking and the store check cost one round trip.
    # lock-upload OWNER TOKEN PID LEASE BREAK HASH...: the same, and once the lock is taken the
    # artifacts HASH... on stdin (as for `upload`) are stored: for a machine whose store is
    # known to be empty, one round trip instead of two. Refused, it reads nothing.
    owner=${1:?usage: lock OWNER TOKEN PID LEASE [BREAK [HASH...]]} token=${2:-t0} pid=${3:-0} lease=${4:-60} brk=${5:--}
    for a in "$owner" "$token" "$pid" "$lease" "$brk"; do lock_arg "$a"; done
    case $pid$lease in *[!0-9]*) usage "lock: PID and LEASE are whole numbers" ;; esac
    hashes=
    if [ $# -gt 5 ]; then
      shift 5
      for h; do check_token "$h"; done
      hashes=$*
    fi
    [ -d "$ROOT" ] || mkdir -p "$ROOT" || die "cannot create $ROOT"
    if [ ! -e "$ROOT/lock" ]; then
      lock_space
      if lock_take "$(now_s)"; then locked; fi
    fi
    lock_guard || guarded=
    if [ ! -e "$ROOT/lock" ]; then
      [ -n "${guarded:-}" ] || die "no space left on the device of $ROOT for the lock guard: the lock was not taken and nothing was changed"
      lock_space
      if lock_take "$(now_s)"; then locked; fi
    fi
    read_lock
    if [ "$h_owner" = "$owner" ] && [ "$h_token" = "$token" ]; then
      # Re-taken with its own token: a restarted controller recovering its transition, or an
      # undo. Needs no free space.
      write_lock "$h_taken"
      [ -z "${guarded:-}" ] || lock_unguard
      quiesce
      locked
    fi
    now=$(now_s)
    why=
    if [ "$now" -gt "$h_expires" ]; then why=expired; elif [ "$brk" != - ] && [ "$brk" = "$h_token" ]; then why=dead-owner; fi
    if [ -n "$why" ]; then
      [ -n "${guarded:-}" ] || die "no space left on the device of $ROOT for the lock guard: the lock was not broken and nothing was changed"
      lock_space
      old=$(lock_fields)
      rm -rf "$ROOT/lock"
      if lock_take "$now"; then
        printf 'broke %s %s\n' "$why" "$old"
        lock_unguard
        quiesce
        locked
      fi
      read_lock
    fi
    printf 'held %s\n' "$(lock_fields)"
    describe_lock >&2
    exit 75
    ;;
  renew)
    # renew OWNER TOKEN LEASE: extends the lease of the lock TOKEN holds; exit 75 if it lost it.
    # Needs no free space (write_lock), nor the guard when there is no space for it.
    owner=${1:?usage: renew OWNER TOKEN LEASE} token=${2:?usage: renew OWNER TOKEN LEASE} lease=${3:-60}
    for a in "$owner" "$token" "$lease"; do lock_arg "$a"; done
    case $lease in *[!0-9]*) usage "renew: LEASE is a whole number" ;; esac
    lock_guard || guarded=
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
    lock_guard || guarded=
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
    rm -f "$ROOT/claims.pending"
    ;;
  upload)
    # upload [HASH...]: see store_upload.
    for h; do check_token "$h"; done
    store_upload "$@"
    exit 0
    ;;
  activate)
    [ $# -gt 0 ] || usage "usage: activate KEY..."
    for key; do check_token "$key"; done
    activate_items "$@"
    ;;
  deactivate)
    check_token "${1:?usage: deactivate KEY}"
    deactivate_item "$1"
    ;;
  commit)
    gen=${1:?usage: commit GENERATION}
    case $gen in *[!0-9]*) usage "bad generation $gen" ;; esac
    [ -d "$ROOT/generations" ] || mkdir -p "$ROOT/generations" || die "cannot create $ROOT/generations"
    cat >"$ROOT/generations/.$gen.tmp" || die "cannot write generation"
    # A record cut short (the controller's connection dropped while sending it) is never made current.
    [ "$(tail -c 1 "$ROOT/generations/.$gen.tmp")" = "}" ] || { rm -f "$ROOT/generations/.$gen.tmp"; die "the generation record arrived incomplete"; }
    mv "$ROOT/generations/.$gen.tmp" "$ROOT/generations/$gen.json"
    getf cur "$ROOT/generations/current"
    if [ -n "$cur" ] && [ "$cur" != "$gen" ]; then
      printf '%s\n' "$cur" >"$ROOT/generations/.previous.tmp" && mv "$ROOT/generations/.previous.tmp" "$ROOT/generations/previous"
    fi
    printf '%s\n' "$gen" >"$ROOT/generations/.current.tmp" && mv "$ROOT/generations/.current.tmp" "$ROOT/generations/current"
    sync "$ROOT/generations/current" 2>/dev/null || true
    rm -f "$ROOT/claims.pending"  # what it announced is recorded now
    # Keep the newest 10 generations.
    set -- "$ROOT"/generations/[0-9]*.json
    if [ $# -gt 10 ]; then
      ls "$ROOT/generations" | grep -E '^[0-9]+\.json$' | sort -n | head -n -10 | while IFS= read -r old; do rm -f "$ROOT/generations/$old"; done
    fi
    ;;
  manifest)
    gen=${1:-$(cat "$ROOT/generations/current" 2>/dev/null)}
    [ -n "$gen" ] || exit 0
    case $gen in *[!0-9]*) usage "bad generation $gen" ;; esac
    cat "$ROOT/generations/$gen.json"
    ;;
  status)
    # One round trip for the drift probe: it starts as few processes as it can (one awk for
    # every port), since it runs on every machine every probe interval.
    getf gen "$ROOT/generations/current"
    printf 'generation %s\n' "${gen:-none}"
    getf holder "$ROOT/lock/owner"
    printf 'lock %s\n' "${holder:-none}"
    keys=
    for d in "$ROOT"/items/*; do
      [ -d "$d" ] && keys="$keys ${d##*/}"
    done
    list=$ROOT/state/.probe.$$
    if [ -n "$keys" ] && [ -d "$ROOT/state" ]; then
      port_list "$list" $keys
      listening_keys "$list"
      rm -f "$list" "$list.hits"
    fi
    for key in $keys; do
      d=$ROOT/items/$key
      getf mod "$d/module"
      if [ "$mod" = process ]; then
        process_probe "$d" "$key"
        verdict=ok
        [ -z "$pdrift" ] || verdict="drift $pdrift"
        printf 'item %s process %s %s\n' "$key" "$pstate" "$verdict"
      else
        drift=$(item_drift "$d")
        verdict=ok
        [ -z "$drift" ] || verdict="drift $drift"
        printf 'item %s %s present - %s\n' "$key" "$mod" "$verdict"
      fi
    done
    ;;
  claims)
    # claims: what the other deployments on this machine hold (list_others), for the controller
    # to refuse a port or path one of them claims. Reads only.
    list_others
    ;;
  claim)
    # claim: records the machine record this deployment's transition is making true (stdin,
    # JSON), so that a transition of another deployment asking meanwhile sees what this one is
    # about to hold; then answers as `claims` does. Sent once the lock is taken: of two
    # transitions claiming the same thing at once, the later to announce sees the earlier.
    # It holds the items' environment, like a generation record: readable by its owner only.
    (umask 077 && cat >"$ROOT/.claims.pending.tmp") || die "cannot record the claims"
    [ "$(tail -c 1 "$ROOT/.claims.pending.tmp")" = "}" ] || { rm -f "$ROOT/.claims.pending.tmp"; die "the claimed record arrived incomplete"; }
    mv -f "$ROOT/.claims.pending.tmp" "$ROOT/claims.pending" || die "cannot record the claims"
    list_others
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
