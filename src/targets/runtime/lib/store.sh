# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- artifact store

# Reads the artifact stream on stdin ("A HASH" + tree + "E" per artifact, then "Z") into the
# store. Every artifact is unpacked in one staging directory (the HASHes named get their
# directories from one mkdir), and all of them enter the store with one mv once the stream is
# complete: an interrupted upload stores nothing. Artifacts the store has already are dropped.
# store_stage (the staging directory) is global: the exit registry's cleanup removes it.
store_upload() {
  local kind h rest complete
  # Artifacts keep the modes they have in the repository; the store's directories stay 0755.
  umask 022
  [ -d "$ROOT/store" ] || mkdir -p "$ROOT/store" || die "cannot create $ROOT/store"
  store_stage=$ROOT/store/.tmp.$$
  [ ! -e "$store_stage" ] || rm -rf "$store_stage"
  mkdirs_under "$store_stage" "$@" || die "cannot create $store_stage"
  # shellcheck disable=SC2016 # expanded when it runs, at exit
  on_exit_add 'rm -rf -- "$store_stage"'
  complete=
  while IFS=' ' read -r kind h rest; do
    case $kind in
      A)
        check_token "$h"
        [ -d "$store_stage/$h" ] || mkdir "$store_stage/$h" || die "cannot create $store_stage/$h"
        unpack "$store_stage/$h"
        [ ! -d "$ROOT/store/$h" ] || rm -rf "${store_stage:?}/$h"
        ;;
      Z) complete=1; break ;;
      *) die "malformed upload stream" ;;
    esac
  done
  [ -n "$complete" ] || die "upload stream ended early"
  for h in "$store_stage"/*; do
    [ -d "$h" ] || continue
    mv -- "$store_stage"/* "$ROOT/store/" || die "cannot move the upload into $ROOT/store"
    break
  done
}

