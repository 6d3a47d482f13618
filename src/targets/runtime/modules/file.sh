# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- module: file
#
# The files of an artifact placed under `path` (under one of `allowed`), by the checked walk
# (lib/paths.sh). fa_target, fa_top, fa_name and fa_stage are shared by file_activate,
# file_deactivate and their helpers fa_walk and fa_final_ok (the file module's prefix).
# shellcheck disable=SC2034 # read by module_fn (lib/items.sh)
MODULE_file='activate undo deactivate probe'

# Places the artifact's files under the item's path. Runs in a subshell (it changes the
# directory and registers an exit cleanup). Every file's path is checked first ("check": no symbolic
# link or non-directory on the way, none at the file itself), so a refusal writes nothing;
# then each file is copied into a private staging directory made in the target and renamed
# over its place from within its checked directory (`mv -T` replaces a link that appeared
# meanwhile instead of following it). Files keep the artifact's modes (`cp -p`); directories
# made for them get 0755. `placed` lists what was actually placed, so undoing a failed
# activation removes nothing it did not write.
file_activate() {
  local d fa_src fa_n fa_rel rel
  d=$1
  fa_target=$(field "$d" path)
  fa_src=$ROOT/store/$(field "$d" artifact)
  [ -d "$fa_src" ] || die "artifact is not in the store"
  wr_root_of "$fa_target" "$d/allowed"
  (cd "$fa_src" && find . -type f) | sed 's|^\./||' >"$d/tree" || die "cannot list the artifact"
  : >"$d/placed"
  umask 022
  wr_enter "$fa_target" check
  if [ -n "$wr_reached" ]; then
    fa_top=$wr_at
    while IFS= read -r fa_rel; do
      fa_walk "$fa_rel" check
      [ -z "$fa_name" ] || fa_final_ok
    done <"$d/tree"
  fi
  wr_enter "$fa_target" create
  fa_top=$wr_at
  fa_stage=$fa_top/.strata-new.$$
  rm -rf -- "$fa_stage"
  mkdir -m 700 -- "$fa_stage" || die "cannot create $fa_stage"
  on_exit_reset
  # shellcheck disable=SC2016 # expanded when it runs, at exit
  on_exit_add 'rm -rf -- "$fa_stage"'
  fa_n=0
  while IFS= read -r fa_rel; do
    fa_walk "$fa_rel" create
    fa_final_ok
    fa_n=$((fa_n + 1))
    cp -p -- "$fa_src/$fa_rel" "$fa_stage/$fa_n" || die "cannot copy $fa_target/$fa_rel"
    wr_still_here
    mv -fT -- "$fa_stage/$fa_n" "./$fa_name" 2>/dev/null ||
      { fa_final_ok && mv -f -- "$fa_stage/$fa_n" "./$fa_name"; } || die "cannot place $fa_target/$fa_rel"
    printf '%s\n' "$fa_rel" >>"$d/placed"
  done <"$d/tree"
  cd / && rm -rf -- "$fa_stage"
  # shellcheck disable=SC2016 # the action as it was registered
  on_exit_remove 'rm -rf -- "$fa_stage"'
  umask 077
  # Checksums of what was placed, so `status` can tell a file someone changed.
  (cd "$fa_target" && while IFS= read -r rel; do sha256_line "$rel"; done <"$d/placed") >"$d/sums" || die "cannot checksum $fa_target"
}

# Stands in the directory of file $1 (relative to the item's path fa_target, whose physical
# path fa_top is) and sets fa_name to its last component; $2 is the mode, as for wr_enter.
# "check" empties fa_name when a directory on the way does not exist yet; "remove" returns 1
# when the file is not to be removed (its directory is missing or reached through a link).
fa_walk() {
  wr_p=$fa_target/$1 wr_mode=$2
  cd -P -- "$fa_top" 2>/dev/null && [ "$PWD" = "$fa_top" ] || wr_refuse "$fa_target changed while it was written" || return 1
  wr_at=$fa_top wr_at_lex=$fa_target fa_name=$1
  while :; do
    case $fa_name in
      */*) wr_c=${fa_name%%/*} fa_name=${fa_name#*/} ;;
      *) return 0 ;;
    esac
    wr_step "$wr_c" || return 1
    if [ -z "$wr_c" ]; then fa_name=; return 0; fi
  done
}

# The file's own place (fa_name in the current directory) may be missing or a regular file;
# a symbolic link or a directory there is refused.
fa_final_ok() {
  if [ -L "./$fa_name" ]; then
    wr_refuse "${wr_at_lex%/}/$fa_name is a symbolic link (strata follows none below an allowed path)"
  elif [ -d "./$fa_name" ]; then
    wr_refuse "${wr_at_lex%/}/$fa_name is a directory"
  fi
}

# Removes the files the item placed, each from within its checked directory: a link found at
# a file's place is removed itself (rm never follows it); a file whose directory is gone, or
# now reached only through a link, is left alone (said on stderr).
file_deactivate() {
  local d fa_rel
  d=$1
  fa_target=$(field "$d" path)
  wr_root_of "$fa_target" "$d/allowed"
  [ -f "$d/placed" ] || return 0
  wr_enter "$fa_target" remove || { cd /; return 0; }
  fa_top=$wr_at
  while IFS= read -r fa_rel; do
    fa_walk "$fa_rel" remove || continue
    if [ -d "./$fa_name" ] && [ ! -L "./$fa_name" ]; then continue; fi
    wr_still_here || continue
    rm -f -- "./$fa_name"
  done <"$d/placed"
  cd /
}


# A failed activation removes what it placed (and nothing it did not write).
file_undo() { file_deactivate "$1"; }

# Why the placed files differ from what was activated: the first one missing or changed.
file_probe() {
  local target bad
  target=$(field "$1" path)
  [ -d "$target" ] || { probe_drift="directory $target is missing"; return 0; }
  [ -f "$1/sums" ] || return 0
  bad=$(cd "$target" && sums_check "$1/sums")
  case $bad in
    'missing '*) probe_drift="file $target/${bad#missing } is missing" ;;
    'changed '*) probe_drift="file $target/${bad#changed } was changed" ;;
  esac
}
