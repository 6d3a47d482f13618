# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- the stream framing
#
# The framing of what strata sends (src/targets/runtime/protocol.ts, FRAME; written by
# src/targets/stream.ts) and of a snapshot of a STATE_DIR, which uses the same entries.

# Reads entries into DIR until "E" or "Z" (which one: the result unpack_end): "D 0 MODE PATH"
# makes a directory, "F SIZE MODE PATH" is followed by SIZE raw bytes, "T LINES MODE PATH" by
# LINES lines of text. Text is read by the shell itself: an item's spec costs no process. Mode 644
# means the caller's default (no chmod): 0644 in the store (umask 022), 0600 for a spec
# (the runtime's umask 077), which is how specs, environments included, stay private.
unpack() {
  local dest kind a b c line short
  dest=$1
  while IFS=' ' read -r kind a b c; do
    case $kind in
      D) check_rel "$c"; mkdir -p "$dest/$c" || die "cannot create $dest/$c" ;;
      F)
        check_rel "$c"
        if [ "$b" = "$FRAME_DEFAULT_MODE" ]; then
          copy_bytes "$a" "$dest/$c" || die "stream ended early, or cannot write $dest/$c"
        else
          # Any other mode (0600, 0755): created owner-only, so that the bytes of a 0600 file
          # are never readable by others, not even while they are written; then its own mode.
          umask 077
          copy_bytes "$a" "$dest/$c" || die "stream ended early, or cannot write $dest/$c"
          umask 022
          [ "$b" = 600 ] || chmod "$b" "$dest/$c" || die "cannot chmod $dest/$c"
        fi
        ;;
      T)
        check_rel "$c"
        case $a in '' | *[!0-9]*) die "malformed stream (text of \"$a\" lines)" ;; esac
        short=
        while [ "$a" -gt 0 ]; do
          IFS= read -r line || { short=1; break; }
          printf '%s\n' "$line"
          a=$((a - 1))
        done >"$dest/$c" || die "cannot write $dest/$c"
        [ -z "$short" ] || die "stream ended early"
        [ "$b" = "$FRAME_DEFAULT_MODE" ] || chmod "$b" "$dest/$c" || die "cannot chmod $dest/$c"
        ;;
      E | Z) unpack_end=$kind; return 0 ;;
      *) die "malformed stream (got \"$kind\")" ;;
    esac
  done
  die "stream ended early"
}

# Writes the tree under DIR (without its top-level log) to stdout in the stream format that
# `unpack` reads, ended by "Z". Each file is copied aside first, so one that changes while it
# is read cannot tear the stream. Directories and regular files only; names holding a newline
# are skipped.
pack_dir() {
  local src tmp nl rel
  src=$1 tmp=$2
  nl='
'
  if [ -d "$src" ]; then
    (cd "$src" && find . -mindepth 1 \( -path ./log -o -name "*$nl*" \) -prune -o -type d -print) | sed 's|^\./||' |
      while IFS= read -r rel; do
        printf 'D 0 %s %s\n' "$(file_mode "$src/$rel")" "$rel"
      done
    (cd "$src" && find . -mindepth 1 \( -path ./log -o -name "*$nl*" \) -prune -o -type f -print) | sed 's|^\./||' |
      while IFS= read -r rel; do
        # -P and the test: a file the service swapped for a link meanwhile is skipped, not
        # read through (root would ship whatever the link names).
        cp -P -- "$src/$rel" "$tmp" 2>/dev/null || continue
        if [ -L "$tmp" ]; then rm -f -- "$tmp"; continue; fi
        printf 'F %s %s %s\n' "$(($(wc -c <"$tmp")))" "$(file_mode "$src/$rel")" "$rel"
        cat -- "$tmp"
      done
    rm -f -- "$tmp"
  fi
  printf 'Z\n'
}
