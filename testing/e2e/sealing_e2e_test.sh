#!/usr/bin/env bash
# End-to-end sealing across the two-level NAT network, real binaries, as root:
# what the relay sees of a unicast packet between two devices of this
# version (captured with tcpdump on the relay host), against what it sees
# when one of them presents no key; and the relay's binding of a device ID
# to its first key, until the operator forgets it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${TEST_SRCDIR:+$TEST_SRCDIR/${TEST_WORKSPACE:-mnedc}}
root=${root:-$(cd "$here/../.." && pwd)}
source "$root/testing/e2e/e2e_lib.sh"
CTL=$root/mnedc/cli/ctl

mnedc_e2e_start sealing_e2e_test msl "$(command -v tcpdump >/dev/null || echo "tcpdump is not installed (tools/install-deps installs it)")"

relay_metric() { on relay curl -s 127.0.0.1:9334/metrics | awk -v m="$1" '$1 == m {print $2}'; }
# capture_start: tcpdump on the relay host, of the relay's port, until capture_stop.
capture_start() {
  rm -f "$work/relay.pcap" "$work/tcpdump.err"
  # --immediate-mode: packets reach tcpdump as they come, not in blocks a
  # timeout (1 s) flushes, which an early SIGINT would throw away.
  ip netns exec "$(ns relay)" tcpdump -i any --immediate-mode -U -w "$work/relay.pcap" tcp port 3334 2>"$work/tcpdump.err" &
  capture_pid=$!
  mnedc_wait_for 5 grep -q "listening on" "$work/tcpdump.err"
}
capture_stop() { kill -INT "$capture_pid"; wait "$capture_pid" 2>/dev/null; }
# send_marker TEXT: B listens on UDP 7000 of its overlay address; A sends TEXT
# there 5 times; true once B has it.
send_marker() {
  rm -f "$work/b-received"
  on devb python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 7000))
s.settimeout(10)
data, _ = s.recvfrom(2048)
open(sys.argv[2], "wb").write(data)
' "$b_addr" "$work/b-received" &
  local listener=$!
  mnedc_wait_for 5 bash -c "ip netns exec $(ns devb) ss -uln | grep -q '$b_addr:7000'" || return 1
  on deva python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5):
    s.sendto(sys.argv[2].encode(), (sys.argv[1], 7000))
    time.sleep(0.05)
' "$b_addr" "$1"
  wait "$listener" && grep -q "$1" "$work/b-received"
}
# in_capture TEXT: TEXT is in the captured bytes (the pcap file itself: no
# decoding in between that could break a line).
in_capture() { grep -qaF "$1" "$work/relay.pcap"; }
captured_packets() { tcpdump -r "$work/relay.pcap" 2>/dev/null | wc -l; }
peer_sealed() {  # peer_sealed ROLE_SOCKET PEER yes|no: that device's ctl status says so.
  "$CTL" status --socket="$work/$1.sock" 2>/dev/null | grep -qE "^  $2 +[0-9.]+ +[0-9a-f:]+ +$3 "
}

echo "== two devices of this version: unicast between them is sealed"
server_log=$work/server.log
mnedc_start_server "$P" "$server_log" --admin_listen=127.0.0.1:9334 --device_keys_file="$work/device-keys"
check "relay starts" kill -0 "$MNEDC_SERVER_PID"
# Through the relay, to see what it sees: the direct path (which the relay
# never sees at all) is direct_e2e_test's.
mnedc_start_client "$P" deva "$work/a.log" --status_socket="$work/a.sock" --direct=false
a_pid=$MNEDC_CLIENT_PID
mnedc_start_client "$P" devb "$work/b.log" --status_socket="$work/b.sock" --direct=false
b_pid=$MNEDC_CLIENT_PID
check "both get their leases" mnedc_wait_for 10 bash -c \
  "[[ -n \$(ip -n $(ns deva) -4 -o addr show dev mnedc0) && -n \$(ip -n $(ns devb) -4 -o addr show dev mnedc0) ]]"
a_addr=$(mnedc_tun_addr "$(ns deva)")
b_addr=$(mnedc_tun_addr "$(ns devb)")
a_key=$(sed -n 's/.*public key \([A-Za-z0-9+/=]*\).*/\1/p' "$work/a.log" | head -1)
echo "     A is $a_addr (key $a_key), B is $b_addr"
check "A made its key in its state directory, owner-only" \
  bash -c "[[ \$(stat -c %a '$(mnedc_state_dir "$P" deva)/device.key') == 600 ]]"
check "the relay bound A's ID to that key (--device_keys_file)" mnedc_wait_for 3 grep -qx "deva $a_key" "$work/device-keys"
check "A's ctl status: B is sealed" mnedc_wait_for 5 peer_sealed a devb yes
check "ping A -> B" ping_ok deva "$b_addr"
capture_start
marker="mnedc-marker-$RANDOM$RANDOM-sealed"
check "a UDP datagram with a marker reaches B" send_marker "$marker"
sleep 0.3
capture_stop
echo "     the relay's capture holds $(captured_packets) packets"
check "the relay's capture holds the traffic" bash -c "(( \$(tcpdump -r '$work/relay.pcap' 2>/dev/null | wc -l) >= 5 ))"
check "the marker is nowhere in what the relay saw" cannot in_capture "$marker"
check "the relay routed sealed packets (mnedc_sealed_routed_total)" \
  bash -c "(( \$(on() { ip netns exec $P\$1 \"\${@:2}\"; }; on relay curl -s 127.0.0.1:9334/metrics | awk '\$1 == \"mnedc_sealed_routed_total\" {print \$2}') > 0 ))"
check "B opened them (ctl status)" bash -c "'$CTL' status --socket='$work/b.sock' | grep -qE '^sealing     key .*opened [1-9]'"
check "100 MB TCP A -> B, sealed, arrives byte-exact (sha256)" transfer_ok deva devb "$b_addr" 100000000
check "no sealed packet was dropped at B" bash -c "'$CTL' status --socket='$work/b.sock' | grep -qE 'opened [0-9]+; dropped 0 '"

echo "== B presents no key (--seal=false, as an older client): as before, and the relay sees it"
stop_client "$b_pid"
mnedc_start_client "$P" devb "$work/b2.log" --status_socket="$work/b.sock" --seal=false
b_pid=$MNEDC_CLIENT_PID
check "B joins again" mnedc_wait_for 10 bash -c "grep -q 'joined as devb' '$work/b2.log'"
b_addr=$(mnedc_tun_addr "$(ns devb)")
check "A's ctl status: B is not sealed" mnedc_wait_for 5 peer_sealed a devb no
capture_start
marker="mnedc-marker-$RANDOM$RANDOM-clear"
check "the marker reaches B" send_marker "$marker"
sleep 0.3
capture_stop
echo "     the relay's capture holds $(captured_packets) packets"
check "and this time the relay's capture shows it (so the capture would have)" in_capture "$marker"

echo "== the relay holds a device to its first key"
stop_client "$a_pid"
mnedc_start_client "$P" deva "$work/a2.log" --state_dir="$work/another-state"
a_pid=$MNEDC_CLIENT_PID
check "A with a new key is refused, and told why" mnedc_wait_for 10 grep -q \
  "UNAUTHORIZED: device deva is bound to the key ${a_key:0:8}... on this relay, and this client holds another" "$work/a2.log"
forgot=$(on relay "$CTL" forget-key deva 2>&1)
check "ctl forget-key on the relay" grep -q "forgot the key of deva" <<<"$forgot"
check "then A joins with its new key" mnedc_wait_for 10 grep -q "joined as deva" "$work/a2.log"
new_key=$(sed -n 's/.*public key \([A-Za-z0-9+/=]*\).*/\1/p' "$work/a2.log" | head -1)
check "and the relay's file holds the new key" mnedc_wait_for 3 grep -qx "deva $new_key" "$work/device-keys"
stop_client "$a_pid"
stop_client "$b_pid"
finish
