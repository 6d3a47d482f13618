# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- items and their modules
#
# Every module type (MODULE_TYPES, from the protocol) is a file modules/TYPE.sh that sets
# MODULE_<type> to the verbs it implements and defines <type>_<verb> for each ("-" in a type
# as "_"). module_fn is the one place that maps a type to its functions. The verbs:
#   activate D KEY      make the item in D (ROOT/items/KEY) true; dies when it cannot (run in
#                       a subshell, stderr to the item's reason)
#   activate_all KEY... instead of activate: all items of the type at once; sets not_ready
#   undo D KEY          after a failed activate: remove what it did
#   deactivate D KEY    take the item back (its spec directory is removed afterwards)
#   probe D KEY         set probe_drift (why it differs from what was activated) and, if not
#                       "present -", probe_state; `listening` (listening_keys) is set
#   snapshot D KEY      its state to stdout
#   restore D KEY       its state from stdin

# Sets mod_fn to the function of verb $1 of module type $2; returns 1 when the type is not
# one or has no such verb.
module_fn() {
  local verbs
  mod_fn=
  case " $MODULE_TYPES " in *" $2 "*) ;; *) return 1 ;; esac
  fn_name_of "$2"
  eval "verbs=\${MODULE_$fn_name:-}"
  case " $verbs " in *" $1 "*) mod_fn=${fn_name}_$1 ;; *) return 1 ;; esac
}

# module_call VERB TYPE ARG...: runs verb VERB of module type TYPE; 127 when it has none.
module_call() {
  module_fn "$1" "$2" || return 127
  shift 2
  "$mod_fn" "$@"
}

deactivate_item() {
  local d mod
  d=$ROOT/items/$1
  [ -d "$d" ] || return 0
  getf mod "$d/module"
  module_call deactivate "$mod" "$d" "$1"
  rm -rf "$d"
}

# Activates the items KEYS, whose specs come on stdin (one tree per key, in order, each ended
# by "E", then "Z"): every spec is read before any item changes; each key's old activation
# is undone and the new one made; items of a type that activates together (processes) are
# started together and waited for together. Prints per key "ok KEY", or "failed KEY BYTES"
# and BYTES of reason (framed by length: the reason may hold any output of a service); a
# failed item is left inactive. Exit 0 when every item is ok, else 1.
activate_items() {
  local stage key z failed e d mod together type keys entry
  [ -d "$ROOT/items" ] && [ -d "$ROOT/state" ] || mkdir -p "$ROOT/items" "$ROOT/state" || die "cannot create $ROOT/items"
  # Specs are staged in one directory (one mkdir, one mv for the lot: processes are what a
  # machine has least of when many items start at once).
  stage=$ROOT/items/.new.$$
  [ ! -e "$stage" ] || rm -rf "$stage"
  mkdirs_under "$stage" "$@" || die "cannot create $stage"
  for key; do
    unpack "$stage/$key"
    [ "$unpack_end" = E ] || { rm -rf "$stage"; die "the activate stream holds fewer specs than keys"; }
  done
  IFS= read -r z || z=
  [ "$z" = Z ] || { rm -rf "$stage"; die "malformed activate stream (no end after the last spec)"; }
  failed=
  for key; do
    e=$ROOT/items/.err.$key
    : >"$e"
    if [ -d "$ROOT/items/$key" ] && ! (deactivate_item "$key") 2>>"$e"; then
      rm -rf "${stage:?}/$key"
      failed="$failed $key"
    fi
  done
  mv -- "$stage"/* "$ROOT/items/" 2>/dev/null
  rmdir "$stage" 2>/dev/null || rm -rf "$stage"
  together=
  for key; do
    d=$ROOT/items/$key
    e=$ROOT/items/.err.$key
    case "$failed " in *" $key "*) continue ;; esac
    [ -d "$d" ] || { printf 'cannot install %s\n' "$d" >>"$e"; failed="$failed $key"; continue; }
    getf mod "$d/module"
    if module_fn activate_all "$mod"; then
      together="$together $mod/$key"
      continue
    fi
    if module_fn activate "$mod"; then
      ("$mod_fn" "$d" "$key") 2>>"$e" && continue
      (module_call undo "$mod" "$d" "$key") 2>/dev/null
    else
      printf 'unknown module "%s"\n' "$mod" >>"$e"
    fi
    rm -rf "$d"
    failed="$failed $key"
  done
  for type in $MODULE_TYPES; do
    keys=
    for entry in $together; do
      [ "${entry%/*}" != "$type" ] || keys="$keys ${entry#*/}"
    done
    [ -n "$keys" ] || continue
    # shellcheck disable=SC2086 # checked tokens, one word each
    module_call activate_all "$type" $keys
    failed="$failed$not_ready"
  done
  for key; do
    case "$failed " in
      *" $key "*)
        e=$ROOT/items/.err.$key
        printf 'strata-runtime: activation of %s failed\n' "$key" >>"$e"
        printf 'failed %s %s\n' "$key" "$(($(wc -c <"$e")))"
        cat "$e"
        ;;
      *) printf 'ok %s\n' "$key" ;;
    esac
  done
  rm -f "$ROOT"/items/.err.*
  [ -z "$failed" ]
}
