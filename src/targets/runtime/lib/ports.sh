# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- ports
#
# Readiness and "port in use" of process items (their spec's ready_port and bind).

# Writes "KEY BIND PORT" to FILE for each item among KEYS that is ready when its port listens.
port_list() {
  local out k p b
  out=$1
  shift
  : >"$out"
  for k; do
    getf p "$ROOT/items/$k/ready_port"
    [ -n "$p" ] || continue
    getf b "$ROOT/items/$k/bind"
    printf '%s %s %s\n' "$k" "$b" "$p" >>"$out"
  done
}

# Sets `listening` to " KEY KEY ... " of the entries of LIST (from port_list) that something
# listens on, at their address or any address, per /proc/net, or on a machine without it per
# ss or netstat in the same form (platform.sh, on stdin: "-"): one awk for all of them, since
# readiness is polled.
listening_keys() {
  local hits k prog
  listening=
  [ -s "$1" ] || return 0
  hits=$1.hits
  # shellcheck disable=SC2016 # awk's program
  prog='
    FILENAME == ARGV[1] {
      p = sprintf(":%04X", $3)
      n++
      key[n] = $1
      port[n] = p
      addr[n] = (split($2, o, ".") == 4) ? sprintf("%02X%02X%02X%02X", o[4], o[3], o[2], o[1]) p : ""
      next
    }
    $4 == "0A" {
      for (i = 1; i <= n; i++)
        if (!(i in hit) && ($2 == addr[i] || $2 == "00000000" port[i] || $2 == "00000000000000000000000000000000" port[i] || (addr[i] == "" && substr($2, length($2) - 4) == port[i]))) {
          hit[i] = 1
          print key[i]
        }
    }'
  if [ "$STRATA_PORTS" = proc ]; then
    set -- "$1" /proc/net/tcp
    [ -r /proc/net/tcp6 ] && set -- "$@" /proc/net/tcp6
    awk "$prog" "$@" >"$hits" 2>/dev/null
  else
    listening_sockets | awk "$prog" "$1" - >"$hits" 2>/dev/null
  fi
  while IFS= read -r k; do listening="$listening $k "; done <"$hits"
}

