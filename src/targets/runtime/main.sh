# shellcheck shell=sh disable=SC3043 # `local`: dash, BusyBox ash and bash have it (docs/runtime.md)
# ---------------------------------------------------------------- main
#
# Run as: sh SHARED/runtime/HASH.sh SHARED/deployments/NAME VERB [ARG...]. ROOT (the first
# argument) is one deployment's directory; VERB is one of the protocol's VERBS. The only part
# of the runtime that runs anything: the files before it define functions (and constants).
# UPPERCASE names are the runtime's globals, set here or by the protocol's header.
main() {
  set -u
  # The runtime's own records (specs with environments, generations, state, locks) are private:
  # 0600 files in 0700 directories. What is deployed for services (the store, placed files and
  # directories, the processes and scripts themselves) gets umask 022 where it is made.
  umask 077
  unset CDPATH
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
  export PATH
  platform_load "$0"
  ROOT=${1:?usage: runtime.sh ROOT VERB [ARG...]}
  VERB=${2:?usage: runtime.sh ROOT VERB [ARG...]}
  shift 2
  case $VERB in
    *[!a-z-]*) usage "unknown verb $VERB" ;;
  esac
  case " $VERBS " in
    *" $VERB "*) ;;
    *) usage "unknown verb $VERB" ;;
  esac
  deployment_layout
  case " $VERBS_VIEW " in
    *" $VERB "*) deployment_view ;;
    *) deployment_prepare ;;
  esac
  private_records
  fn_name_of "verb_$VERB"
  "$fn_name" "$@"
}

main "$@"
