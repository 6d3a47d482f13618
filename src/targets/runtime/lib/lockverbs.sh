# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- the lock's verbs

# Prints "PID VERB" of another runtime process changing this ROOT (in this mount namespace), if
# any: one running a verb of VERBS_BUSY (the protocol's table, src/targets/runtime/protocol.ts).
runtime_busy() {
  local own f p
  if [ "$STRATA_PROCS" = ps ]; then runtime_busy_ps; return; fi
  own=$(readlink /proc/self/ns/mnt 2>/dev/null)
  # shellcheck disable=SC2013 # names of /proc files: no blanks in them
  for f in $(grep -lsaF -- "$SHARED/runtime/" /proc/[0-9]*/cmdline 2>/dev/null); do
    p=${f#/proc/}
    p=${p%/cmdline}
    [ "$p" = "$$" ] && continue
    [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$own" ] || continue
    set -f
    # shellcheck disable=SC2046 # the command line's words, split on the spaces tr made of its NULs
    set -- $(tr '\0' ' ' <"$f" 2>/dev/null)
    set +f
    [ "${3:-}" = "$ROOT" ] || continue
    case " $VERBS_BUSY " in
      *" ${4:-} "*) [ -z "${4:-}" ] || { printf '%s %s' "$p" "$4"; return 0; } ;;
    esac
  done
  return 1
}

# A lock taken over from a transition whose controller died: a command it started may still
# run here (a dropped SSH session does not stop it). Wait (up to 90 s) until it is over, so that
# whatever it did is there to be undone.
quiesce() {
  local w b
  w=0
  while b=$(runtime_busy); do
    [ "$w" -eq 0 ] && printf 'waiting for a command of the previous holder that still runs here (pid and verb: %s)\n' "$b" >&2
    w=$((w + 1))
    [ "$w" -lt 1800 ] || { printf 'still running after 90s: %s; going on\n' "$b" >&2; return 0; }
    sleep_briefly
  done
}

# The lock is ours. `lock-upload`: store the artifacts on stdin (the guard released first, as
# the upload takes long). `lock`: report the hashes asked about (lk_hashes) that the store
# lacks. Finish.
locked() {
  local h
  [ -z "${lk_guarded:-}" ] || lock_unguard
  if [ "$VERB" = lock-upload ]; then
    # shellcheck disable=SC2086 # checked tokens, one word each
    store_upload $lk_hashes
    exit "$EXIT_OK"
  fi
  for h in $lk_hashes; do
    [ -d "$ROOT/store/$h" ] || printf 'missing %s\n' "$h"
  done
  exit "$EXIT_OK"
}

lock_unguard() {
  rmdir "$ROOT/lock.guard" 2>/dev/null
  on_exit_remove "$LOCK_GUARD_CLEANUP"
  lk_guarded=
}

# lock OWNER TOKEN PID LEASE [BREAK [HASH...]]: takes the lock for LEASE seconds, or renews it
# when TOKEN holds it. A lock whose lease expired, or that the token BREAK holds (its owner
# knows that holder is dead), is broken and taken; stdout then says
# "broke WHY OWNER TOKEN PID TAKEN EXPIRES NOW". Held by anyone else: stdout says
# "held OWNER TOKEN PID TAKEN EXPIRES NOW", stderr who holds it and when it can be broken,
# exit EXIT_LOCKED. A lock is not taken (exit 1, nothing changed) when the filesystem is almost
# full (lock_space); one TOKEN holds already is re-taken however full it is.
# With HASHes after BREAK ("-" for none), a taken lock is followed by "missing HASH" for
# each one the store lacks: locking and the store check cost one round trip.
verb_lock() {
  local brk a h now why old
  lk_owner=${1:?usage: lock OWNER TOKEN PID LEASE [BREAK [HASH...]]} lk_token=${2:-t0} lk_pid=${3:-0} lk_lease=${4:-60} brk=${5:--}
  for a in "$lk_owner" "$lk_token" "$lk_pid" "$lk_lease" "$brk"; do lock_arg "$a"; done
  case $lk_pid$lk_lease in *[!0-9]*) usage "lock: PID and LEASE are whole numbers" ;; esac
  lk_hashes=
  if [ $# -gt 5 ]; then
    shift 5
    for h; do check_token "$h"; done
    lk_hashes=$*
  fi
  [ -d "$ROOT" ] || mkdir -p "$ROOT" || die "cannot create $ROOT"
  if [ ! -e "$ROOT/lock" ]; then
    lock_space
    if lock_take "$(now_s)"; then locked; fi
  fi
  lock_guard || lk_guarded=
  if [ ! -e "$ROOT/lock" ]; then
    [ -n "${lk_guarded:-}" ] || die "no space left on the device of $ROOT for the lock guard: the lock was not taken and nothing was changed"
    lock_space
    if lock_take "$(now_s)"; then locked; fi
  fi
  read_lock
  if [ "$h_owner" = "$lk_owner" ] && [ "$h_token" = "$lk_token" ]; then
    # Re-taken with its own token: a restarted controller recovering its transition, or an
    # undo. Needs no free space.
    write_lock "$h_taken"
    [ -z "${lk_guarded:-}" ] || lock_unguard
    quiesce
    locked
  fi
  now=$(now_s)
  why=
  if [ "$now" -gt "$h_expires" ]; then why=expired; elif [ "$brk" != - ] && [ "$brk" = "$h_token" ]; then why=dead-owner; fi
  if [ -n "$why" ]; then
    [ -n "${lk_guarded:-}" ] || die "no space left on the device of $ROOT for the lock guard: the lock was not broken and nothing was changed"
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
  exit "$EXIT_LOCKED"
}

# lock-upload OWNER TOKEN PID LEASE BREAK HASH...: `lock`, and once the lock is taken the
# artifacts HASH... on stdin (as for `upload`) are stored: for a machine whose store is known
# to be empty, one round trip instead of two. Refused, it reads nothing.
verb_lock_upload() { verb_lock "$@"; }

# renew OWNER TOKEN LEASE: extends the lease of the lock TOKEN holds; exit EXIT_LOCKED if it
# lost it. Needs no free space (write_lock), nor the guard when there is no space for it.
verb_renew() {
  local a
  lk_owner=${1:?usage: renew OWNER TOKEN LEASE} lk_token=${2:?usage: renew OWNER TOKEN LEASE} lk_lease=${3:-60}
  for a in "$lk_owner" "$lk_token" "$lk_lease"; do lock_arg "$a"; done
  case $lk_lease in *[!0-9]*) usage "renew: LEASE is a whole number" ;; esac
  lock_guard || lk_guarded=
  read_lock
  if [ -d "$ROOT/lock" ] && [ "$h_owner" = "$lk_owner" ] && [ "$h_token" = "$lk_token" ]; then
    lk_pid=$h_pid
    write_lock "$h_taken"
    exit "$EXIT_OK"
  fi
  if [ -d "$ROOT/lock" ]; then
    printf 'held %s\n' "$(lock_fields)"
    printf 'lock lost: ' >&2
    describe_lock >&2
  else
    printf 'lock lost: nobody holds it\n' >&2
  fi
  exit "$EXIT_LOCKED"
}

# unlock OWNER TOKEN: releases the lock TOKEN holds; a free lock is fine, another's is not.
verb_unlock() {
  lk_owner=${1:?usage: unlock OWNER TOKEN} lk_token=${2:-t0}
  lock_arg "$lk_owner"
  lock_arg "$lk_token"
  [ -d "$ROOT/lock" ] || exit "$EXIT_OK"
  lock_guard || lk_guarded=
  read_lock
  if [ "$h_owner" = "$lk_owner" ] && [ "$h_token" = "$lk_token" ]; then
    rm -rf "$ROOT/lock"
    exit "$EXIT_OK"
  fi
  [ -d "$ROOT/lock" ] || exit "$EXIT_OK"
  printf 'lock is held by %s, not by us\n' "${h_line:-an unknown owner}" >&2
  exit "$EXIT_LOCKED"
}
