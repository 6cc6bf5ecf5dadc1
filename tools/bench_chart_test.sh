#!/usr/bin/env bash
# tools/bench-chart turns a results table into an SVG that shows every path,
# its throughput with ratios, and its RTT; a table without results is refused.
set -u
chart=$(dirname "$0")/bench-chart
[[ -x $chart ]] || chart=tools/bench-chart
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() { local name=$1; shift; if "$@"; then echo "ok   $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi; }
printf 'path\tmbit/s\tp50 ms\tp99 ms\tvs underlay\tvs openvpn\n' >"$work/r.tsv"
printf 'underlay (A -> relay host, direct)\t8654\t0.099\t0.133\t1.00x\t21.26x\n' >>"$work/r.tsv"
printf 'mnedc tcp (A -> relay -> B)\t1672\t0.564\t0.700\t0.19x\t4.11x\n' >>"$work/r.tsv"
printf 'openvpn tcp (A -> server -> B)\t407\t0.613\t1.53\t0.05x\t1.00x\n' >>"$work/r.tsv"
"$chart" "$work/r.tsv" "$work/r.svg" "a test run"
check "writes an SVG" grep -q "<svg" "$work/r.svg"
check "titled" grep -q "a test run" "$work/r.svg"
for text in "mnedc tcp (A -> relay -> B)" "1672  (0.19x, 4.11x)" "0.564 / 0.700" "p99"; do
  check "shows '$text'" grep -qF "$text" "$work/r.svg"
done
printf 'path\tmbit/s\tp50 ms\tp99 ms\tvs underlay\tvs openvpn\tcpu s\tmbit per cpu s\n' >"$work/c.tsv"
printf 'underlay (A -> relay host, direct)\t8654\t0.099\t0.133\t1.00x\t21.26x\t-\t-\n' >>"$work/c.tsv"
printf 'mnedc tcp (A -> relay -> B)\t4212\t0.411\t3.43\t0.45x\t9.57x\t9.10\t2314\n' >>"$work/c.tsv"
"$chart" "$work/c.tsv" "$work/c.svg" "with CPU"
check "shows Mbit per CPU second when given" grep -qF "4212  (0.45x, 9.57x)  2314 Mbit/CPU s" "$work/c.svg"
check "not for the underlay" bash -c "! grep -qF -- '- Mbit/CPU s' '$work/c.svg'"
head -1 "$work/r.tsv" >"$work/empty.tsv"
check "refuses a table without results" bash -c "! '$chart' '$work/empty.tsv' '$work/e.svg' 2>/dev/null"
echo "$failures failed"
exit $((failures > 0))
