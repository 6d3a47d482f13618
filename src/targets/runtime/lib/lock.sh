# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- machine lock

# ROOT/lock/owner holds "OWNER TOKEN PID TAKEN EXPIRES" (times in seconds since the epoch, by
# this machine's clock). A lock is published whole: its directory is made and its owner record
# written under a temporary name, then renamed to ROOT/lock (one rename: the lock exists with
# its owner, or not at all), so a full disk never leaves an ownerless lock. Renewing, releasing
# and breaking one happen under a short guard (`mkdir ROOT/lock.guard`), so they never
# interleave; a lock we hold is renewed and released even when the disk is too full for the guard.
#
# Globals of the lock (its prefixes): lk_owner lk_token lk_pid lk_lease, the request the lock
# verbs were given, read by lock_take and write_lock; lk_guarded, set while we hold the guard;
# h_*, the holder read_lock found.
# shellcheck disable=SC2016 # expanded when it runs, at exit
LOCK_GUARD_CLEANUP='rmdir "$ROOT/lock.guard" 2>/dev/null'
lock_arg() {
  case $1 in
    '' | *[!$LOCK_ARG_CHARS]*) usage "unsafe lock argument: $1" ;;
  esac
}

now_s() { date +%s; }

# Takes the guard; returns 1 when it cannot be made for want of space (or inodes): no one can
# take it then, and only operations on a lock we already hold go on without it.
lock_guard() {
  local g t
  g=0
  until mkdir "$ROOT/lock.guard" 2>/dev/null; do
    if [ ! -e "$ROOT/lock.guard" ]; then
      # Not held, yet not made: released just now, or no space. Twice in a row: no space.
      mkdir "$ROOT/lock.guard" 2>/dev/null && break
      [ -e "$ROOT/lock.guard" ] || return 1
    fi
    t=$(file_mtime "$ROOT/lock.guard" 2>/dev/null) || t=
    # A guard is held for milliseconds: one older than 10 s was left by a killed runtime.
    if [ -n "$t" ] && [ $(($(now_s) - t)) -gt 10 ]; then rmdir "$ROOT/lock.guard" 2>/dev/null; continue; fi
    g=$((g + 1))
    [ "$g" -lt 400 ] || die "$ROOT/lock.guard is held for too long"
    sleep_briefly
  done
  on_exit_add "$LOCK_GUARD_CLEANUP"
  lk_guarded=1
}

# Reads the lock into h_owner h_token h_pid h_taken h_expires (h_line: the file as it is). A
# lock without an owner record can only be an older runtime's (made with mkdir, then written:
# a crash or a full disk in between): it may be broken 10 s after it was made. A record without
# a lease (an older runtime's format) gets one of 60 s from when it was written.
read_lock() {
  local t
  getf h_line "$ROOT/lock/owner"
  set -f
  # shellcheck disable=SC2086 # the record's fields, split on blanks (globbing is off)
  set -- $h_line
  set +f
  h_owner=${1:-} h_token=${2:-} h_pid=${3:-} h_taken=${4:-} h_expires=${5:-}
  case $h_taken$h_expires in
    '' | *[!0-9]*)
      t=$(file_mtime "$ROOT/lock/owner" 2>/dev/null || file_mtime "$ROOT/lock" 2>/dev/null) || t=$(now_s)
      h_token=- h_pid=- h_taken=$t h_expires=$((t + 60))
      [ -n "$h_line" ] || h_expires=$((t + 10))
      ;;
  esac
}

# The lock for strata: OWNER TOKEN PID TAKEN EXPIRES NOW.
lock_fields() { printf '%s %s %s %s %s %s' "${h_owner:--}" "${h_token:--}" "${h_pid:--}" "$h_taken" "$h_expires" "$(now_s)"; }

# The lock for people, with when it can be broken.
describe_lock() {
  local _dl_left _dl_when _dl_what _dl_lease
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
  local _ls_need _ls_free
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
  local _lk_line _lk_stage _lk_old _lk_chk
  _lk_line="$lk_owner $lk_token $lk_pid $1 $(($(now_s) + lk_lease))"
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
  local _lk_line _lk_chk
  _lk_line="$lk_owner $lk_token $lk_pid $1 $(($(now_s) + lk_lease))"
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

