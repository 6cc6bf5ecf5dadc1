#!/usr/bin/env bash
# Failover between relays on the two-level NAT network, without a cluster
# store: relay 1 names both relays in its Lease (--relays), devices are given
# relay 1 only. When relay 1 is killed (SIGKILL), both devices move to relay 2
# at once with the same addresses on the same TUN (same ifindex), and A -> B
# traffic is back within 3 s. Relay 2 grants the addresses the devices ask
# for because nothing else holds them: without a shared store the relays are
# two separate networks, which is what `--cluster` (etcd) is for.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${TEST_SRCDIR:+$TEST_SRCDIR/${TEST_WORKSPACE:-mnedc}}
root=${root:-$(cd "$here/../.." && pwd)}
source "$root/testing/e2e/e2e_lib.sh"
CTL=$root/mnedc/cli/ctl

mnedc_e2e_start failover_e2e_test mfo

relays="$MNEDC_RELAY_IP:3334,$MNEDC_RELAY_IP:3335"
mnedc_start_server "$P" "$work/relay1.log" --tun=false --relays="$relays"
relay1=$MNEDC_SERVER_PID
# Relay 2 beside it on another port (and another operations port).
mnedc_start_server "$P" "$work/relay2.log" --tun=false --relays="$relays" --listen=0.0.0.0:3335 \
  --admin_listen=127.0.0.1:9335
relay2=$MNEDC_SERVER_PID
check "both relays start" kill -0 "$relay1" "$relay2"

mnedc_start_client "$P" deva "$work/a.log" --status_socket="$work/a.sock"
a_pid=$MNEDC_CLIENT_PID
mnedc_start_client "$P" devb "$work/b.log" --status_socket="$work/b.sock"
b_pid=$MNEDC_CLIENT_PID
check "A joins relay 1" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns deva)"
check "B joins relay 1" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns devb)"
a_addr=$(mnedc_tun_addr "$(ns deva)")
b_addr=$(mnedc_tun_addr "$(ns devb)")
a_ifindex=$(ip -n "$(ns deva)" -o link show mnedc0 | cut -d: -f1)
check "A -> B over relay 1" ping_ok deva "$b_addr"
check "A learned relay 2 from its Lease (ctl status)" bash -c \
  "'$CTL' status --socket='$work/a.sock' | grep -q '^relays      tcp://$MNEDC_RELAY_IP:3334, tcp://$MNEDC_RELAY_IP:3335'"

echo "== relay 1 killed (SIGKILL)"
kill -KILL "$relay1"; wait "$relay1" 2>/dev/null
seconds=$(ping_back_after "$(date +%s.%N)" deva "$b_addr")
echo "     A -> B answered again ${seconds} s after the kill"
check "A -> B is back within 3 s of the kill" within "$seconds" 3
check "A is on relay 2 now (ctl status)" bash -c \
  "'$CTL' status --socket='$work/a.sock' | grep -q '^relay       tcp://$MNEDC_RELAY_IP:3335, connected'"
check "A kept its address" bash -c "[[ '$(mnedc_tun_addr "$(ns deva)")' == '$a_addr' ]]"
check "A kept its TUN (same ifindex)" bash -c \
  "[[ \$(ip -n '$(ns deva)' -o link show mnedc0 | cut -d: -f1) == '$a_ifindex' ]]"
check "B kept its address" bash -c "[[ '$(mnedc_tun_addr "$(ns devb)")' == '$b_addr' ]]"
check "10 MB A -> B over relay 2 arrives byte-exact" transfer_ok deva devb "$b_addr"
check "A's log says where it went" grep -q "trying relay tcp://$MNEDC_RELAY_IP:3335 next" "$work/a.log"

kill -TERM "$a_pid" "$b_pid" "$relay2"
wait "$a_pid" "$b_pid" "$relay2" 2>/dev/null
finish
