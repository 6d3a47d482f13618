# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- module: directory
#
# A directory at `path` (under one of `allowed`) with `mode`, reached by the checked walk
# (lib/paths.sh). Its variables are dd_* (a directory item's own).
# shellcheck disable=SC2034 # read by module_fn (lib/items.sh)
MODULE_directory='activate deactivate probe'

# Makes the directory (and what is missing above it, 0755) by the checked walk, and sets the
# mode of the directory the walk stands in (`chmod .`: never through a link).
directory_activate() {
  local d dd_target dd_mode
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
  local dd_target dd_parent
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

directory_probe() {
  local dd_target
  dd_target=$(field "$1" path)
  [ -d "$dd_target" ] || probe_drift="directory $dd_target is missing"
}
