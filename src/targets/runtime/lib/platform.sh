# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- platforms
#
# The constructs that differ between GNU, BusyBox and the BSDs (docs/runtime.md, "Platforms"),
# each behind one function that takes the variant first contact chose (detect.sh):
# STRATA_READ, STRATA_SHA256, STRATA_STAT, STRATA_PORTS, STRATA_SESSION, STRATA_PROCS.

# Loads the choices kept beside the runtime $1 (HASH.env, written when it was installed); a
# runtime without them (its file was removed) asks the machine again.
platform_load() {
  local env choices
  env=${1%.sh}.env
  if [ -r "$env" ]; then
    # shellcheck source=/dev/null # written by the install command: fixed words only
    . "$env"
  else
    choices=$(detect_platform) || die "this machine cannot run the strata runtime: $(printf '%s' "$choices" | tr '\n' ' ')"
    eval "$choices"
  fi
}

# Writes exactly $1 bytes of stdin to file $2 (made with the caller's umask) and no more: the
# rest of stdin is the next entry of the stream.
copy_bytes() {
  if [ "$STRATA_READ" = head ]; then
    head -c "$1" >"$2"
  else
    : >"$2" && read_exact "$1" "$2"
  fi
}

# The permission bits of $1 in octal (`644`), and its modification time in seconds.
file_mode() {
  if [ "$STRATA_STAT" = bsd ]; then stat -f %Lp -- "$1"; else stat -c %a -- "$1"; fi
}
file_mtime() {
  if [ "$STRATA_STAT" = bsd ]; then stat -f %m -- "$1"; else stat -c %Y -- "$1"; fi
}

# Prints "HASH  PATH" (sha256sum's format) for file $1.
sha256_line() {
  local h
  case $STRATA_SHA256 in
    sha256sum) sha256sum -- "$1" ;;
    shasum) shasum -a 256 -- "$1" ;;
    sha256) h=$(sha256 -q "./$1") && printf '%s  %s\n' "$h" "$1" ;;
    *) h=$(openssl dgst -sha256 -r "./$1") && printf '%s  %s\n' "${h%% *}" "$1" ;;
  esac
}

# Checks the files listed in SUMS $1 ("HASH  PATH" lines, paths relative to the current
# directory): prints "missing PATH" or "changed PATH" for the first that is not as listed.
sums_check() {
  local line h p bad
  while IFS= read -r line; do
    p=${line#*  }
    [ -f "$p" ] || { printf 'missing %s\n' "$p"; return 0; }
  done <"$1"
  case $STRATA_SHA256 in
    sha256sum | shasum)
      # One process for all of them: the probe is polled.
      if [ "$STRATA_SHA256" = shasum ]; then set -- shasum -a 256 -c -- "$1"; else set -- sha256sum -c -- "$1"; fi
      bad=$(LC_ALL=C "$@" 2>/dev/null | grep -v ': OK$' | head -n 1)
      [ -z "$bad" ] || printf 'changed %s\n' "${bad%: *}"
      ;;
    *)
      while IFS= read -r line; do
        h=${line%%  *} p=${line#*  }
        bad=$(sha256_line "$p")
        [ "${bad%% *}" = "$h" ] || { printf 'changed %s\n' "$p"; return 0; }
      done <"$1"
      ;;
  esac
}

# A service runs in a session of its own (so that its process group can be signalled as one):
# by setsid, else by perl's POSIX::setsid, the program below (macOS has no setsid(1), and
# `set -m` needs a terminal, which an SSH command has not). process.sh starts it.
# shellcheck disable=SC2016 # perl's variables, not the shell's
SESSION_PERL='use POSIX (); POSIX::setsid(); exec @ARGV or die "cannot run $ARGV[0]: $!\n"'

# UTC time of epoch seconds $1 as YYYY-MM-DDTHH:MM:SSZ by GNU's or BusyBox's `date -d`, or
# BSD's `date -r`; the seconds themselves where neither works. Only for messages, so it is
# not worth a question at first contact.
iso_time() {
  date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$1" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || printf '%s' "$1"
}

# Prints the listening TCP sockets as /proc/net/tcp has them ("SL LOCAL REMOTE 0A", LOCAL
# as hex address:port, 00000000 for any address, X for an IPv6 one), from ss or netstat: for a
# machine without /proc/net/tcp (ports.sh reads either).
listening_sockets() {
  # Linux netstat: "tcp 0 0 127.0.0.1:5000 0.0.0.0:* LISTEN"; BSD: "tcp4 0 0 127.0.0.1.5000 *.* LISTEN";
  # ss -Hltn: "LISTEN 0 511 127.0.0.1:5000 0.0.0.0:*". The local address is the 4th field of each.
  if [ "$STRATA_PORTS" = ss ]; then ss -Hltn; else netstat -an | awk '$1 ~ /^tcp/ && $NF == "LISTEN"'; fi 2>/dev/null | awk '
    {
      a = $4
      if (a ~ /:[0-9]+$/) { i = match(a, /:[0-9]+$/) } else { i = match(a, /\.[0-9]+$/) }
      if (i == 0) next
      port = substr(a, i + 1) + 0
      host = substr(a, 1, i - 1)
      gsub(/[][]/, "", host)
      if (host == "*" || host == "0.0.0.0" || host == "::" || host == "") h = "00000000"
      else if (split(host, o, ".") == 4) h = sprintf("%02X%02X%02X%02X", o[4], o[3], o[2], o[1])
      else h = "X"
      printf "0: %s:%04X 00000000:0000 0A\n", h, port
    }'
}

# runtime_busy (lockverbs.sh) for a machine without /proc: "PID VERB" of another runtime
# process running a verb of VERBS_BUSY on this ROOT, per `ps` ("sh RUNTIME ROOT VERB ...").
runtime_busy_ps() {
  ps -A -o pid= -o args= 2>/dev/null | awk -v self="$$" -v rt="$SHARED/runtime/" -v root="$ROOT" -v busy=" $VERBS_BUSY " '
    $1 != self && index($3, rt) == 1 && $4 == root && $5 != "" && index(busy, " " $5 " ") { print $1, $5; found = 1; exit }
    END { exit !found }'
}
