#!/usr/bin/env bash
# IPv6 inside the overlay, end to end across the two-level NAT: each device's
# IPv6 address on its TUN, ping -6 and TCP between devices and to the relay
# host, mDNS-style multicast to ff02::fb, a spoofed source dropped and counted,
# and both addresses in the hook, the peers file, ctl and /v1/peers.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${TEST_SRCDIR:+$TEST_SRCDIR/${TEST_WORKSPACE:-mnedc}}
root=${root:-$(cd "$here/../.." && pwd)}
source "$root/testing/e2e/e2e_lib.sh"
CTL=$root/mnedc/cli/ctl

mnedc_e2e_start dual_stack_e2e_test mn6

# tun_addr6 NAMESPACE: the IPv6 addresses on its mnedc0, one a line.
tun_addr6() { ip -n "$1" -6 -o addr show dev mnedc0 2>/dev/null | awk '{print $4}' | cut -d/ -f1; }
has_addr6() { [[ -n $(tun_addr6 "$1") ]]; }
ping6_ok() { on "$1" ping -6 -c 2 -i 0.2 -W 2 "${@:2}" >/dev/null 2>&1; }
# transfer6_ok FROM_ROLE TO_ROLE TO_ADDRESS: 10 MB over TCP/IPv6, sha256 compared.
transfer6_ok() {
  head -c 10000000 /dev/urandom >"$work/payload"
  on "$2" nc -6 -l 5001 >"$work/received" &
  local listener=$!
  sleep 0.3
  on "$1" timeout 120 nc -N "$3" 5001 <"$work/payload" && wait "$listener" &&
    [[ $(sha256sum <"$work/payload") == $(sha256sum <"$work/received") ]]
}
relay_metric() { on relay curl -s 127.0.0.1:9334/metrics | awk -v m="$1" '$1 == m {print $2}'; }

echo "== a dual-stack relay (--network6=auto) and two devices"
server_log=$work/server.log
mnedc_start_server "$P" "$server_log" --admin_listen=127.0.0.1:9334
check "relay starts with an IPv6 network" grep -qE "network 10.0.0.0/24 and fd[0-9a-f:]+::/64" "$server_log"
events=$work/a-events
mnedc_start_client "$P" deva "$work/a.log" --peers_file="$work/a-peers" --status_socket="$work/a.sock" \
  --on_peer="echo \"\$MNEDC_EVENT \$MNEDC_PEER_ID \$MNEDC_PEER_ADDR \$MNEDC_PEER_ADDR6\" >> $events"
a_pid=$MNEDC_CLIENT_PID
mnedc_start_client "$P" devb "$work/b.log" --status_socket="$work/b.sock"
b_pid=$MNEDC_CLIENT_PID
check "device A gets an IPv6 address on mnedc0" mnedc_wait_for 10 has_addr6 "$(ns deva)"
check "device B gets an IPv6 address on mnedc0" mnedc_wait_for 10 has_addr6 "$(ns devb)"
a6=$(tun_addr6 "$(ns deva)")
b6=$(tun_addr6 "$(ns devb)")
relay6=$(ip -n "$(ns relay)" -6 -o addr show dev mnedc-relay | awk '{print $4}' | cut -d/ -f1)
b_addr=$(mnedc_tun_addr "$(ns devb)")
echo "     A is $a6, B is $b6 ($b_addr), the relay host $relay6"
check "each has exactly one IPv6 address: no link-local one" \
  [ "$(tun_addr6 "$(ns deva)" | wc -l)" = 1 ] && [ "$(tun_addr6 "$(ns devb)" | wc -l)" = 1 ]
check "B's IPv6 address is the /64 with its IPv4 host number" [ "${b6##*:}" = "${b_addr##*.}" ]
check "the relay host is ::1 of the /64" [ "${relay6%::1}::1" = "$relay6" ] && [ "${relay6%::1}" = "${b6%::*}" ]

check "ping -6 A -> B" ping6_ok deva "$b6"
check "ping -6 B -> A" ping6_ok devb "$a6"
check "ping -6 A -> relay host" ping6_ok deva "$relay6"
check "ping -6 relay host -> B" ping6_ok relay "$b6"
check "full-MTU IPv6 packets pass (ping -6 -s 1352 -M do)" ping6_ok deva -s 1352 -M do "$b6"
check "10 MB TCP over IPv6 A -> B arrives byte-exact (sha256)" transfer6_ok deva devb "$b6"

# B listens on the mDNS group on its TUN; A sends to it.
on devb python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 5353))
index = socket.if_nametoindex("mnedc0")
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, "ff02::fb") + struct.pack("@I", index))
s.settimeout(10)
data, sender = s.recvfrom(2048)
print(data.decode(), sender[0])
' >"$work/multicast" 2>&1 &
listener=$!
# Bound and joined before A sends (python takes a moment to start).
mnedc_wait_for 5 bash -c "ip netns exec $(ns devb) ss -uln | grep -q ':5353 '"
sleep 0.2
on deva python3 -c '
import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex("mnedc0"))
s.sendto(b"mdns-marker", ("ff02::fb%mnedc0", 5353))
'
wait "$listener"
check "a datagram A sends to ff02::fb arrives at B, from A's overlay address" \
  grep -qx "mdns-marker $a6" "$work/multicast"

# To the relay host: not sealed (the relay is no peer), so the relay checks
# the source itself. (Sealed to B, B's client would drop it: sealing_test.)
spoofed_before=$(relay_metric 'mnedc_drops_total{reason="spoofed_source"}')
on deva ip -6 addr add "${a6%::*}::99/128" dev mnedc0 nodad
on deva ping -6 -c 3 -i 0.2 -W 1 -I "${a6%::*}::99" "$relay6" >/dev/null 2>&1
spoofed=$(( $(relay_metric 'mnedc_drops_total{reason="spoofed_source"}') - spoofed_before ))
check "IPv6 from an address A was not leased is dropped and counted ($spoofed)" [ "$spoofed" -ge 3 ]
# Linux would send from the /128 now (the longer prefix match): take it away.
on deva ip -6 addr del "${a6%::*}::99/128" dev mnedc0
check "  and A's own address still works" ping6_ok deva "$b6"
check "no link-local packet reached the relay" [ "$(relay_metric 'mnedc_drops_total{reason="link_local"}')" = 0 ]

check "A's --on_peer hook had B's IPv6 address" mnedc_wait_for 5 grep -qx "up devb $b_addr $b6" "$events"
check "A's --peers_file lists B's IPv6 address" grep -qE "^devb $b_addr [0-9.:]+ $b6$" "$work/a-peers"
status=$(on deva "$CTL" status --socket="$work/a.sock" 2>&1)
echo "$status" >"$work/ctl-status.log"
check "ctl status shows A's IPv6 address and B's" \
  grep -q "and $a6/64 on mnedc0" <<<"$status" && grep -qE "devb +$b_addr +$b6 " <<<"$status"
check "the relay's /v1/peers shows both addresses" \
  bash -c "ip netns exec $(ns relay) curl -s 127.0.0.1:9334/v1/peers | grep -q '\"address6\":\"$b6\"'"

echo "== names: DEVICE.mnedc.internal, answered by each device's own client at the relay's address"
# ip netns exec puts /etc/netns/NAME/resolv.conf in place of /etc/resolv.conf.
mkdir -p "/etc/netns/$(ns deva)"
echo "nameserver 10.0.0.1" >"/etc/netns/$(ns deva)/resolv.conf"
trap 'rm -rf "/etc/netns/$(ns deva)"; mnedc_net_down "$P"; rm -rf "$work"' EXIT
relay_tun_before=$(relay_metric 'mnedc_tun_packets_total{direction="written"}')
addresses_of() { on deva getent ahosts "$1" 2>/dev/null | awk '{print $1}' | sort -u | tr '\n' ' '; }
check "getent ahosts devb.mnedc.internal on A gives B's two addresses" \
  [ "$(addresses_of devb.mnedc.internal)" = "$(printf '%s\n' "$b_addr" "$b6" | sort | tr '\n' ' ')" ]
check "dig -x B's IPv4 address gives its name" \
  [ "$(on deva dig +short +time=2 +tries=1 @10.0.0.1 -x "$b_addr")" = "devb.mnedc.internal." ]
check "dig -x B's IPv6 address, asked over IPv6, gives its name" \
  [ "$(on deva dig +short +time=2 +tries=1 @"$relay6" -x "$b6")" = "devb.mnedc.internal." ]
check "A's own name answers too" [ "$(on deva dig +short +time=2 +tries=1 @10.0.0.1 A deva.mnedc.internal)" = "$(mnedc_tun_addr "$(ns deva)")" ]
check "a name outside the overlay is refused, not answered" \
  bash -c "ip netns exec $(ns deva) dig +time=2 +tries=1 @10.0.0.1 example.com | grep -q 'status: REFUSED'"
check "an unknown device is NXDOMAIN" \
  bash -c "ip netns exec $(ns deva) dig +time=2 +tries=1 @10.0.0.1 nobody.mnedc.internal | grep -q 'status: NXDOMAIN'"
check "no query reached the relay host (A's client answered them all)" \
  [ "$(relay_metric 'mnedc_tun_packets_total{direction="written"}')" = "$relay_tun_before" ] && \
  [ "$(on deva "$CTL" status --json --socket="$work/a.sock" | grep -o '"dns_queries":[0-9]*' | cut -d: -f2)" -ge 7 ]

echo "== the relay restarts, B leaves"
kill -TERM "$MNEDC_SERVER_PID"; wait "$MNEDC_SERVER_PID" 2>/dev/null
network_line() { grep -oE "network 10.0.0.0/24 and fd[0-9a-f:]+::/64" "$server_log" | sort -u; }
mnedc_start_server "$P" "$server_log" --admin_listen=127.0.0.1:9334
check "the restarted relay has the same /64 (auto: from /etc/machine-id and --network)" \
  [ "$(network_line | wc -l)" = 1 ]
check "ping -6 A -> B once both are back" mnedc_wait_for 15 ping6_ok deva "$b6"
check "  B kept its IPv6 address, and has no other" [ "$(tun_addr6 "$(ns devb)")" = "$b6" ]
stop_client "$b_pid"
check "A's hook saw B go down with both addresses" mnedc_wait_for 10 grep -qx "down devb $b_addr $b6" "$events"
check "  and B's name is gone" cannot on deva getent hosts devb.mnedc.internal
stop_client "$a_pid"

echo "== an IPv4-only relay (--network6=none)"
kill -TERM "$MNEDC_SERVER_PID"; wait "$MNEDC_SERVER_PID" 2>/dev/null
mnedc_start_server "$P" "$server_log" --admin_listen=127.0.0.1:9334 --network6=none
# An upstream resolver on the relay host's LAN address, for A's --dns_forward:
# it answers every A query with 192.0.2.55.
on relay python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
while True:
    query, asker = s.recvfrom(512)
    end = 12
    while query[end] != 0:
        end += 1 + query[end]
    question = query[12:end + 5]
    answer = query[:2] + bytes([0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]) + question
    answer += bytes([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 55])
    s.sendto(answer, asker)
' &
upstream=$!
mnedc_wait_for 5 bash -c "ip netns exec $(ns relay) ss -uln | grep -q ':5353 '"
mnedc_start_client "$P" deva "$work/a.log" --dns_forward="$MNEDC_RELAY_IP:5353"
a_pid=$MNEDC_CLIENT_PID
check "A joins with IPv4 only" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns deva)"
check "  and has no IPv6 address on mnedc0" cannot has_addr6 "$(ns deva)"
check "with --dns_forward, a name outside the overlay is answered by the upstream" \
  [ "$(on deva dig +short +time=2 +tries=1 @10.0.0.1 example.com)" = "192.0.2.55" ]
check "  and the overlay's own names still by A's client" \
  [ "$(on deva dig +short +time=2 +tries=1 @10.0.0.1 deva.mnedc.internal)" = "$(mnedc_tun_addr "$(ns deva)")" ]
kill "$upstream" 2>/dev/null
stop_client "$a_pid"
finish
