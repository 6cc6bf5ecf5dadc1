#!/usr/bin/env bash
# End to end, the direct path across the two-level NAT network, real
# binaries, as root: a standard STUN client asks the relay; A (behind NAT A)
# and B (behind NAT B2 under NAT B) punch through to each other and move off
# the relay; the path survives the relay's death; forged datagrams are
# dropped and counted; when a NAT starts dropping UDP mid-transfer the pair
# falls back to the relay within about a second and nothing is lost; with
# UDP blocked from the start they stay on the relay and work as before.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${TEST_SRCDIR:+$TEST_SRCDIR/${TEST_WORKSPACE:-mnedc}}
root=${root:-$(cd "$here/../.." && pwd)}
source "$root/testing/e2e/e2e_lib.sh"
CTL=$root/mnedc/cli/ctl

why=""
! command -v stun >/dev/null && why="stun (Debian's stun-client) is not installed (tools/install-deps installs it)"
mnedc_e2e_start direct_e2e_test mdx "$why"

relay_metric() { on relay curl -s 127.0.0.1:9334/metrics | awk -v m="$1" '$1 == m {print $2}'; }
# status_of ROLE: that device's ctl status.
status_of() { "$CTL" status --socket="$work/$1.sock" 2>/dev/null; }
# path_is ROLE PEER direct|relay: that device's ctl status shows the peer's path so.
path_is() { status_of "$1" | grep -qE "^  $2 +[0-9.]+ +[0-9a-f:]+ +yes +$3 "; }
counter() {  # counter ROLE NAME: a counter from the device's /v1/status.
  curl -s --unix-socket "$work/$1.sock" http://x/v1/status |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"][sys.argv[1]])' "$2"
}
# lost_pings FROM TO COUNT INTERVAL: how many of COUNT pings got no answer.
lost_pings() {
  on "$1" ping -c "$3" -i "$4" -W 1 "$2" 2>/dev/null |
    awk '/packets transmitted/ {print $1 - $4}'
}
udp_block() { on "$1" iptables -I FORWARD -p udp -j DROP; }
udp_unblock() { on "$1" iptables -D FORWARD -p udp -j DROP; }
export work CTL P
export -f on status_of path_is counter relay_metric

echo "== the relay answers STUN on its port"
mnedc_start_server "$P" "$work/server.log" --admin_listen=127.0.0.1:9334
check "relay starts, with STUN on UDP 3334" grep -q "STUN on UDP 0.0.0.0:3334" "$work/server.log"
check "a standard STUN client (stun-client, RFC 3489) behind NAT A learns NAT A's outside address" \
  bash -c "ip netns exec $(ns deva) stun $MNEDC_RELAY_IP:3334 1 -v 2>&1 | grep -q 'MappedAddress = 192.168.200.2:'"
check "the relay counts the answer" bash -c "(( \$(on relay curl -s 127.0.0.1:9334/metrics | awk '\$1 == \"mnedc_stun_answered_total\" {print \$2}') >= 1 ))"

echo "== A and B go direct"
start=$(date +%s.%N)
mnedc_start_client "$P" deva "$work/a.log" --status_socket="$work/a.sock"
a_pid=$MNEDC_CLIENT_PID
mnedc_start_client "$P" devb "$work/b.log" --status_socket="$work/b.sock"
b_pid=$MNEDC_CLIENT_PID
check "both get their leases" mnedc_wait_for 10 bash -c \
  "[[ -n \$(ip -n $(ns deva) -4 -o addr show dev mnedc0) && -n \$(ip -n $(ns devb) -4 -o addr show dev mnedc0) ]]"
joined=$(date +%s.%N)
a_addr=$(mnedc_tun_addr "$(ns deva)")
b_addr=$(mnedc_tun_addr "$(ns devb)")
echo "     A is $a_addr, B is $b_addr; joined $(awk -v a="$start" -v b="$joined" 'BEGIN {printf "%.1f", b - a}') s after start"
# Traffic starts the search for a path: a ping every 0.2 s meanwhile.
on deva ping -i 0.2 -c 50 "$b_addr" >/dev/null 2>&1 &
pinger=$!
check "A's path to B is direct within 5 s of both joining" mnedc_wait_for 5 path_is a devb direct
check "and B's to A" mnedc_wait_for 5 path_is b deva direct
direct_at=$(date +%s.%N)
echo "     direct $(awk -v a="$joined" -v b="$direct_at" 'BEGIN {printf "%.1f", b - a}') s after both joined"
kill "$pinger" 2>/dev/null; wait "$pinger" 2>/dev/null
status_of a | grep -E "^direct|^  devb"
check "A learned its outside address from the relay (NAT A's)" bash -c "status_of a | grep -q 'outside 192.168.200.2:'"
check "B's path goes to NAT B's outside address" bash -c "status_of a | grep -qE '^  devb .* direct 192.168.200.3:'"
check "/v1/peers says direct, with the RTT" bash -c \
  "curl -s --unix-socket '$work/a.sock' http://x/v1/peers | grep -q '\"path\":\"direct\",\"path_since\":\"[0-9T:Z-]*\",\"direct_endpoint\":\"192.168.200.3:[0-9]*\",\"rtt_ms\":[0-9.]*'"
check "metrics: mnedc_client_peer_direct and its RTT" bash -c \
  "\"$CTL\" metrics --socket='$work/a.sock' | grep -q '^mnedc_client_peer_direct{peer=\"$b_addr\"} 1' &&
   \"$CTL\" metrics --socket='$work/a.sock' | grep -q '^mnedc_client_peer_rtt_seconds{peer=\"$b_addr\"} '"
routed_before=$(relay_metric mnedc_sealed_routed_total)
direct_before=$(counter b direct_packets_in)
check "100 MB TCP A -> B direct arrives byte-exact (sha256)" transfer_ok deva devb "$b_addr" 100000000
routed_after=$(relay_metric mnedc_sealed_routed_total)
direct_after=$(counter b direct_packets_in)
echo "     B took $((direct_after - direct_before)) packets direct (super-packets count once); the relay routed $((routed_after - routed_before)) sealed ones meanwhile"
check "it went direct, not through the relay" \
  bash -c "(( $direct_after - $direct_before > 1000 && $routed_after - $routed_before < 100 ))"

echo "== forged datagrams"
b_port=$(curl -s --unix-socket "$work/b.sock" http://x/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["direct"]["port"])')
unopened_before=$(counter b direct_unopened)
bad_before=$(( $(counter b unsealed_bad_tag) + $(counter b unsealed_unknown_peer) ))
# To B's UDP port on its own address (the NATs would drop them from outside):
# a marker and a SEALED header claiming A's address, then junk for a tag;
# and one claiming an address nobody has.
on devb python3 -c '
import socket, struct, sys, os
a = struct.unpack("!I", socket.inet_aton(sys.argv[1]))[0]
b = struct.unpack("!I", socket.inet_aton(sys.argv[2]))[0]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for source in (a, a, a, 0x0a0000fe):
    header = bytes([0xD1, 0, 0, 0, 0]) + struct.pack("!IIQ", b, source, 1 << 40)
    s.sendto(header + os.urandom(64), ("127.0.0.1", int(sys.argv[3])))
' "$a_addr" "$b_addr" "$b_port"
sleep 0.3
check "B dropped and counted all 4" bash -c \
  "(( \$(counter b direct_unopened) - $unopened_before == 4 && \$(counter b unsealed_bad_tag) + \$(counter b unsealed_unknown_peer) - $bad_before == 4 ))"
check "and kept its direct path" path_is b deva direct

echo "== the relay dies; the direct path does not"
kill -KILL "$MNEDC_SERVER_PID"; wait "$MNEDC_SERVER_PID" 2>/dev/null
lost=$(lost_pings deva "$b_addr" 200 0.02)
echo "     $lost of 200 pings lost with the relay down"
check "a ping A -> B loses no more than 1% (2 of 200)" test "${lost:-200}" -le 2
check "and the path is still direct" path_is a devb direct
# A new peer waits for the relay: B starts again (a new session key, no lease).
stop_client "$b_pid"
mnedc_start_client "$P" devb "$work/b-again.log" --status_socket="$work/b.sock"
b_pid=$MNEDC_CLIENT_PID
sleep 2
check "a device started while the relay is down is not reachable (it waits for the relay)" \
  cannot ping_ok deva "$b_addr"
mnedc_start_server "$P" "$work/server.log" --admin_listen=127.0.0.1:9334
check "the relay is back, and both rejoin" mnedc_wait_for 15 bash -c \
  "[[ \$(\"$CTL\" status --socket='$work/a.sock' 2>/dev/null | head -1) == *joined* && \$(\"$CTL\" status --socket='$work/b.sock' 2>/dev/null | head -1) == *joined* ]]"
mnedc_wait_for 10 mnedc_has_tun_addr "$(ns devb)"
b_addr=$(mnedc_tun_addr "$(ns devb)")
check "then A reaches the new B" mnedc_wait_for 10 ping_ok deva "$b_addr"
pinged_and_direct() { ping_ok deva "$1"; path_is a devb direct; }
check "  and goes direct to it" mnedc_wait_for 10 pinged_and_direct "$b_addr"

echo "== NAT A drops UDP in the middle of a transfer"
fell_before=$(counter a direct_fell_back)
head -c 100000000 /dev/urandom >"$work/payload"
on devb nc -l 5001 >"$work/received" &
listener=$!
sleep 0.3
on deva timeout 120 nc -N "$b_addr" 5001 <"$work/payload" &
sender=$!
# Cut as soon as B has the first megabytes (it takes well under a second direct).
for _ in $(seq 1000); do
  (($(stat -c %s "$work/received" 2>/dev/null || echo 0) > 2000000)) && break
  sleep 0.005
done
udp_block nata
at_cut=$(stat -c %s "$work/received")
echo "     UDP cut with $at_cut of 100000000 bytes at B"
wait "$sender"; sent=$?
wait "$listener"; received=$?
check "the 100 MB transfer still arrives byte-exact" bash -c \
  "(( $sent == 0 && $received == 0 )) && [[ \$(sha256sum <'$work/payload') == \$(sha256sum <'$work/received') ]]"
check "  the cut came in the middle of it" test "$at_cut" -lt 100000000
check "A went back to the relay" mnedc_wait_for 3 path_is a devb relay
check "  and counted it" bash -c "(( \$(counter a direct_fell_back) > $fell_before ))"
silent_line=$(grep "went silent" "$work/a.log" | tail -1)
echo "     A said: ${silent_line:0:120}"
lost=$(lost_pings deva "$b_addr" 40 0.05)
check "pings go through the relay meanwhile" test "${lost:-40}" -le 1
udp_unblock nata
echo "== how long a dead direct path costs: UDP cut during a ping every 50 ms"
check "direct again once UDP passes (within a probing round: they come every 35 s)" mnedc_wait_for 45 path_is a devb direct
on deva ping -c 100 -i 0.05 -W 1 "$b_addr" >"$work/ping-cut.txt" 2>&1 &
pinger=$!
sleep 1
udp_block nata
wait "$pinger"
lost=$(awk '/packets transmitted/ {print $1 - $4}' "$work/ping-cut.txt")
echo "     $lost of 100 pings lost (one every 50 ms) across the fallback"
check "back on the relay within about a second (at most 30 pings, 1.5 s, lost)" test "${lost:-100}" -le 30
check "  and the last ping got through" bash -c "tail -n +2 '$work/ping-cut.txt' | grep -o 'icmp_seq=[0-9]*' | tail -1 | grep -q 'icmp_seq=100'"

echo "== with UDP blocked from the start the pair stays on the relay"
stop_client "$a_pid"
stop_client "$b_pid"
mnedc_start_client "$P" deva "$work/a2.log" --status_socket="$work/a.sock"
a_pid=$MNEDC_CLIENT_PID
mnedc_start_client "$P" devb "$work/b2.log" --status_socket="$work/b.sock"
b_pid=$MNEDC_CLIENT_PID
check "both join again" mnedc_wait_for 10 bash -c \
  "[[ \$(\"$CTL\" status --socket='$work/a.sock' 2>/dev/null | head -1) == *joined* && \$(\"$CTL\" status --socket='$work/b.sock' 2>/dev/null | head -1) == *joined* ]]"
b_addr=$(mnedc_tun_addr "$(ns devb)")
check "ping A -> B" ping_ok deva "$b_addr"
sleep 6  # A whole probing round.
check "A's path to B is the relay" path_is a devb relay
check "10 MB A -> B arrives byte-exact through the relay" transfer_ok deva devb "$b_addr"
udp_unblock nata

echo "== --direct=false"
stop_client "$a_pid"
mnedc_start_client "$P" deva "$work/a3.log" --status_socket="$work/a.sock" --direct=false
a_pid=$MNEDC_CLIENT_PID
check "A joins" mnedc_wait_for 10 bash -c "[[ \$(\"$CTL\" status --socket='$work/a.sock' 2>/dev/null | head -1) == *joined* ]]"
check "ping A -> B" ping_ok deva "$b_addr"
check "ctl status says direct is off" bash -c "status_of a | grep -q '^direct      off'"
sleep 2
check "and the path is the relay" path_is a devb relay
stop_client "$a_pid"
stop_client "$b_pid"
finish
