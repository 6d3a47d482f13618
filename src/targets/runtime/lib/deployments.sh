# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- deployments

# Several deployments may share a machine; each owns SHARED/deployments/NAME (ROOT) and never
# reads or touches another's. ROOT/store is a symlink to the shared, content-addressed store
# (SHARED/store): an artifact two deployments use is stored once. Sets DEPLOYMENT and SHARED.
deployment_layout() {
  case $ROOT in
    /*/deployments/* | /deployments/*) ;;
    *) usage "not a deployment directory (SHARED/deployments/NAME): $ROOT" ;;
  esac
  DEPLOYMENT=${ROOT##*/}
  SHARED=${ROOT%/deployments/*}
  case $DEPLOYMENT in
    '' | [!A-Za-z]* | *[!A-Za-z0-9_-]*) usage "unsafe deployment name: $DEPLOYMENT" ;;
  esac
  [ "$SHARED/deployments/$DEPLOYMENT" = "$ROOT" ] || usage "not a deployment directory (SHARED/deployments/NAME): $ROOT"
}

# The deployment whose generation an earlier strata recorded in the single layout it used
# (SHARED/items, SHARED/generations, ...; one deployment per machine), or nothing.
legacy_owner() {
  local _lg
  [ -d "$SHARED/generations" ] && [ ! -L "$SHARED/generations" ] || return 0
  getf _lg "$SHARED/generations/current"
  case $_lg in '' | *[!0-9]*) return 0 ;; esac
  sed -n '1s/^{"deployment":"\([A-Za-z][A-Za-z0-9_-]*\)".*/\1/p' "$SHARED/generations/$_lg.json" 2>/dev/null
}

# Moves the single layout of an earlier strata into ROOT when its recorded generation is this
# deployment's: the generations and lock, and the items that generation lists with their state
# (other items there were left by another deployment the old layout let overwrite this one's
# record; they stay where they are). Each part moves with one rename into a staging directory
# that becomes ROOT last, so an interrupted migration is finished by the next command. A
# process keeps running: its STATE_DIR (SHARED/state/KEY) becomes a symlink to its new place.
legacy_migrate() {
  local _mg _lg _keys _k _p
  _mg=$SHARED/deployments/.migrate.$DEPLOYMENT
  if [ ! -d "$_mg" ]; then
    [ "$(legacy_owner)" = "$DEPLOYMENT" ] || return 0
    mkdir -p "$_mg/items" "$_mg/state" || die "cannot create $_mg"
    getf _lg "$SHARED/generations/current"
    _keys=$(grep -o '"key":"[A-Za-z0-9._-]*"' "$SHARED/generations/$_lg.json" | sed 's/^"key":"//; s/"$//')
    # shellcheck disable=SC2086 # checked tokens, one a line
    printf '%s\n' $_keys >"$_mg/.keys"
  fi
  while IFS= read -r _k; do
    [ -n "$_k" ] || continue
    check_token "$_k"
    if [ -d "$SHARED/items/$_k" ]; then mv "$SHARED/items/$_k" "$_mg/items/$_k" || die "cannot move $SHARED/items/$_k into $ROOT"; fi
    if [ -d "$SHARED/state/$_k" ] && [ ! -L "$SHARED/state/$_k" ]; then
      # shellcheck disable=SC2015 # die when either step fails
      mv "$SHARED/state/$_k" "$_mg/state/$_k" && ln -s "../deployments/$DEPLOYMENT/state/$_k" "$SHARED/state/$_k" || die "cannot move $SHARED/state/$_k into $ROOT"
    fi
  done <"$_mg/.keys"
  for _p in generations lock; do
    if [ -d "$SHARED/$_p" ] && [ ! -L "$SHARED/$_p" ]; then mv "$SHARED/$_p" "$_mg/$_p" || die "cannot move $SHARED/$_p into $ROOT"; fi
  done
  rm -f "$_mg/.keys"
  mv "$_mg" "$ROOT" || die "cannot move the records of $DEPLOYMENT into $ROOT"
  printf 'strata-runtime: moved the records of deployment %s from %s into %s\n' "$DEPLOYMENT" "$SHARED" "$ROOT" >&2
}

# Before a verb that changes anything: ROOT exists (the old single layout moved into it if it
# was this deployment's) and reaches the shared store.
deployment_prepare() {
  if [ ! -d "$ROOT" ]; then
    legacy_migrate
    mkdir -p "$ROOT" || die "cannot create $ROOT"
  fi
  [ -d "$SHARED/store" ] || mkdir -p "$SHARED/store" || die "cannot create $SHARED/store"
  [ -L "$ROOT/store" ] || [ -d "$ROOT/store" ] || ln -s ../../store "$ROOT/store" || die "cannot link $ROOT/store"
}

# Before a verb that only reads: a deployment still in the old single layout is read there
# (it moves on its first change); a new one reads its empty ROOT without creating it.
deployment_view() {
  [ ! -d "$ROOT" ] || return 0
  [ -d "$SHARED/deployments/.migrate.$DEPLOYMENT" ] && deployment_prepare && return 0
  [ "$(legacy_owner)" != "$DEPLOYMENT" ] || ROOT=$SHARED
}

# Prints "record NAME BYTES" and BYTES of JSON: deployment NAME's current generation record in
# directory $2, when it has one.
print_record() {
  local _rg
  getf _rg "$2/generations/current"
  case $_rg in '' | *[!0-9]*) return 0 ;; esac
  [ -f "$2/generations/$_rg.json" ] || return 0
  printf 'record %s %s\n' "$1" "$(($(wc -c <"$2/generations/$_rg.json")))"
  cat "$2/generations/$_rg.json"
}

# Prints "pending NAME BYTES" and BYTES of JSON: the record deployment NAME (directory $2) is
# making true on this machine, announced by `claim`, while its transition holds its lock.
print_pending() {
  [ -d "$2/lock" ] && [ -f "$2/claims.pending" ] || return 0
  printf 'pending %s %s\n' "$1" "$(($(wc -c <"$2/claims.pending")))"
  cat "$2/claims.pending"
}

# What every other deployment on this machine holds or is about to: its current record and,
# while a transition of it runs, the record it announced; an earlier strata's single layout
# too while it is another deployment's. Reads only.
list_others() {
  local _dd _n _lo
  for _dd in "$SHARED"/deployments/*; do
    [ -d "$_dd" ] || continue
    _n=${_dd##*/}
    case $_n in '' | [!A-Za-z]* | *[!A-Za-z0-9_-]*) continue ;; esac
    [ "$_n" != "$DEPLOYMENT" ] || continue
    print_record "$_n" "$_dd"
    print_pending "$_n" "$_dd"
  done
  _lo=$(legacy_owner)
  [ -z "$_lo" ] || [ "$_lo" = "$DEPLOYMENT" ] || print_record "$_lo" "$SHARED"
}

