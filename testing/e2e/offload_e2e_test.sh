#!/usr/bin/env bash
# Super-packets end to end on the two-level NAT network: 100 MB TCP transfers
# arrive byte-exact (sha256) with offloads on at both ends (and bursts of UDP
# datagrams, which B joins for its TUN, arrive whole), with one end
# forced to --offload=false (the relay cuts super-packets for it, and joins
# nothing), and to and from the relay host's own TUN; the counters show the
# super-packets really crossed whole where both ends take them (the relay
# passing most on unread by splice, or with --splice=false straight from its
# read buffer), and with a relay that takes
# none (--offload=false) the clients turn segmentation offload off and still
# deliver byte-exact. The devices run --seal=false: this is about SUPER
# frames and what the relay does with them (sealed super-packets, which the
# relay forwards unopened, are in sealing_e2e_test).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${TEST_SRCDIR:+$TEST_SRCDIR/${TEST_WORKSPACE:-mnedc}}
root=${root:-$(cd "$here/../.." && pwd)}
source "$root/testing/e2e/e2e_lib.sh"
CTL=$root/mnedc/cli/ctl

mnedc_e2e_start offload_e2e_test mno

# big_transfer_ok FROM TO ADDRESS: 100 MB over TCP, compared by sha256.
big_transfer_ok() { transfer_ok "$1" "$2" "$3" 100000000; }
# metric SOCKET NAME: a client's counter value.
metric() { "$CTL" metrics --socket="$1" | awk -v m="$2" '$1 == m {print $2}'; }
positive() { [[ ${1:-0} -gt 0 ]]; }
# relay_metric NAME: the relay's counter value (its operations endpoint).
relay_metric() { ip netns exec "$(ns relay)" curl -s 127.0.0.1:9334/metrics | awk -v m="$1" '$1 == m {print $2}'; }
# start_both SUFFIX [flags]: A and B with status sockets a/bSUFFIX.sock; checks both
# get a lease; sets a_pid, b_pid, a_addr, b_addr.
start_both() {
  local suffix=$1; shift
  mnedc_start_client "$P" deva "$work/a$suffix.log" --status_socket="$work/a$suffix.sock" --seal=false "$@"
  a_pid=$MNEDC_CLIENT_PID
  mnedc_start_client "$P" devb "$work/b$suffix.log" --status_socket="$work/b$suffix.sock" --seal=false "$@"
  b_pid=$MNEDC_CLIENT_PID
  check "A gets its lease${suffix:+ again}" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns deva)"
  check "B gets its lease${suffix:+ again}" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns devb)"
  a_addr=$(mnedc_tun_addr "$(ns deva)")
  b_addr=$(mnedc_tun_addr "$(ns devb)")
}

mnedc_start_server "$P" "$work/server.log"
check "relay starts" kill -0 "$MNEDC_SERVER_PID"
check "the relay's TUN has offloads" mnedc_wait_for 5 grep -q "TUN mnedc-relay offloads: checksum, tso4, tso6" "$work/server.log"
start_both ""
check "A's client says super-packets go both ways" grep -q "super-packets both ways" "$work/a.log"
check "ctl status shows the offloads" bash -c "'$CTL' status --socket='$work/a.sock' | grep -q '^offloads    TUN checksum, tso4, tso6.*super-packets to and from the relay: yes'"

echo "== offloads on at both ends"
check "100 MB A -> B arrives byte-exact (sha256)" big_transfer_ok deva devb "$b_addr"
check "A read super-packets from its TUN" positive "$(metric "$work/a.sock" 'mnedc_client_tun_super_packets_total{direction="read"}')"
check "B wrote super-packets whole into its TUN" positive "$(metric "$work/b.sock" 'mnedc_client_tun_super_packets_total{direction="written"}')"
# B's ACKs come back to A in bursts: A writes the newest of each burst of one
# connection's pure ACKs and counts the others (the transfer above is
# byte-exact with them gone).
check "A wrote only the newest of B's ACKs that came together" positive "$(metric "$work/a.sock" mnedc_client_tun_acks_superseded_total)"
check "100 MB B -> A arrives byte-exact" big_transfer_ok devb deva "$a_addr"
check "the relay received super-packets" positive "$(relay_metric 'mnedc_super_packets_total{direction="in"}')"
check "the relay sent super-packets whole" positive "$(relay_metric 'mnedc_super_packets_total{direction="out"}')"
check "the relay passed super-packets on unread, by splice" positive "$(relay_metric mnedc_spliced_frames_total)"
check "the relay cut no super-packet and refused none" bash -c "[[ '$(relay_metric mnedc_super_packets_split_total)' == 0 && '$(relay_metric mnedc_bad_super_packets_total)' == 0 ]]"

# udp_bursts_ok FROM TO ADDRESS: 2000 UDP datagrams of 1200 bytes, each
# numbered and filled from its number, sent in bursts of 40; every one that
# arrives must be whole and right (a datagram joined into a super-packet for
# B's TUN must come out of B's kernel as the same datagram), and 95% must.
udp_bursts_ok() {
  on "$2" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("0.0.0.0", 5003))
s.settimeout(3)
good = bad = 0
try:
    while True:
        d = s.recv(65536)
        i = int.from_bytes(d[:4], "big")
        want = i.to_bytes(4, "big") + bytes((i * 31 + k) % 251 for k in range(1196))
        if d == want: good += 1
        else: bad += 1
except socket.timeout:
    pass
print(good, bad)
' >"$work/udp-received" &
  local listener=$!
  sleep 0.5
  on "$1" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(2000):
    s.sendto(i.to_bytes(4, "big") + bytes((i * 31 + k) % 251 for k in range(1196)), (sys.argv[1], 5003))
    if i % 40 == 39: time.sleep(0.002)
' "$3" || return 1
  wait "$listener"
  local good bad
  read -r good bad <"$work/udp-received"
  echo "  UDP: $good datagrams arrived right, $bad wrong (of 2000)"
  [[ ${bad:-1} == 0 && ${good:-0} -ge 1900 ]]
}
joined_before=$(metric "$work/b.sock" mnedc_client_tun_segments_joined_total)
check "2000 UDP datagrams A -> B in bursts arrive whole and right" udp_bursts_ok deva devb "$b_addr"
check "B joined UDP datagrams into super-packets for its TUN" \
  positive "$(( $(metric "$work/b.sock" mnedc_client_tun_segments_joined_total) - ${joined_before:-0} ))"
check "no TUN write errors on B" bash -c "[[ \$('$CTL' metrics --socket='$work/b.sock' | awk '\$1 == \"mnedc_client_tun_write_errors_total\" {print \$2}') == 0 ]]"

echo "== to and from the relay host's own TUN"
check "100 MB A -> relay host (10.0.0.1) arrives byte-exact" big_transfer_ok deva relay 10.0.0.1
check "100 MB relay host -> B arrives byte-exact" big_transfer_ok relay devb "$b_addr"

echo "== B forced to --offload=false"
kill -TERM "$b_pid"; wait "$b_pid" 2>/dev/null
mnedc_wait_for 5 bash -c "! ip -n $(ns devb) link show mnedc0 >/dev/null 2>&1"
mnedc_start_client "$P" devb "$work/b2.log" --status_socket="$work/b2.sock" --seal=false --offload=false
b_pid=$MNEDC_CLIENT_PID
check "B rejoins" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns devb)"
b_addr=$(mnedc_tun_addr "$(ns devb)")
check "B's TUN has no offloads" grep -q "offloads: off (--offload=false)" "$work/b2.log"
check "100 MB A -> B (B without offloads) arrives byte-exact" big_transfer_ok deva devb "$b_addr"
check "B got only ordinary packets" bash -c "[[ \$('$CTL' metrics --socket='$work/b2.sock' | awk '\$1 ~ /super_packets_total/ {s += \$2} END {print s + 0}') == 0 ]]"
check "100 MB B (without offloads) -> A arrives byte-exact" big_transfer_ok devb deva "$a_addr"
check "A joined B's ordinary segments into super-packets for its TUN" positive "$(metric "$work/a.sock" mnedc_client_tun_segments_joined_total)"
check "no TUN write errors on A" bash -c "[[ \$('$CTL' metrics --socket='$work/a.sock' | awk '\$1 == \"mnedc_client_tun_write_errors_total\" {print \$2}') == 0 ]]"

# restart_all SUFFIX FLAG: the relay again with FLAG (its log serverSUFFIX.log), then A and B.
restart_all() {
  kill -TERM "$a_pid" "$b_pid" "$MNEDC_SERVER_PID"
  wait "$a_pid" "$b_pid" "$MNEDC_SERVER_PID" 2>/dev/null
  mnedc_start_server "$P" "$work/server$1.log" "$2"
  check "the relay restarts with $2" kill -0 "$MNEDC_SERVER_PID"
  start_both "$1"
}

echo "== a relay that takes no super-packets (--offload=false), clients with offloads"
restart_all 3 --offload=false
check "A's status says the relay takes no super-packets" bash -c "'$CTL' status --socket='$work/a3.sock' | grep -q 'super-packets to and from the relay: no'"
check "100 MB A -> B through a relay without super-packets arrives byte-exact" big_transfer_ok deva devb "$b_addr"
check "A's kernel segmented: A read no super-packet from its TUN" bash -c "[[ '$(metric "$work/a3.sock" 'mnedc_client_tun_super_packets_total{direction="read"}')' == 0 ]]"
check "B joined the relay's ordinary segments for its TUN" positive "$(metric "$work/b3.sock" mnedc_client_tun_segments_joined_total)"
check "the relay saw no super-packet" bash -c "[[ '$(relay_metric 'mnedc_super_packets_total{direction="in"}')' == 0 ]]"

echo "== a relay that reads every frame (--splice=false)"
restart_all 4 --splice=false
check "100 MB A -> B through a relay that splices nothing arrives byte-exact" big_transfer_ok deva devb "$b_addr"
check "the relay sent super-packets whole" positive "$(relay_metric 'mnedc_super_packets_total{direction="out"}')"
check "the relay sent super-packets straight from its read buffer" positive "$(relay_metric mnedc_direct_sends_total)"
check "the relay spliced nothing" bash -c "[[ '$(relay_metric mnedc_spliced_frames_total)' == 0 ]]"

kill -TERM "$a_pid" "$b_pid" "$MNEDC_SERVER_PID"
wait "$a_pid" "$b_pid" "$MNEDC_SERVER_PID" 2>/dev/null
finish
