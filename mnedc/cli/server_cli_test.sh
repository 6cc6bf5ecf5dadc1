#!/usr/bin/env bash
# The server's command line: --help explains, bad values fail in one clear line.
set -u
server=mnedc/cli/server
failures=0
check() {  # check NAME EXPECTED_STATUS PATTERN -- ARGS...
  local name=$1 want=$2 pattern=$3
  shift 4
  local out status
  out=$("$server" "$@" 2>&1)
  status=$?
  if [[ $status -ne $want ]] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: status $status (want $want), output:"
    echo "$out" | head -20
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
check help 0 '--network  \(default: "10.0.0.0/24"\)' -- --help
check help_listen 0 '--listen  \(default: "0.0.0.0:3334"\)' -- --help
check help_no_glog_noise 0 '^mnedc relay' -- --help
check bad_prefix 2 '^server: error: --network=.10.0.0.0/33. has a prefix length over 32$' -- --network=10.0.0.0/33
check host_bits 2 'did you mean 10.0.0.0/24' -- --network=10.0.0.9/24
check bad_listen 2 '^server: error: --listen=' -- --listen=0.0.0.0:99999
check bad_mtu 2 'mtu must be from 576' -- --mtu=100
check unknown_flag 1 'unknown command line flag' -- --no_such_flag=1
check stray_argument 2 "unexpected argument 'extra'" -- extra
check help_cluster 0 '--cluster  \(default: ""\)' -- --help
check cluster_scheme 2 "^server: error: --cluster: expected etcd://HOST:PORT\[,HOST:PORT...\], got 'http://x'$" -- --cluster=http://x
check cluster_name_alone 2 '^server: error: --cluster_name needs --cluster=etcd://HOST:PORT$' -- --cluster_name=r1
check cluster_advertise 2 'needs --cluster_advertise=ADDRESS .* --listen=0.0.0.0:3334 does not say$' -- --cluster=etcd://127.0.0.1:2379
check cluster_lease_file 2 'error: --lease_file and --cluster do not go together' -- --cluster=etcd://127.0.0.1:2379 --lease_file=/tmp/x
check cluster_bad_name 2 "cluster_name: letters, digits, '-', '_' and '.' only" -- --cluster=etcd://127.0.0.1:2379 --cluster_name=a/b --cluster_advertise=h:1
check cluster_prefix 2 "cluster_prefix must start and end with '/'" -- --cluster=etcd://127.0.0.1:2379 --cluster_prefix=mnedc --cluster_advertise=h:1
check cluster_secret 2 '^server: error: --cluster needs --cluster_secret_file=FILE' -- --cluster=etcd://127.0.0.1:2379 --cluster_advertise=h:1
check cluster_mesh 2 'needs --cluster_mesh=HOST:PORT .* is not native TCP$' -- --cluster=etcd://127.0.0.1:2379 --cluster_advertise=wss://h/mnedc
check tls_half 2 'TLS needs both --tls_cert and --tls_key' -- --tls_cert=/nonexistent.pem
check tls_missing 2 "cannot read --tls_cert '/nonexistent.pem'" -- --tls_cert=/nonexistent.pem --tls_key=/nonexistent.key
check require_tls_alone 2 'require_tls needs --tls_cert' -- --require_tls
check token_missing 2 "--token_file: cannot read '/nonexistent-token'" -- --token_file=/nonexistent-token
empty_token=$(mktemp)
check token_empty 2 "is empty" -- --token_file="$empty_token"
rm -f "$empty_token"
check bad_admin 2 '^server: error: --admin_listen' -- --admin_listen=localhost:1
check bad_listen_list 2 "^server: error: --listen=" -- --listen=127.0.0.1:0,nonsense:x
# Under `bazel run` a relative path means the directory the command was typed
# in (BUILD_WORKING_DIRECTORY), not Bazel's runfiles directory.
typed_in=$(mktemp -d)
echo secret >"$typed_in/token"
chmod 600 "$typed_in/token"
printf -- '--network=10.0.0.0/33\n' >"$typed_in/flags"
server=$PWD/mnedc/cli/server
export BUILD_WORKING_DIRECTORY=$typed_in
check relative_flagfile 2 "has a prefix length over 32" -- --flagfile=flags
check relative_token_missing 2 "cannot read 'missing-token'" -- --token_file=missing-token
log=$typed_in/log
(cd / && "$server" --token_file=token --listen=127.0.0.1:0 --admin_listen=none --tun=false >"$log" 2>&1) &
pid=$!
for _ in $(seq 50); do grep -q "listening on 127.0.0.1:" "$log" && break; sleep 0.1; done
kill -TERM $pid; wait $pid
if grep -q "listening on" "$log" && ! grep -q "NO JOIN TOKEN" "$log"; then
  echo "ok   relative_token_file_read_from_typed_in_directory"
else
  echo "FAIL relative token file not used:"; cat "$log"; failures=$((failures + 1))
fi
unset BUILD_WORKING_DIRECTORY
check relative_without_bazel 2 "cannot read 'token'" -- --token_file=token
rm -rf "$typed_in"
# Help must not list glog's own flags.
if "$server" --help 2>&1 | grep -q -- '--logbuflevel'; then
  echo "FAIL help lists glog flags"; failures=$((failures + 1))
fi
# It really serves: start on a free port, see it listen, stop it with SIGTERM.
log=$(mktemp)
"$server" --listen=127.0.0.1:0 --admin_listen=127.0.0.1:0 --tun=false >"$log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "listening on 127.0.0.1:" "$log" && break; sleep 0.1; done
kill -TERM $pid
wait $pid
status=$?
if [[ $status -ne 0 ]] || ! grep -q "relay stopped" "$log"; then
  echo "FAIL start/stop: status $status"; cat "$log"; failures=$((failures + 1))
else
  echo "ok   start_and_sigterm"
fi
if ! grep -q "NO JOIN TOKEN" "$log"; then
  echo "FAIL a relay without a token does not warn"; failures=$((failures + 1))
else
  echo "ok   warns_without_token"
fi
rm -f "$log"
echo "$failures failed"
exit $((failures > 0))
