# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- snapshots of STATE_DIR
#
# The snapshot and restore of an item whose state is its STATE_DIR (process, script): the
# tree in the stream framing (pack_dir, unpack). state_new is the restore's staging
# directory, from state_unpack to state_swap.

# Writes the STATE_DIR of KEY to stdout (see pack_dir).
state_snapshot() {
  mkdir -p "$ROOT/state" && pack_dir "$(state_dir "$1")" "$ROOT/state/.snapshot.$1.$$"
}

# Unpacks the stream on stdin aside, into state_new: a damaged one changes nothing.
state_unpack() {
  state_new=$ROOT/state/.restore.$1.$$
  rm -rf "$state_new" "$ROOT/state/.old.$1.$$"
  mkdir -p "$state_new" || die "cannot create $state_new"
  (umask 022 && unpack "$state_new") || { rm -rf "$state_new"; die "the snapshot of $1 is damaged; nothing was changed"; }
}

# Puts state_new in the place of KEY's STATE_DIR; its log stays.
state_swap() {
  local st old
  st=$(state_dir "$1")
  old=$ROOT/state/.old.$1.$$
  mkdir -p "$st"
  if [ -f "$st/log" ]; then mv -f "$st/log" "$state_new/log"; fi
  # shellcheck disable=SC2015 # die when either step fails
  mv "$st" "$old" && mv "$state_new" "$st" || die "cannot put the restored state of $1 in place"
  rm -rf "$old"
}
