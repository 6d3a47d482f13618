# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- module: process
#
# A long-running process started from the item's `start` script in a session of its own, with
# its STATE_DIR; ready when its ready_port listens, its ready_command succeeds, or (with
# neither) when it is still alive after 200 ms. Process items activate together
# (activate_all), so that many start at once and are waited for in one loop.
# shellcheck disable=SC2034 # read by module_fn (lib/items.sh)
MODULE_process='activate_all deactivate probe snapshot restore'

# Starts the process item in D (key KEY) in a session of its own and records its pid; does
# not wait for it. Returns 1 with the reason on stderr when it cannot be started.
process_spawn() {
  local d key st art wd
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
    # Chosen before the item's environment is read: a model's variable cannot change it.
    set -- sh "$d/start"
    if [ "$STRATA_SESSION" = setsid ]; then set -- setsid "$@"; else set -- perl -e "$SESSION_PERL" "$@"; fi
    # shellcheck source=/dev/null # the item's env file, written by strata on the machine
    . "$d/env"
    exec "$@"
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
  local fresh key list pending waited still d pid port bind timeout st art wd
  not_ready=
  fresh=
  for key; do [ -d "$ROOT/state/$key" ] || fresh="$fresh $key"; done
  # shellcheck disable=SC2086 # checked tokens, one word each
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
    # shellcheck disable=SC2086 # checked tokens, one word each
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
        # shellcheck source=/dev/null # the item's env file, written by strata on the machine
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
  local key st
  key=$1
  st=$ROOT/state/$key
  {
    printf '%s\n' "$2"
    printf -- '--- last lines of %s/log ---\n' "$st"
    log_tail "$st"
  } >>"$ROOT/items/.err.$key" 2>&1
  process_stop "$ROOT/items/$key"
  [ -n "${process_keep_failed:-}" ] || rm -rf "$ROOT/items/$key"
  not_ready="$not_ready $key"
}

process_stop() {
  local d pid i
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

# Sets `probe_state` ("running PID" or "stopped -") and `probe_drift` (why the process item
# in D differs from what was activated, or nothing), given `listening` from listening_keys.
process_probe() {
  local d key pid port
  d=$1 key=$2
  getf pid "$d/pid"
  getf port "$d/ready_port"
  probe_drift=
  if ! group_alive "$pid"; then
    probe_state='stopped -'
    probe_drift="process ${pid:-?} is not running"
    return 0
  fi
  probe_state="running $pid"
  if [ -n "$port" ]; then
    case $listening in
      *" $key "*) ;;
      *) probe_drift="nothing listens on port $port" ;;
    esac
  fi
  [ -n "$probe_drift" ] || alive "$pid" || probe_drift="process $pid exited; others of its process group still run unsupervised"
}

process_deactivate() { process_stop "$1"; }
process_snapshot() { state_snapshot "$2"; }

# The process is stopped for the swap and started again on the restored state.
process_restore() {
  state_unpack "$2"
  process_stop "$1"
  state_swap "$2"
  rm -f "$ROOT/items/.err.$2"
  process_keep_failed=1
  process_activate_all "$2"
  if [ -n "$not_ready" ]; then
    cat "$ROOT/items/.err.$2" >&2
    rm -f "$ROOT/items/.err.$2"
    die "$2 did not start again on the restored state"
  fi
}
