# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# The runtime's library: helpers every part uses. Sourcing any file of the runtime only
# defines functions; main.sh (appended last) runs a verb. See docs/runtime.md for the files,
# the order they are joined in, and the rules they keep:
# - every function declares its variables `local`, except the results it documents as set
#   for its caller (a name prefixed by the part it belongs to: wr_*, h_*, probe_*, ...);
# - arguments are controller-made tokens; values from models arrive as file content and are
#   only ever expanded inside double quotes.

die() { printf 'strata-runtime: %s\n' "$*" >&2; exit "$EXIT_FAILED"; }
usage() { printf 'strata-runtime: %s\n' "$*" >&2; exit "$EXIT_USAGE"; }

# Hashes and keys name files in ROOT: only a closed set of characters may appear.
check_token() {
  case $1 in
    '' | .* | *[!$TOKEN_CHARS]*) usage "unsafe name: $1" ;;
  esac
}

# A relative path inside an artifact: no absolute paths, no "..", no empty segments.
check_rel() {
  case $1 in
    '' | /* | ../* | */../* | */.. | .. | *//*) die "unsafe path in stream: $1" ;;
  esac
}

sleep_briefly() { sleep 0.05 2>/dev/null || sleep 1; }

# ---------------------------------------------------------------- the exit registry

# One EXIT trap runs every cleanup registered with on_exit_add, newest first; on_exit_remove
# takes one back (a guard released early must not be removed later: by then it may be
# another runtime's). A signal exits 129, which runs them too. A function that registers a
# cleanup inside a subshell starts the subshell's own list with on_exit_reset first, so that
# the subshell's end does not run its parent's cleanups.
on_exit_actions=
# An action is one line of sh, evaluated at exit: it names variables in single quotes.
on_exit_add() {
  on_exit_actions="$1
$on_exit_actions"
  trap on_exit_run EXIT
  trap 'exit "$EXIT_SIGNALLED"' HUP INT TERM
}

on_exit_remove() {
  local rest line IFS
  rest=
  IFS='
'
  set -f
  for line in $on_exit_actions; do
    [ "$line" = "$1" ] || rest="$rest$line
"
  done
  set +f
  on_exit_actions=$rest
  [ -n "$on_exit_actions" ] || trap - EXIT HUP INT TERM
}

on_exit_reset() {
  on_exit_actions=
  trap - EXIT HUP INT TERM
}

on_exit_run() {
  local line actions IFS
  actions=$on_exit_actions
  on_exit_actions=
  IFS='
'
  set -f
  for line in $actions; do
    IFS=' 	
'
    set +f
    eval "$line"
  done
}

# ---------------------------------------------------------------- files and processes

# Makes DIR and DIR/NAME for every NAME with one mkdir (names are checked tokens).
mkdirs_under() {
  local dir n
  dir=$1
  shift
  n=$#
  while [ "$n" -gt 0 ]; do
    set -- "$@" "$dir/$1"
    shift
    n=$((n - 1))
  done
  mkdir -p -- "$dir" "$@"
}

# Sets the variable named $1 to the first line of file $2 (nothing when there is none) without
# starting a process: this runs in polling loops. $1 is always a name written in this script.
getf() {
  _getf=
  { IFS= read -r _getf <"$2"; } 2>/dev/null
  eval "$1=\$_getf"
}

# Whether process $1 exists and is not a zombie (read by the shell itself: it is polled).
alive() {
  local stat
  [ -n "${1:-}" ] || return 1
  if [ -d /proc/self ]; then
    stat=
    { IFS= read -r stat <"/proc/$1/stat"; } 2>/dev/null || [ -n "$stat" ] || return 1
    stat=${stat##*") "}
    case $stat in Z* | X* | '') return 1 ;; esac
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

item_dir() { printf '%s/items/%s' "$ROOT" "$1"; }
state_dir() { printf '%s/state/%s' "$ROOT" "$1"; }
field() { cat "$1/$2" 2>/dev/null; }

# The directory an item's commands run in: its artifact in the store, or else $2 (its STATE_DIR).
workdir_of() {
  local art
  art=$(field "$1" artifact)
  if [ -n "$art" ]; then
    [ -d "$ROOT/store/$art" ] || die "artifact $art is not in the store"
    printf '%s' "$ROOT/store/$art"
  else
    printf '%s' "$2"
  fi
}

# Sets fn_name to $1 with every "-" as "_": a verb or module type as part of a function's name.
fn_name_of() {
  fn_name=$1
  while :; do
    case $fn_name in
      *-*) fn_name=${fn_name%%-*}_${fn_name#*-} ;;
      *) return 0 ;;
    esac
  done
}
