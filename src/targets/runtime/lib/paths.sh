# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
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
#
# The walk's variables are its results and its state across wr_enter, wr_step and the file
# module's fa_walk: all of them are named wr_* (the path walk's prefix), and nothing else is.

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
      check) wr_c='' wr_rest=''; return 0 ;;
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
  # shellcheck disable=SC3013 # -ef: dash, BusyBox ash and bash have it
  [ . -ef "$wr_at" ] || wr_refuse "${wr_at_lex} changed while it was written (it no longer leads here)"
}
