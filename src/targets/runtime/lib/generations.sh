# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- generations

# commit GEN: records the generation record on stdin (JSON) as generation GEN and makes it
# current (the one before it becomes previous). Keeps the newest 10.
verb_commit() {
  local gen cur old
  gen=${1:?usage: commit GENERATION}
  case $gen in *[!0-9]*) usage "bad generation $gen" ;; esac
  [ -d "$ROOT/generations" ] || mkdir -p "$ROOT/generations" || die "cannot create $ROOT/generations"
  cat >"$ROOT/generations/.$gen.tmp" || die "cannot write generation"
  # A record cut short (the controller's connection dropped while sending it) is never made current.
  [ "$(tail -c 1 "$ROOT/generations/.$gen.tmp")" = "}" ] || { rm -f "$ROOT/generations/.$gen.tmp"; die "the generation record arrived incomplete"; }
  mv "$ROOT/generations/.$gen.tmp" "$ROOT/generations/$gen.json"
  getf cur "$ROOT/generations/current"
  if [ -n "$cur" ] && [ "$cur" != "$gen" ]; then
    printf '%s\n' "$cur" >"$ROOT/generations/.previous.tmp" && mv "$ROOT/generations/.previous.tmp" "$ROOT/generations/previous"
  fi
  printf '%s\n' "$gen" >"$ROOT/generations/.current.tmp" && mv "$ROOT/generations/.current.tmp" "$ROOT/generations/current"
  sync "$ROOT/generations/current" 2>/dev/null || true
  rm -f "$ROOT/claims.pending" # what it announced is recorded now
  # Keep the newest 10 generations.
  set -- "$ROOT"/generations/[0-9]*.json
  if [ $# -gt 10 ]; then
    # shellcheck disable=SC2010 # the names kept are digits and ".json"
    ls "$ROOT/generations" | grep -E '^[0-9]+\.json$' | sort -n | awk '{ l[NR] = $0 } END { for (i = 1; i <= NR - 10; i++) print l[i] }' | while IFS= read -r old; do rm -f "$ROOT/generations/$old"; done
  fi
}

# uncommit GEN: takes back `commit GEN` of a transition that was rolled back: when GEN is
# current, the generation before it (or none) is current again. Idempotent.
verb_uncommit() {
  local gen cur prev
  gen=${1:?usage: uncommit GENERATION}
  case $gen in *[!0-9]*) usage "bad generation $gen" ;; esac
  cur=$(cat "$ROOT/generations/current" 2>/dev/null)
  if [ "$cur" = "$gen" ]; then
    prev=$(cat "$ROOT/generations/previous" 2>/dev/null)
    if [ -n "$prev" ] && [ "$prev" != "$gen" ] && [ -f "$ROOT/generations/$prev.json" ]; then
      # shellcheck disable=SC2015 # die when either step fails
      printf '%s\n' "$prev" >"$ROOT/generations/.current.tmp" && mv "$ROOT/generations/.current.tmp" "$ROOT/generations/current" || die "cannot make generation $prev current again"
    else
      rm -f "$ROOT/generations/current" || die "cannot remove $ROOT/generations/current"
    fi
    sync "$ROOT/generations" 2>/dev/null || true
  fi
  [ "$(cat "$ROOT/generations/current" 2>/dev/null)" = "$gen" ] || rm -f "$ROOT/generations/$gen.json"
  rm -f "$ROOT/claims.pending"
}

# manifest [GEN]: the record of generation GEN (default: the current one), or nothing.
verb_manifest() {
  local gen
  gen=${1:-$(cat "$ROOT/generations/current" 2>/dev/null)}
  [ -n "$gen" ] || exit "$EXIT_OK"
  case $gen in *[!0-9]*) usage "bad generation $gen" ;; esac
  cat "$ROOT/generations/$gen.json"
}
