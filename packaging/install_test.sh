#!/usr/bin/env bash
# tools/install into a temporary DESTDIR produces a working tree: binaries that
# run, flag files the relay accepts, secrets owner-only, and systemd units that
# `systemd-analyze verify` accepts without a single warning.
set -u
root=${TEST_SRCDIR:+$TEST_SRCDIR/${TEST_WORKSPACE:-mnedc}}
root=${root:-$(cd "$(dirname "$0")/.." && pwd)}
failures=0
ok() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
out=$("$root/tools/install" --destdir="$stage" --prefix=/usr/local --bin-from="$root/mnedc/cli" 2>&1)
status=$?
echo "$out" | sed 's/^/     | /'
check "tools/install exits 0" test "$status" -eq 0
check "says what to edit" grep -q "^What to edit:" <<<"$out"
for binary in mnedc-relay mnedc-client mnedc-ctl; do
  check "$binary installed and executable" test -x "$stage/usr/local/bin/$binary"
done
check "mnedc-relay --help runs" bash -c "'$stage/usr/local/bin/mnedc-relay' --help | grep -q '^mnedc relay'"
check "mnedc-ctl --help runs" bash -c "'$stage/usr/local/bin/mnedc-ctl' --help | grep -q '^mnedc ctl'"
check "tokens file is owner-only" test "$(stat -c %a "$stage/etc/mnedc/tokens")" = 600
check "units point at the installed binaries" \
  grep -qx "ExecStart=/usr/local/bin/mnedc-relay --flagfile=/etc/mnedc/relay.flags" \
  "$stage/usr/local/lib/systemd/system/mnedc-relay.service"

# The relay runs from the installed flag file (its paths moved into the stage).
sed "s|/etc/mnedc/|$stage/etc/mnedc/|; s|/var/lib/mnedc/|$stage/|" "$stage/etc/mnedc/relay.flags" >"$stage/relay.flags"
log=$stage/relay.log
"$stage/usr/local/bin/mnedc-relay" --flagfile="$stage/relay.flags" --listen=127.0.0.1:0 \
  --admin_listen=none --tun=false >"$log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "listening on" "$log" && break; sleep 0.1; done
check "the relay starts from the installed flags, tokens file in force" \
  grep -q "join tokens: 0 device tokens" "$log"
kill -TERM "$pid"; wait "$pid"
check "and stops cleanly" grep -q "relay stopped" "$log"

# A second install keeps what the operator edited.
echo "kitchen s3cret" >>"$stage/etc/mnedc/tokens"
"$root/tools/install" --destdir="$stage" --bin-from="$root/mnedc/cli" >/dev/null 2>&1
check "a reinstall keeps edited files" grep -q "^kitchen s3cret$" "$stage/etc/mnedc/tokens"

# systemd-analyze verify checks that ExecStart exists: point it at the stage.
if ! command -v systemd-analyze >/dev/null; then
  fail "systemd-analyze is missing (Debian package systemd; tools/install-deps installs it)"
else
  for unit in mnedc-relay mnedc-client; do
    sed "s|=/usr/local/bin/|=$stage/usr/local/bin/|" "$stage/usr/local/lib/systemd/system/$unit.service" \
      >"$stage/$unit.service"
    verify=$(cd "$stage" && systemd-analyze verify "./$unit.service" 2>&1)
    status=$?
    [[ -n $verify ]] && echo "$verify" | sed 's/^/     | /'
    check "systemd-analyze verify $unit.service: no complaints" bash -c "[[ $status -eq 0 && -z '$verify' ]]"
  done
  # The check itself can fail: a unit with a typo is caught.
  sed 's/^NoNewPrivileges=yes/NoNewPrivilege=yes/' "$stage/mnedc-relay.service" >"$stage/broken.service"
  check "a misspelled directive is caught" bash -c "cd '$stage' && [[ -n \$(systemd-analyze verify ./broken.service 2>&1) ]]"
fi
echo "$failures failed"
exit $((failures > 0))
