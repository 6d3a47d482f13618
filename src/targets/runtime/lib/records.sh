# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
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
  local sr_d sr_top
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
  local pr_d
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
      # shellcheck disable=SC2015 # skip unless both hold
      [ -d "$pr_d" ] && [ ! -L "$pr_d" ] || continue
      set -- "$@" "$pr_d"
      if [ -f "$pr_d/log" ] && [ ! -L "$pr_d/log" ]; then set -- "$@" "$pr_d/log"; fi
    done
    [ $# -eq 0 ] || chmod go= -- "$@"
  fi
  : >"$ROOT/.private-records"
}

