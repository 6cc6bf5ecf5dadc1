#!/usr/bin/env bash
# An operator's first week, end to end with the real binaries across the
# two-level NAT: a token per device, one device unable to take another's ID,
# `ctl status` / `ctl metrics` on a device, `ctl peers` / `ctl kick` /
# `ctl reload` on the relay, and revocation by editing the tokens file and
# sending SIGHUP; and a device whose TUN is deleted under it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${TEST_SRCDIR:+$TEST_SRCDIR/${TEST_WORKSPACE:-mnedc}}
root=${root:-$(cd "$here/../.." && pwd)}
source "$root/testing/e2e/e2e_lib.sh"
CTL=$root/mnedc/cli/ctl

mnedc_e2e_start operations_e2e_test mno

printf '# device_id token\ndeva token-for-a\ndevb token-for-b\n' >"$work/tokens"
printf 'token-for-a\n' >"$work/a-token"
printf 'token-for-b\n' >"$work/b-token"
printf 'admin-secret\n' >"$work/admin-token"
chmod 600 "$work/tokens" "$work/a-token" "$work/b-token" "$work/admin-token"
has() { grep -q -- "$2" <<<"$1"; }

echo "== the relay refuses a tokens file everyone can read"
cp "$work/tokens" "$work/open-tokens"
chmod 644 "$work/open-tokens"
out=$(on relay "$MNEDC_SERVER_BIN" --tokens_file="$work/open-tokens" --tun=false 2>&1)
status=$?
check "exits 2 and says why" bash -c "[[ $status -eq 2 ]] && grep -q \"every user can read it; chmod o-r (or 600) it\" <<<'$out'"

echo "== a token per device"
server_log=$work/server.log
mnedc_start_server "$P" "$server_log" --tokens_file="$work/tokens" \
  --admin_listen=0.0.0.0:9334 --admin_token_file="$work/admin-token"
check "relay starts with 2 device tokens" grep -q "join tokens: 2 device tokens" "$server_log"
mnedc_start_client "$P" deva "$work/a.log" --token_file="$work/a-token" --max_backoff_seconds=1 \
  --status_socket="$work/a.sock"
a_pid=$MNEDC_CLIENT_PID
mnedc_start_client "$P" devb "$work/b.log" --token_file="$work/b-token" --max_backoff_seconds=1 \
  --status_socket="$work/b.sock"
b_pid=$MNEDC_CLIENT_PID
check "A joins with its own token" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns deva)"
check "B joins with its own token" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns devb)"
a_addr=$(mnedc_tun_addr "$(ns deva)")
b_addr=$(mnedc_tun_addr "$(ns devb)")
check "ping A -> B" ping_ok deva "$b_addr"

# B's device presents its own valid token under A's ID: refused, A untouched.
mnedc_start_client "$P" devb "$work/impostor.log" --device_id=deva --token_file="$work/b-token" \
  --tun_name=mnedc9 --status_socket=none
impostor=$MNEDC_CLIENT_PID
check "B cannot join as A" mnedc_wait_for 10 grep -q "UNAUTHORIZED: wrong token for device deva" "$work/impostor.log"
stop_client "$impostor"
check "A keeps its session (nobody superseded it)" cannot grep -q "SUPERSEDED" "$work/a.log"
check "ping A -> B still" ping_ok deva "$b_addr"

echo "== ctl status on a device"
status_text=$("$CTL" status --socket="$work/a.sock" 2>&1)
echo "$status_text" | sed 's/^/     | /'
check "says A is joined" has "$status_text" "^device      deva (joined)"
check "gives A's address and interface" has "$status_text" "^address     $a_addr/24 and fd[0-9a-f:]*/64 on mnedc0, mtu 1400"
check "gives the relay and transport" has "$status_text" "^relay       tcp://$MNEDC_RELAY_IP:3334, connected to $MNEDC_RELAY_IP:3334 over tcp since"
check "lists B with its address, sealed" has "$status_text" "^  devb  *$b_addr  *fd[0-9a-f:]*  *yes  *\(relay\|direct [0-9.:]* [0-9.]*ms, [0-9]*[smhd]\)  *192.168.200.3:[0-9]* "
check "gives A's key and what it sealed" has "$status_text" "^sealing     key [A-Za-z0-9+/]\{43\}=; seals with \(aes-256-gcm\|chacha20-poly1305\); sealed [0-9]* packets to peers"
json=$("$CTL" status --json --socket="$work/a.sock")
check "--json is the endpoint's JSON" has "$json" "\"state\":\"joined\",\"address\":\"$a_addr\""
metrics=$("$CTL" metrics --socket="$work/a.sock")
check "ctl metrics: Prometheus counters" has "$metrics" '^mnedc_client_packets_total{direction="to_relay"} [1-9]'
check "ctl metrics: TUN errors counted" has "$metrics" '^mnedc_client_tun_read_errors_total 0$'
denied=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" status --socket="$work/a.sock" 2>&1)
check "the status socket is root's only" has "$denied" "permission denied (the status socket is the client's owner's only: run ctl as root)"
missing=$("$CTL" status --socket="$work/none.sock" 2>&1)
check "no client: one clear line" has "$missing" "^ctl: error: no client answers on $work/none.sock"

echo "== ctl on the relay"
peers=$(on relay "$CTL" peers 2>&1)
echo "$peers" | sed 's/^/     | /'
check "ctl peers lists both members" bash -c "grep -q '^  deva  *$a_addr ' <<<'$peers' && grep -q '^  devb  *$b_addr ' <<<'$peers'"
kick=$(on relay "$CTL" kick devb --reason="disk full" 2>&1)
check "ctl kick answers" has "$kick" "^kicked devb"
check "B is told why" mnedc_wait_for 5 grep -q "KICKED: closed by the relay's operator: disk full" "$work/b.log"
check "the relay logs it" grep -q "device devb .* kicked by an operator: disk full" "$server_log"
nobody=$(on relay "$CTL" kick nobody 2>&1)
status=$?
check "ctl kick of nobody says so and fails" bash -c "[[ $status -eq 1 ]] && grep -q 'no device nobody is joined' <<<'$nobody'"
check "B rejoins after a kick" mnedc_wait_for 40 bash -c "[[ \$(grep -c 'joined as devb' '$work/b.log') -ge 2 ]]"

echo "== revoking B: edit the tokens file, SIGHUP"
sed -i '/^devb /d' "$work/tokens"
kill -HUP "$MNEDC_SERVER_PID"
check "B is disconnected at once" mnedc_wait_for 5 grep -q "UNAUTHORIZED: the relay no longer accepts this device's token" "$work/b.log"
check "the relay says what the reload did" grep -q "reloaded: 1 device tokens; disconnected 1 device(s)" "$server_log"
check "B cannot rejoin" mnedc_wait_for 5 grep -q "UNAUTHORIZED: device devb is not in the relay's tokens file" "$work/b.log"
check "A no longer reaches B" cannot ping_ok deva "$b_addr"
check "A's status lists B no more" bash -c "! '$CTL' status --socket='$work/a.sock' | grep -q '^  devb '"

echo "== ctl reload, and who may"
printf 'devb token-for-b\n' >>"$work/tokens"
from_a=$(on deva "$CTL" reload --admin="$MNEDC_RELAY_IP:9334" 2>&1)
check "another host without the admin token is refused" has "$from_a" "the relay answered 403"
check "B is still out" cannot ping_ok deva "$b_addr"
from_a=$(on deva "$CTL" reload --admin="$MNEDC_RELAY_IP:9334" --admin_token_file="$work/admin-token" 2>&1)
check "with the admin token it reloads" has "$from_a" "^reloaded: 2 device tokens"
check "B is back" mnedc_wait_for 10 ping_ok deva "$b_addr"
local_reload=$(on relay "$CTL" reload 2>&1)
check "from loopback ctl reload needs no token" has "$local_reload" "^reloaded: 2 device tokens; disconnected 0"

echo "== A's TUN deleted under it"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
has_addr() { [[ $(mnedc_tun_addr "$(ns deva)") == "$1" ]]; }
before=$(cpu_ticks "$a_pid")
on deva ip link del mnedc0
sleep 3
spent=$(($(cpu_ticks "$a_pid") - before))
echo "     | CPU used by A in the 3 s after the deletion: $((spent * 10)) ms"
check "A does not spin (under 0.3 s of CPU in 3 s)" test "$spent" -lt 30
check "A logs what happened" grep -q "TUN mnedc0 failed (File descriptor in bad state; was the interface deleted?): creating it again" "$work/a.log"
check "A's TUN is back with its address" mnedc_wait_for 5 has_addr "$a_addr"
check "ping A -> B over the new TUN" mnedc_wait_for 10 ping_ok deva "$b_addr"
check "ctl metrics counts the re-creation" has "$("$CTL" metrics --socket="$work/a.sock")" '^mnedc_client_tun_recreations_total 1$'

stop_client "$a_pid"
stop_client "$b_pid"
check "A's status socket is gone after it stops" test ! -e "$work/a.sock"
finish
