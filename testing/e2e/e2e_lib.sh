# shellcheck shell=bash
# What the end-to-end tests share (source it with $root set to the repository
# or runfiles root), then call mnedc_e2e_start.
source "$root/testing/netns/topology.sh"
source "$root/testing/netns/helpers.sh"
source "$root/testing/netns/pki.sh"
MNEDC_SERVER_BIN=$root/mnedc/cli/server
MNEDC_CLIENT_BIN=$root/mnedc/cli/client

passed=0
failed=0
check() {  # check NAME CMD...: runs CMD, prints ok/FAIL, counts.
  local name=$1; shift
  if "$@"; then echo "ok   $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}
cannot() { ! "$@"; }
ns() { echo "$P$1"; }
on() { local role=$1; shift; ip netns exec "$P$role" "$@"; }
ping_ok() { on "$1" ping -c 2 -i 0.2 -W 2 "${@:2}" >/dev/null 2>&1; }
port_open() { on "$1" nc -z -w 2 "$2" "$3" >/dev/null 2>&1; }
stop_client() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# transfer_ok FROM_ROLE TO_ROLE TO_ADDRESS [BYTES]: BYTES (10 MB by default)
# over TCP, sha256 compared.
transfer_ok() {
  head -c "${4:-10000000}" /dev/urandom >"$work/payload"
  on "$2" nc -l 5001 >"$work/received" &
  local listener=$!
  sleep 0.3
  on "$1" timeout 120 nc -N "$3" 5001 <"$work/payload" && wait "$listener" &&
    [[ $(sha256sum <"$work/payload") == $(sha256sum <"$work/received") ]]
}

# ping_back_after START FROM_ROLE ADDRESS: pings every 0.1 s (for at most 10 s)
# until one gets through; prints the seconds since START (date +%s.%N), or never.
ping_back_after() {
  local start=$1 from=$2 address=$3
  for _ in $(seq 100); do
    if on "$from" ping -c 1 -W 0.2 "$address" >/dev/null 2>&1; then
      awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'
      return 0
    fi
    sleep 0.1
  done
  echo never
}
within() { [[ $1 != never ]] && awk -v s="$1" -v limit="$2" 'BEGIN {exit !(s <= limit)}'; }

# Prints the logs when something failed, then the closing line; returns the verdict.
finish() {
  if ((failed > 0)); then for f in "$work"/*.log; do echo "--- $f"; tail -30 "$f"; done; fi
  echo "$passed passed, $failed failed"
  ((failed == 0))
}

# mnedc_e2e_start NAME PREFIX [REASON]: skips (exit 0, saying why) when the
# test network cannot be built here or REASON is not empty; otherwise sets P
# (namespace prefix) and work (a temp dir others may enter), tears both down
# on exit, and builds the two-level NAT network.
mnedc_e2e_start() {
  local name=$1 prefix=$2 why=${3:-}
  [[ -z $why ]] && why=$(mnedc_net_unavailable)
  if [[ -n $why ]]; then
    echo "SKIPPED: $name $why"
    exit 0
  fi
  P=$prefix$$-
  work=$(mktemp -d)
  chmod 755 "$work"  # Unprivileged checks must reach the sockets inside.
  trap 'mnedc_net_down "$P"; rm -rf "$work"' EXIT
  trap 'exit 130' INT TERM
  mnedc_net_up "$P" || { echo "FAIL could not build the test network"; exit 1; }
}
