# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- first contact
#
# What this machine offers (docs/runtime.md, "Platforms"). Run by the install command before
# the runtime is written (src/targets/runtime/install.ts), once per runtime version: the
# choices are kept beside the runtime as HASH.env, which the runtime sources (platform.sh).
# Prints the choices as shell assignments (fixed words only) and returns 0, or prints
# "missing NAME" for every command the runtime cannot do without and returns 1.

# The commands the runtime runs that have no alternative below.
DETECT_REQUIRED='awk cat chmod cp date dd find grep head kill ln ls mkdir mv rm rmdir sed sleep sort tail tee tr wc'

detect_has() { command -v "$1" >/dev/null 2>&1; }

# Sets detect_found to the first of the candidate commands $1... present ('' when none is),
# without a subshell: first contact is on the first deployment's path.
detect_first() {
  local c
  detect_found=
  for c in "$@"; do
    if detect_has "$c"; then detect_found=$c; return 0; fi
  done
}

detect_platform() {
  local _dp_missing _dp_c _dp_sha _dp_stat _dp_ports _dp_read _dp_session _dp_procs
  _dp_missing=
  for _dp_c in $DETECT_REQUIRED; do
    detect_has "$_dp_c" || _dp_missing="$_dp_missing $_dp_c"
  done
  detect_first sha256sum shasum sha256 openssl
  _dp_sha=$detect_found
  [ -n "$_dp_sha" ] || _dp_missing="$_dp_missing sha256sum|shasum|sha256|openssl"
  if stat -c %a / >/dev/null 2>&1; then
    _dp_stat=gnu
  elif stat -f %Lp / >/dev/null 2>&1; then
    _dp_stat=bsd
  else
    _dp_missing="$_dp_missing stat(-c|-f)"
  fi
  # Port readiness and "port in use": the kernel's table where there is one, else a tool.
  if [ -r /proc/net/tcp ]; then
    _dp_ports=proc
  else
    detect_first ss netstat
    _dp_ports=$detect_found
    [ -n "$_dp_ports" ] || _dp_missing="$_dp_missing /proc/net/tcp|ss|netstat"
  fi
  # A service's own session: setsid(1), else perl's POSIX::setsid (platform.sh).
  if detect_has setsid; then
    _dp_session=setsid
  elif detect_has perl; then
    _dp_session=perl
  else
    _dp_missing="$_dp_missing setsid|perl"
  fi
  if [ -n "$_dp_missing" ]; then
    for _dp_c in $_dp_missing; do printf 'missing %s\n' "$_dp_c"; done
    return 1
  fi
  # `head -c N` stops at N bytes on a pipe (GNU) or reads ahead (BusyBox, BSD): the runtime
  # then counts bytes with dd reads of at most what is still due.
  if [ "$(printf abcdef | { head -c 2 >/dev/null; cat; })" = cdef ]; then _dp_read='head'; else _dp_read='dd'; fi
  if [ -r /proc/self/stat ]; then _dp_procs='proc'; else _dp_procs='ps'; fi
  printf 'STRATA_SHA256=%s\nSTRATA_STAT=%s\nSTRATA_PORTS=%s\nSTRATA_READ=%s\nSTRATA_SESSION=%s\nSTRATA_PROCS=%s\n' \
    "$_dp_sha" "$_dp_stat" "$_dp_ports" "$_dp_read" "$_dp_session" "$_dp_procs"
}

# Copies exactly $1 bytes of stdin to the end of file $2, never reading past them: one dd read
# at a time of at most the bytes still due (a short read from a pipe just loops). Returns 1
# when the input ends first.
read_exact() {
  local _re_left _re_bs _re_got
  _re_left=$1
  while [ "$_re_left" -gt 0 ]; do
    _re_bs=$_re_left
    [ "$_re_bs" -le 65536 ] || _re_bs=65536
    _re_got=$(($(dd bs="$_re_bs" count=1 2>/dev/null | tee -a "$2" | wc -c)))
    [ "$_re_got" -gt 0 ] || return 1
    _re_left=$((_re_left - _re_got))
  done
}
