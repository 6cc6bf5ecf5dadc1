#!/usr/bin/env bash
# Two relays that form one network through etcd (Debian's etcd-server, its
# data in a temporary directory, on a host of the main LAN), each relay on a
# host of its own on the two-level NAT network. Device A is given relay 1
# only, device B relay 2 only:
#   - their addresses come from etcd (one per device in the whole network),
#     each relay's members are in etcd, and A learns relay 2 from its Lease;
#   - the relays link (the mesh: TLS keyed by the cluster secret): A sees B in
#     its peer table, peers file and hook, B sees A; A pings B
#     and 10 MB arrive byte-exact, relay 1 -> relay 2 -> B; a relay with the
#     wrong secret cannot link, both sides say why, and devices are not told
#     of it;
#   - relay 1 killed (SIGKILL): A fails over to relay 2 with the same address
#     on the same TUN (same ifindex), and A -> B works (both on relay 2 now);
#     relay 1's entry leaves etcd by itself (its lease is not kept alive);
#   - etcd stopped (SIGSTOP): A -> B goes on, a new device C is refused with
#     a clear error; etcd back (SIGCONT): C joins;
#   - relay 1 restarted under its name takes its place again, and a relay
#     with another --network is refused;
#   - relay 2 killed: B, given only relay 2, fails over to relay 1 (it
#     learned it), and so does A;
#   - relay 1's host cut off the network (link down: no RST, no FIN): A and B
#     notice within their dead-peer timeout (3 s here) and move to relay 2;
#     back on the network, relay 1 lets go of the connections it still holds
#     for them, etcd says they are on relay 2, and all is one network again.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${TEST_SRCDIR:+$TEST_SRCDIR/${TEST_WORKSPACE:-mnedc}}
root=${root:-$(cd "$here/../.." && pwd)}
source "$root/testing/e2e/e2e_lib.sh"
CTL=$root/mnedc/cli/ctl

etcd_bin=$(command -v etcd || true)
why=
[[ -z $etcd_bin || -z $(command -v etcdctl) ]] &&
  why="needs etcd and etcdctl (Debian's etcd-server and etcd-client: tools/install-deps installs them)"
mnedc_e2e_start cluster_e2e_test mcl "$why"

mnedc_net_add_relay2 "$P"
mnedc_net_lan_host "$P"
# etcd on a host of the main LAN (the bridge's own address), so cutting a
# relay's host off leaves it to the other. Not through `on`, so $! is etcd itself.
etcd_url=http://$MNEDC_LAN_HOST_IP:2379
ip netns exec "$(ns lan)" "$etcd_bin" --name e2e --data-dir "$work/etcd" --listen-client-urls "$etcd_url" \
  --advertise-client-urls "$etcd_url" --listen-peer-urls http://127.0.0.1:2380 \
  --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster e2e=http://127.0.0.1:2380 \
  >"$work/etcd.log" 2>&1 &
etcd_pid=$!
# etcd_value KEY: its value; etcd_has KEY: it exists.
etcd_value() { on lan env ETCDCTL_API=3 etcdctl --endpoints="$etcd_url" get "$1" --print-value-only; }
etcd_has() { [[ -n $(on lan env ETCDCTL_API=3 etcdctl --endpoints="$etcd_url" get "$1" --keys-only) ]]; }
# member_on DEVICE RELAY: etcd's member record of DEVICE names RELAY.
member_on() { [[ $(etcd_value "/mnedc/member/$1") == *"\"relay\":\"$2\""* ]]; }
etcd_count() { on lan env ETCDCTL_API=3 etcdctl --endpoints="$etcd_url" get --prefix "$1" --keys-only | grep -c .; }
check "etcd answers" mnedc_wait_for 15 bash -c "ip netns exec '$(ns lan)' curl -sf $etcd_url/health | grep -q true"

openssl rand -hex 32 >"$work/cluster.secret" && chmod 600 "$work/cluster.secret"
openssl rand -hex 32 >"$work/wrong.secret" && chmod 600 "$work/wrong.secret"
cluster=(--tun=false --cluster="etcd://$MNEDC_LAN_HOST_IP:2379" --cluster_secret_file="$work/cluster.secret")
# metric ROLE NAME: a value from the /metrics of the relay on ROLE's host.
metric() { on "$1" curl -s 127.0.0.1:9334/metrics | awk -v m="$2" '$1 == m {print $2}'; }
metric_is() { [[ $(metric "$1" "$2") == "$3" ]]; }
# drops_of ROLE: packets that relay dropped for any reason but IPv6 (the TUNs' own
# router solicitations, which the overlay does not carry yet).
drops_of() {
  on "$1" curl -s 127.0.0.1:9334/metrics | awk '/^mnedc_drops_total/ && !/ipv6/ {s += $2} END {print s + 0}'
}
# relay_is a|b HOST:PORT: that device is connected to that relay now (ctl status).
relay_is() {
  [[ $("$CTL" status --socket="$work/$1.sock" | awk '$1 == "relay" && $3 == "connected" {print $5}') == "$2" ]]
}
start_relay1() {
  mnedc_start_server "$P" "$work/relay1.log" "${cluster[@]}" --cluster_name=relay1 \
    --cluster_advertise="$MNEDC_RELAY_IP:3334"
  relay1=$MNEDC_SERVER_PID
}
start_relay2() {
  MNEDC_SERVER_ROLE=relay2 mnedc_start_server "$P" "$work/relay2.log" "${cluster[@]}" --cluster_name=relay2 \
    --cluster_advertise="$MNEDC_RELAY2_IP:3334"
  relay2=$MNEDC_SERVER_PID
}
# back_within LIMIT WHAT CMD...: runs CMD (something failing), then pings A -> B
# until an answer comes; checks it came within LIMIT seconds.
back_within() {
  local limit=$1 what=$2 start seconds
  shift 2
  "$@"
  start=$(date +%s.%N)
  seconds=$(ping_back_after "$start" deva "$b_addr")
  echo "     A -> B answered ${seconds} s after the $what"
  check "A -> B is back within $limit s of the $what" within "$seconds" "$limit"
}
kill_relay() { kill -KILL "$1"; wait "$1" 2>/dev/null; }
# seen N PATTERN LOG: the log has N lines with PATTERN so far (logs of restarted relays append).
seen() { [[ $(grep -c "$2" "$3") -ge $1 ]]; }
mesh_links_seen() { seen "$1" 'mesh: linked with relay relay2' "$work/relay1.log"; }
start_relay1
start_relay2
etcd_relays_are() { [[ $(etcd_count /mnedc/relay/) == "$1" ]]; }
check "both relays register in etcd" mnedc_wait_for 10 etcd_relays_are 2

# Short dead-peer timeouts, for the cut below (a relay that goes silent).
# Relay failover and the mesh are what this test is about: no direct paths,
# which would carry A -> B around a dead relay (testing/e2e/direct_e2e_test.sh).
timers=(--direct=false --keepalive_seconds=1 --dead_after_seconds=3)
mnedc_start_client "$P" deva "$work/a.log" --status_socket="$work/a.sock" --server="$MNEDC_RELAY_IP:3334" "${timers[@]}" \
  --peers_file="$work/a.peers" --on_peer="echo \"\$MNEDC_EVENT \$MNEDC_PEER_ID \$MNEDC_PEER_ADDR\" >> $work/a.events"
a_pid=$MNEDC_CLIENT_PID
mnedc_start_client "$P" devb "$work/b.log" --status_socket="$work/b.sock" --server="$MNEDC_RELAY2_IP:3334" "${timers[@]}"
b_pid=$MNEDC_CLIENT_PID
check "A joins relay 1" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns deva)"
check "B joins relay 2" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns devb)"
a_addr=$(mnedc_tun_addr "$(ns deva)")
b_addr=$(mnedc_tun_addr "$(ns devb)")
a_ifindex=$(ip -n "$(ns deva)" -o link show mnedc0 | cut -d: -f1)
echo "     A is $a_addr on relay 1, B is $b_addr on relay 2"
check "A and B have different addresses" test "$a_addr" != "$b_addr"
check "  /mnedc/device/deva is $a_addr" test "$(etcd_value /mnedc/device/deva)" == "$a_addr"
check "  /mnedc/member/devb names relay 2" member_on devb relay2
# knows_relays a|b LIST: the relays that device knows (ctl status), in order.
knows_relays() {
  [[ $("$CTL" status --socket="$work/$1.sock" | awk '$1 == "relays" {$1 = ""; sub(/ \(tried.*/, ""); print substr($0, 2)}') == "$2" ]]
}
check "A learned relay 2 (ctl status)" mnedc_wait_for 5 knows_relays a "tcp://$MNEDC_RELAY_IP:3334, tcp://$MNEDC_RELAY2_IP:3334"
check "B learned relay 1 (ctl status)" mnedc_wait_for 5 knows_relays b "tcp://$MNEDC_RELAY2_IP:3334, tcp://$MNEDC_RELAY_IP:3334"
check "the relays link (mesh)" mnedc_wait_for 10 mesh_links_seen 1
check "  relay 1 knows B (mnedc_remote_members 1)" mnedc_wait_for 5 metric_is relay mnedc_remote_members 1
check "A sees B, on the other relay, in its peer table (ctl status)" mnedc_wait_for 5 bash -c \
  "'$CTL' status --socket='$work/a.sock' | grep -q '^  devb  *$b_addr '"
check "  A's peers file lists B" mnedc_wait_for 5 grep -q "devb" "$work/a.peers"
check "  A's --on_peer hook saw B come up" mnedc_wait_for 5 grep -qx "up devb $b_addr" "$work/a.events"
check "B sees A (ctl status)" mnedc_wait_for 5 bash -c "'$CTL' status --socket='$work/b.sock' | grep -q '^  deva  *$a_addr '"
check "A -> B across the mesh (ping)" ping_ok deva "$b_addr"
check "B -> A across the mesh (ping)" ping_ok devb "$a_addr"
check "10 MB A -> B across the mesh arrive byte-exact" transfer_ok deva devb "$b_addr"
check "  neither relay dropped a packet on the way" bash -c "[[ '$(drops_of relay) $(drops_of relay2)' == '0 0' ]]"

echo "== a relay with the wrong cluster secret"
# Its IPv6 /64, made from the secret by default, is not the cluster's: it
# stops at once, saying so.
relay3_flags=(--tun=false --cluster="etcd://$MNEDC_LAN_HOST_IP:2379" --cluster_secret_file="$work/wrong.secret"
              --cluster_name=relay3 --cluster_advertise="$MNEDC_RELAY_IP:3336" --listen=0.0.0.0:3336
              --admin_listen=127.0.0.1:9336)
mnedc_start_server "$P" "$work/relay3-auto.log" "${relay3_flags[@]}"
relay3=$MNEDC_SERVER_PID
check "with IPv6 it stops, naming the secret as the likely cause" mnedc_wait_for 10 grep -q \
  "has the IPv6 network fd.*::/64, this relay's is fd.*::/64: .*another --cluster_secret_file" "$work/relay3-auto.log"
check "  and exits" mnedc_wait_for 5 cannot kill -0 "$relay3"
# IPv4 only, it gets as far as the mesh, whose TLS refuses it.
mnedc_start_server "$P" "$work/relay3.log" "${relay3_flags[@]}" --network6=none
relay3=$MNEDC_SERVER_PID
# Relays 1 and 2 both dial it (their names sort first): the mesh's TLS, keyed
# by the cluster secret, fails at the handshake.
check "it cannot link, and says why" mnedc_wait_for 10 grep -q \
  "refused: TLS keyed by another cluster secret: a relay with another --cluster_secret_file" "$work/relay3.log"
check "  relay 1 says why too" mnedc_wait_for 5 grep -q \
  "mesh: relay relay3: the TLS handshake with $MNEDC_RELAY_IP:3336 failed .*: the relays have different cluster secrets" \
  "$work/relay1.log"
check "  relay 1 counts it (mnedc_mesh_auth_failures_total)" test "$(metric relay mnedc_mesh_auth_failures_total)" -ge 1
check "  relay 1 still has one mesh link" metric_is relay mnedc_mesh_links 1
sleep 2.5  # A relay reads the cluster's relays every 2 s: relay 3 is in etcd.
check "  devices are not told of it (it is not linked)" knows_relays a "tcp://$MNEDC_RELAY_IP:3334, tcp://$MNEDC_RELAY2_IP:3334"
kill -TERM "$relay3"; wait "$relay3" 2>/dev/null

echo "== relay 1 killed (SIGKILL)"
back_within 3 kill kill_relay "$relay1"
check "A is on relay 2 (ctl status)" relay_is a "$MNEDC_RELAY2_IP:3334"
check "A kept its address" test "$(mnedc_tun_addr "$(ns deva)")" == "$a_addr"
check "A kept its TUN (same ifindex)" test "$(ip -n "$(ns deva)" -o link show mnedc0 | cut -d: -f1)" == "$a_ifindex"
check "10 MB A -> B arrives byte-exact" transfer_ok deva devb "$b_addr"
check "relay 1 leaves etcd by itself (its lease expires)" mnedc_wait_for 15 cannot etcd_has /mnedc/relay/relay1

echo "== etcd stopped (SIGSTOP)"
kill -STOP "$etcd_pid"
check "A -> B goes on without etcd" ping_ok deva "$b_addr"
# C: a new device, on the relay host (its relays run without a TUN).
mnedc_start_client "$P" relay "$work/c.log" --device_id=devc --server="$MNEDC_RELAY2_IP:3334" --max_backoff_seconds=1
c_pid=$MNEDC_CLIENT_PID
check "a new device is refused, saying why" mnedc_wait_for 15 grep -q \
  "relay refused: UNAVAILABLE: the cluster store (etcd) cannot be reached to lease an address to a new device" "$work/c.log"
check "  and has no address" cannot mnedc_has_tun_addr "$(ns relay)"
check "relay 2 says etcd is unreachable" grep -q "cluster store (etcd) unreachable" "$work/relay2.log"
kill -CONT "$etcd_pid"
echo "== etcd back (SIGCONT)"
check "the new device joins" mnedc_wait_for 20 mnedc_has_tun_addr "$(ns relay)"
check "  with an address of its own" bash -c \
  "c=\$(ip -n '$(ns relay)' -4 -o addr show dev mnedc0 | awk '{print \$4}' | cut -d/ -f1); [[ \$c != '$a_addr' && \$c != '$b_addr' ]]"
check "relay 2 says etcd is back" grep -q "cluster store (etcd) reachable again" "$work/relay2.log"
stop_client "$c_pid"

echo "== relay 1 restarted; a relay of another network"
start_relay1
check "relay 1 registers again under its name" mnedc_wait_for 15 seen 2 "registered in the cluster store as relay relay1" "$work/relay1.log"
on relay "$MNEDC_SERVER_BIN" "${cluster[@]}" --cluster_name=other --network=10.9.0.0/16 --listen=0.0.0.0:3336 \
  --admin_listen=none --cluster_advertise="$MNEDC_RELAY_IP:3336" >"$work/other.log" 2>&1
other_rc=$?
check "a relay with another --network exits with an error" test "$other_rc" -ne 0
check "  saying why" grep -q "error: --cluster: the cluster under /mnedc/ is the network 10.0.0.0/24, this relay's is 10.9.0.0/16" "$work/other.log"

echo "== relay 2 killed (SIGKILL)"
check "  relay 1 and relay 2 link again first" mnedc_wait_for 15 mesh_links_seen 2
back_within 3 kill kill_relay "$relay2"
check "B, given only relay 2, is on relay 1 (it learned it)" relay_is b "$MNEDC_RELAY_IP:3334"
check "  with its address" test "$(mnedc_tun_addr "$(ns devb)")" == "$b_addr"
check "A is on relay 1 too" relay_is a "$MNEDC_RELAY_IP:3334"

echo "== relay 1's host cut off the network (link down)"
start_relay2
check "relay 2 back, and linked with relay 1" mnedc_wait_for 15 mesh_links_seen 3
# The dead-peer timeout is 3 s, then a connect and a join.
back_within 5 "cut (dead-peer timeout 3 s)" mnedc_net_cut "$P" relay
check "A is on relay 2" relay_is a "$MNEDC_RELAY2_IP:3334"
check "B is on relay 2" relay_is b "$MNEDC_RELAY2_IP:3334"
check "  A said why it left relay 1" grep -q "nothing received for" "$work/a.log"
check "A kept its address" test "$(mnedc_tun_addr "$(ns deva)")" == "$a_addr"
check "A kept its TUN (same ifindex)" test "$(ip -n "$(ns deva)" -o link show mnedc0 | cut -d: -f1)" == "$a_ifindex"
check "10 MB A -> B arrives byte-exact" transfer_ok deva devb "$b_addr"

echo "== relay 1's host back on the network"
# Relay 1 still holds A's and B's old connections (nothing told it they are
# dead: its own dead-peer timeout is 45 s). Either the devices' hosts answer
# its first retransmission with a reset, or etcd tells it they moved
# (mnedc/cluster:etcd_cluster_test shows that path): it lets them go.
mnedc_net_mend "$P" relay
check "relay 1 lets go of A's and B's old connections" mnedc_wait_for 10 metric_is relay mnedc_members 0
# (Relay 2, restarted a moment ago, writes them once its old lease has gone.)
check "  etcd: A is on relay 2" mnedc_wait_for 15 member_on deva relay2
check "  etcd: B is on relay 2" mnedc_wait_for 5 member_on devb relay2
check "  the relays are linked" mnedc_wait_for 15 metric_is relay mnedc_mesh_links 1
check "  relay 1 knows A and B are on relay 2 (mnedc_remote_members 2)" mnedc_wait_for 10 metric_is relay mnedc_remote_members 2
check "A -> B still works" ping_ok deva "$b_addr"
check "A still sees B, and B A" bash -c "'$CTL' status --socket='$work/a.sock' | grep -q '^  devb  *$b_addr ' &&
  '$CTL' status --socket='$work/b.sock' | grep -q '^  deva  *$a_addr '"

kill -TERM "$a_pid" "$b_pid" "$relay1" "$relay2"
wait "$a_pid" "$b_pid" "$relay1" "$relay2" 2>/dev/null
kill -TERM "$etcd_pid" 2>/dev/null
finish
