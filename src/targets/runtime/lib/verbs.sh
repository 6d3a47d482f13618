# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- the items' verbs
#
# One function verb_NAME per verb of the protocol ("-" as "_"); main dispatches to them. The
# lock's verbs are in lib/lockverbs.sh, the generations' in lib/generations.sh.

# upload [HASH...]: see store_upload.
verb_upload() {
  local h
  for h; do check_token "$h"; done
  store_upload "$@"
  exit "$EXIT_OK"
}

# activate KEY...: see activate_items.
verb_activate() {
  local key
  [ $# -gt 0 ] || usage "usage: activate KEY..."
  for key; do check_token "$key"; done
  activate_items "$@"
}

verb_deactivate() {
  check_token "${1:?usage: deactivate KEY}"
  deactivate_item "$1"
}

# status: "generation N|none", "lock OWNER|none", and per active item "item KEY MODULE STATE
# PID ok|drift REASON". One round trip for the drift probe: it starts as few processes as it
# can (one awk for every port), since it runs on every machine every probe interval.
verb_status() {
  local gen holder keys d list key mod verdict
  getf gen "$ROOT/generations/current"
  printf 'generation %s\n' "${gen:-none}"
  getf holder "$ROOT/lock/owner"
  printf 'lock %s\n' "${holder:-none}"
  keys=
  for d in "$ROOT"/items/*; do
    [ -d "$d" ] && keys="$keys ${d##*/}"
  done
  list=$ROOT/state/.probe.$$
  listening=
  if [ -n "$keys" ] && [ -d "$ROOT/state" ]; then
    # shellcheck disable=SC2086 # checked tokens, one word each
    port_list "$list" $keys
    listening_keys "$list"
    rm -f "$list" "$list.hits"
  fi
  for key in $keys; do
    d=$ROOT/items/$key
    getf mod "$d/module"
    probe_state='present -' probe_drift=
    module_call probe "$mod" "$d" "$key"
    verdict=ok
    [ -z "$probe_drift" ] || verdict="drift $probe_drift"
    printf 'item %s %s %s %s\n' "$key" "$mod" "$probe_state" "$verdict"
  done
}

# claims: what the other deployments on this machine hold (list_others), for the controller
# to refuse a port or path one of them claims. Reads only.
verb_claims() { list_others; }

# claim: records the machine record this deployment's transition is making true (stdin,
# JSON), so that a transition of another deployment asking meanwhile sees what this one is
# about to hold; then answers as `claims` does. Sent once the lock is taken: of two
# transitions claiming the same thing at once, the later to announce sees the earlier.
# It holds the items' environment, like a generation record: readable by its owner only.
verb_claim() {
  (umask 077 && cat >"$ROOT/.claims.pending.tmp") || die "cannot record the claims"
  [ "$(tail -c 1 "$ROOT/.claims.pending.tmp")" = "}" ] || { rm -f "$ROOT/.claims.pending.tmp"; die "the claimed record arrived incomplete"; }
  mv -f "$ROOT/.claims.pending.tmp" "$ROOT/claims.pending" || die "cannot record the claims"
  list_others
}

# snapshot KEY, restore KEY: the state of an active item, to stdout or from stdin, by its module.
verb_snapshot() { item_state snapshot "$@"; }
verb_restore() { item_state restore "$@"; }

item_state() {
  local d mod
  check_token "${2:?usage: $1 KEY}"
  d=$(item_dir "$2")
  [ -d "$d" ] || die "$2 is not active on this machine"
  mod=$(field "$d" module)
  module_fn "$1" "$mod" || die "$2 ($mod) has no state to $1"
  "$mod_fn" "$d" "$2"
}
