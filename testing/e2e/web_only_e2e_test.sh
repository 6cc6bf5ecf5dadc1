#!/usr/bin/env bash
# End to end where the only way out is the web: device A sits behind a
# middlebox that lets only TCP port 443 out, then behind one that lets nothing
# out but an HTTP CONNECT proxy (tinyproxy). Device B is two NATs deep, on TLS.
# The relay serves 3334 and 443 with TLS and a join token.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${TEST_SRCDIR:+$TEST_SRCDIR/${TEST_WORKSPACE:-mnedc}}
root=${root:-$(cd "$here/../.." && pwd)}
source "$root/testing/e2e/e2e_lib.sh"

why=""
! command -v tinyproxy >/dev/null && why="tinyproxy is not installed (tools/install-deps)"
! command -v openssl >/dev/null && why="openssl is not installed"
mnedc_e2e_start web_only_e2e_test mnw "$why"
mnedc_make_pki "$work" "$MNEDC_RELAY_IP" || { echo "FAIL could not make certificates"; exit 1; }
printf 'the-right-token\n' >"$work/token"
printf 'a-wrong-token\n' >"$work/wrong-token"
chmod 600 "$work/token" "$work/wrong-token"
tls=(--ca_file="$work/ca.pem" --token_file="$work/token" --max_backoff_seconds=1)

mnedc_start_server "$P" "$work/server.log" --listen=0.0.0.0:3334,0.0.0.0:443 \
  --tls_cert="$work/relay.pem" --tls_key="$work/relay.key" --token_file="$work/token"
check "relay serves 3334 and 443 with TLS and a token" grep -q "listening on 0.0.0.0:3334, 0.0.0.0:443 (tcp, ws, tls, wss)" "$work/server.log"
mnedc_start_client "$P" devb "$work/b.log" --server="tls://$MNEDC_RELAY_IP:3334" "${tls[@]}"
check "device B joins over tls:// through two NATs" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns devb)"
b_addr=$(mnedc_tun_addr "$(ns devb)")

echo "== middlebox lets only TCP 443 out"
mnedc_net_web_only "$P"
check "device A cannot open TCP to the relay's port 3334" cannot port_open deva "$MNEDC_RELAY_IP" 3334
check "device A can open TCP to port 443" port_open deva "$MNEDC_RELAY_IP" 443
mnedc_start_client "$P" deva "$work/a-tcp.log" --server="$MNEDC_RELAY_IP:3334" \
  --token_file="$work/token" --max_backoff_seconds=1
a_pid=$MNEDC_CLIENT_PID
check "plain TCP to 3334 does not get through, and the client says why" \
  mnedc_wait_for 20 grep -q "cannot connect to relay $MNEDC_RELAY_IP:3334: Connection timed out" "$work/a-tcp.log"
check "  no address meanwhile" cannot mnedc_has_tun_addr "$(ns deva)"
stop_client "$a_pid"
mnedc_start_client "$P" deva "$work/a-wss.log" --server="wss://$MNEDC_RELAY_IP:443/mnedc" "${tls[@]}" \
  --status_socket="$work/a.sock"
a_pid=$MNEDC_CLIENT_PID
check "wss:// on 443 gets through" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns deva)"
check "the relay sees A on wss" mnedc_wait_for 5 grep -q "device deva joined from .* over wss" "$work/server.log"
check "ping A -> B" ping_ok deva "$b_addr"
check "ping B -> A" ping_ok devb "$(mnedc_tun_addr "$(ns deva)")"
check "10 MB A -> B arrives byte-exact over wss" transfer_ok deva devb "$b_addr"
# UDP cannot get out past the middlebox: no direct path, and nothing lost for it.
check "A's path to B stays on the relay (UDP is blocked)" bash -c \
  "\"$root/mnedc/cli/ctl\" status --socket='$work/a.sock' | grep -qE '^  devb +[0-9.]+ +[0-9a-f:]+ +yes +relay '"
stop_client "$a_pid"

echo "== an HTTP CONNECT proxy (tinyproxy) is the only way out"
mnedc_net_proxy_only "$P"
check "device A cannot reach port 443 directly any more" cannot port_open deva "$MNEDC_RELAY_IP" 443
cat >"$work/tinyproxy.conf" <<CONF
User nobody
Group nogroup
Port 8888
Listen 192.168.10.1
Timeout 600
Allow 192.168.10.0/24
ConnectPort 443
LogFile "$work/tinyproxy.log"
LogLevel Info
PidFile "$work/tinyproxy.pid"
MaxClients 20
CONF
touch "$work/tinyproxy.log" "$work/tinyproxy.pid"
chown nobody:nogroup "$work/tinyproxy.log" "$work/tinyproxy.pid"
on nata tinyproxy -d -c "$work/tinyproxy.conf" >/dev/null 2>&1 &
mnedc_wait_for 5 port_open deva 192.168.10.1 8888
# The proxy comes from the environment, as it would on a managed device.
https_proxy=http://192.168.10.1:8888 mnedc_start_client "$P" deva "$work/a-proxy.log" \
  --server="wss://$MNEDC_RELAY_IP/mnedc" "${tls[@]}"
a_pid=$MNEDC_CLIENT_PID
check "wss:// through the proxy gets through" mnedc_wait_for 10 mnedc_has_tun_addr "$(ns deva)"
check "  the client used the proxy" grep -q "through proxy 192.168.10.1:8888" "$work/a-proxy.log"
check "  the proxy saw the CONNECT" grep -q "CONNECT" "$work/tinyproxy.log"
check "ping A -> B through the proxy" ping_ok deva "$b_addr"
check "10 MB A -> B arrives byte-exact through the proxy" transfer_ok deva devb "$b_addr"
stop_client "$a_pid"

echo "== strangers stay out"
mnedc_start_client "$P" deva "$work/a-wrong-token.log" --server="wss://$MNEDC_RELAY_IP/mnedc" \
  --proxy=http://192.168.10.1:8888 --ca_file="$work/ca.pem" --token_file="$work/wrong-token"
a_pid=$MNEDC_CLIENT_PID
check "a wrong token is refused" mnedc_wait_for 10 grep -q "UNAUTHORIZED: wrong join token" "$work/a-wrong-token.log"
check "  and gets no address" cannot mnedc_has_tun_addr "$(ns deva)"
stop_client "$a_pid"
mnedc_start_client "$P" deva "$work/a-untrusted.log" --server="wss://$MNEDC_RELAY_IP/mnedc" \
  --proxy=http://192.168.10.1:8888 --ca_file="$work/other-ca.pem" --token_file="$work/token"
a_pid=$MNEDC_CLIENT_PID
check "a relay certificate the client does not trust is refused" \
  mnedc_wait_for 10 grep -q "unable to get local issuer certificate" "$work/a-untrusted.log"
check "  and gets no address" cannot mnedc_has_tun_addr "$(ns deva)"
stop_client "$a_pid"
check "the relay counted the authentication failure" \
  bash -c "ip netns exec $(ns relay) nc -N 127.0.0.1 9334 <<<\$'GET /metrics HTTP/1.0\r\n\r\n' | grep -qE '^mnedc_auth_failures_total [1-9]'"

finish
