# shellcheck shell=bash
# Starting mnedc inside the test network, shared by the end-to-end tests, the
# demo and the benchmark (source after topology.sh).

# mnedc_start_server PREFIX LOG [flags...]: relay in the relay namespace (or
# $MNEDC_SERVER_ROLE's); sets MNEDC_SERVER_PID.
mnedc_start_server() {
  local p=$1 log=$2; shift 2
  local before
  before=$(grep -c "listening on" "$log" 2>/dev/null)
  ip netns exec "${p}${MNEDC_SERVER_ROLE:-relay}" "$MNEDC_SERVER_BIN" --listen=0.0.0.0:3334 "$@" >>"$log" 2>&1 &
  MNEDC_SERVER_PID=$!
  # The log may hold an earlier run's lines: wait for this run's.
  mnedc_wait_for 10 bash -c "(( \$(grep -c 'listening on' '$log') > ${before:-0} ))"
}

# mnedc_start_client PREFIX ROLE LOG [flags...]: client in ROLE's namespace; sets MNEDC_CLIENT_PID.
# Its state (the device key) is in $(mnedc_state_dir PREFIX ROLE), kept across
# restarts of the client, removed with the network (a client older than
# device keys, such as the benchmark's baseline, gets no --state_dir).
mnedc_start_client() {
  local p=$1 role=$2 log=$3; shift 3
  local state=()
  if [[ ${_mnedc_state_bin:-} != "$MNEDC_CLIENT_BIN" ]]; then
    _mnedc_state_bin=$MNEDC_CLIENT_BIN
    _mnedc_state_flag=$("$MNEDC_CLIENT_BIN" --helpfull 2>&1 | grep -c -- '-state_dir')
  fi
  ((_mnedc_state_flag > 0)) && state=(--state_dir="$(mnedc_state_dir "$p" "$role")")
  ip netns exec "$p$role" "$MNEDC_CLIENT_BIN" --server="$MNEDC_RELAY_IP:3334" \
    --device_id="$role" "${state[@]}" "$@" >>"$log" 2>&1 &
  MNEDC_CLIENT_PID=$!
}

# mnedc_state_dir PREFIX ROLE: where the test network's client in ROLE keeps its key.
mnedc_state_dir() { echo "${TMPDIR:-/tmp}/mnedc-state-$1/$2"; }

# mnedc_wait_for SECONDS CMD...: polls CMD until it succeeds; fails after SECONDS.
mnedc_wait_for() {
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.1
  done
}

# mnedc_tun_addr NS [IFACE]: the IPv4 address on the namespace's TUN, empty if none.
mnedc_tun_addr() {
  ip -n "$1" -4 -o addr show dev "${2:-mnedc0}" 2>/dev/null | awk '{print $4}' | cut -d/ -f1
}

mnedc_has_tun_addr() { [[ -n $(mnedc_tun_addr "$@") ]]; }
