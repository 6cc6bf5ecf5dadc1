#!/usr/bin/env bash
# End to end across a real two-level NAT: real kernel, real binaries, as root.
# Device A sits under NAT A; device B under NAT B2 under NAT B; the relay on the
# main LAN. Proves they cannot talk without mnedc, and can with it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${TEST_SRCDIR:+$TEST_SRCDIR/${TEST_WORKSPACE:-mnedc}}
root=${root:-$(cd "$here/../.." && pwd)}
source "$root/testing/e2e/e2e_lib.sh"

mnedc_e2e_start nat_e2e_test mne

echo "== without mnedc"
check "device A reaches the relay host (outbound through NAT A)" ping_ok deva "$MNEDC_RELAY_IP"
check "device B reaches the relay host (through NAT B2 and NAT B)" ping_ok devb "$MNEDC_RELAY_IP"
check "relay host cannot reach device A" cannot ping_ok relay "$MNEDC_DEVA_IP"
check "device A cannot reach device B" cannot ping_ok deva "$MNEDC_DEVB_IP"
check "device B cannot reach device A" cannot ping_ok devb "$MNEDC_DEVA_IP"

echo "== with mnedc"
server_log=$work/server.log
relay_flags=(--keepalive_seconds=2 --dead_after_seconds=6 --lease_file="$work/leases")
mnedc_start_server "$P" "$server_log" "${relay_flags[@]}"
check "relay starts" kill -0 "$MNEDC_SERVER_PID"
events=$work/a-events
mnedc_start_client "$P" deva "$work/a.log" --max_backoff_seconds=1 --peers_file="$work/a-peers" \
  --on_peer="echo \"\$MNEDC_EVENT \$MNEDC_PEER_ID \$MNEDC_PEER_ADDR\" >> $events"
a_pid=$MNEDC_CLIENT_PID
check "device A gets its lease on mnedc0" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns deva)"
mnedc_start_client "$P" devb "$work/b.log" --max_backoff_seconds=1
b_pid=$MNEDC_CLIENT_PID
check "device B gets its lease on mnedc0" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns devb)"
a_addr=$(mnedc_tun_addr "$(ns deva)")
b_addr=$(mnedc_tun_addr "$(ns devb)")
echo "     A is $a_addr, B is $b_addr"
check "A's --on_peer hook saw B come up with its address" \
  mnedc_wait_for 5 grep -qx "up devb $b_addr" "$events"
check "A's --peers_file lists B (within 0.2 s of the event; 2 s allowed)" mnedc_wait_for 2 grep -qE "^devb $b_addr 192.168.200.3:[0-9]+ fd[0-9a-f:]+$" "$work/a-peers"
check "ping A -> B" ping_ok deva "$b_addr"
check "ping B -> A" ping_ok devb "$a_addr"
check "ping A -> relay host 10.0.0.1" ping_ok deva 10.0.0.1
check "ping relay host -> B" ping_ok relay "$b_addr"
check "full-MTU packets with DF set pass (ping -s 1372 -M do)" \
  ping_ok deva -s 1372 -M do "$b_addr"
check "one byte over the MTU is refused locally, not blackholed" \
  cannot ping_ok deva -s 1373 -M do "$b_addr"

check "10 MB TCP transfer A -> B arrives byte-exact (sha256)" transfer_ok deva devb "$b_addr"

a_ifindex=$(on deva cat /sys/class/net/mnedc0/ifindex)
b_ifindex=$(on devb cat /sys/class/net/mnedc0/ifindex)

echo "== peers leaving and the relay restarting"
kill -KILL "$b_pid"
wait "$b_pid" 2>/dev/null
check "B's TUN went away with its client" mnedc_wait_for 5 cannot mnedc_has_tun_addr "$(ns devb)"
check "A's hook saw B go down" mnedc_wait_for 10 grep -qx "down devb $b_addr" "$events"
check "A's --peers_file no longer lists B (2 s allowed)" mnedc_wait_for 2 cannot grep -q "^devb " "$work/a-peers"
mnedc_start_client "$P" devb "$work/b.log" --max_backoff_seconds=1
b_pid=$MNEDC_CLIENT_PID
check "B rejoins with the same address" \
  mnedc_wait_for 10 bash -c "[[ \$(ip -n $(ns devb) -4 -o addr show dev mnedc0 2>/dev/null | awk '{print \$4}') == $b_addr/24 ]]"
b_ifindex=$(on devb cat /sys/class/net/mnedc0/ifindex)

kill -TERM "$MNEDC_SERVER_PID"
wait "$MNEDC_SERVER_PID"
check "relay stops cleanly on SIGTERM" grep -q "relay stopped" "$server_log"
check "the relay kept both leases in --lease_file" \
  bash -c "grep -qx '$a_addr deva' '$work/leases' && grep -qx '$b_addr devb' '$work/leases'"
sleep 1
mnedc_start_server "$P" "$server_log" "${relay_flags[@]}"
check "the restarted relay restored them" mnedc_wait_for 5 grep -q "restored 2 leases from $work/leases" "$server_log"
rejoined() { [[ $(grep -c "joined as" "$1") -ge 2 ]]; }
check "A rejoins the restarted relay on its own" mnedc_wait_for 15 rejoined "$work/a.log"
check "B rejoins the restarted relay on its own" mnedc_wait_for 15 rejoined "$work/b.log"
check "traffic flows again A -> B" mnedc_wait_for 10 ping_ok deva "$b_addr"
check "A kept its TUN (same ifindex) and address" \
  bash -c "[[ $(on deva cat /sys/class/net/mnedc0/ifindex) == $a_ifindex && $(mnedc_tun_addr "$(ns deva)") == $a_addr ]]"
check "B kept its TUN (same ifindex) and address" \
  bash -c "[[ $(on devb cat /sys/class/net/mnedc0/ifindex) == $b_ifindex && $(mnedc_tun_addr "$(ns devb)") == $b_addr ]]"

echo "== clean shutdown"
kill -TERM "$a_pid"
wait "$a_pid"
check "client exits 0 on SIGTERM" [ $? -eq 0 ]
check "A's TUN is gone" cannot mnedc_has_tun_addr "$(ns deva)"
check "relay logs A leaving" mnedc_wait_for 5 grep -q "device deva .* left" "$server_log"

echo "== errors a user can meet"
cp "$MNEDC_CLIENT_BIN" "$work/client-copy" && chmod 755 "$work" "$work/client-copy"
unprivileged=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
  "$work/client-copy" --server=127.0.0.1 2>&1)
echo "     as nobody: $unprivileged"
check "without privilege the client says what it needs, in one line" \
  grep -qE "^client-copy: error: .*needs root or CAP_NET_ADMIN\)$" <<<"$unprivileged"
cp "$MNEDC_SERVER_BIN" "$work/server-copy" && chmod 755 "$work/server-copy"
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
  "$work/server-copy" --listen=127.0.0.1:0 --admin_listen=none >"$work/server-nobody.log" 2>&1 &
nobody_pid=$!
check "without privilege the relay warns once and runs as a pure relay" \
  mnedc_wait_for 5 grep -q "running as a pure relay, without an address of its own: .*needs root or CAP_NET_ADMIN" "$work/server-nobody.log"
check "  and still serves" grep -q "listening on 127.0.0.1:" "$work/server-nobody.log"
kill -TERM "$nobody_pid"; wait "$nobody_pid" 2>/dev/null
no_relay=$("$MNEDC_CLIENT_BIN" 2>&1)
check "without --server or a config file it says so" grep -q "no relay given" <<<"$no_relay"

finish
