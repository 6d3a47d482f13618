# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- module: script
#
# An item whose artifact holds an `activate` (and optionally a `deactivate`) script, run once
# in its STATE_DIR's service environment. Its state is its STATE_DIR.
# shellcheck disable=SC2034 # read by module_fn (lib/items.sh)
MODULE_script='activate deactivate snapshot restore'

# Runs script $3 (activate or deactivate) of the item in D $1 (key $2); dies when it fails.
script_run() {
  local d key which st wd
  d=$1 key=$2 which=$3
  st=$(state_dir "$key")
  [ -d "$st" ] || { mkdir -p "$st" && state_reachable "$st"; }
  wd=$(workdir_of "$d" "$st") || exit "$EXIT_FAILED"
  [ -f "$wd/$which" ] || { [ "$which" = deactivate ] && return 0; die "the artifact has no \"$which\" script"; }
  log_safe "$st"
  # shellcheck source=/dev/null # the item's env file, written by strata on the machine
  (cd "$wd" && umask 022 && STATE_DIR=$st && export STATE_DIR && . "$d/env" && sh "./$which") </dev/null >>"$st/log" 2>&1 ||
    { log_tail "$st" >&2; die "$which script failed"; }
}

script_activate() { script_run "$1" "$2" activate; }
script_deactivate() { script_run "$1" "$2" deactivate; }
script_snapshot() { state_snapshot "$2"; }
script_restore() {
  state_unpack "$2"
  state_swap "$2"
}
