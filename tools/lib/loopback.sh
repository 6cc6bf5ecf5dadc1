# shellcheck shell=bash
# Sourced by the benchmarks that run a relay on 127.0.0.1 (fleet-bench, soak).

# A port below the kernel's ephemeral range (net.ipv4.ip_local_port_range,
# 32768 and up by default), so no outgoing connection can be holding it, and
# not in use by any socket now.
free_port() {
  local port low
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range)
  for port in $(shuf -i 20000-$((low - 1)) -n 50); do
    ss -Htan "sport = :$port" | grep -q . || { echo "$port"; return; }
  done
}
# metric NAME: its value on the relay's operations endpoint ($admin_port).
metric() { curl -s "http://127.0.0.1:$admin_port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# relay_status_kib FIELD: VmRSS, VmHWM, ... of $relay_pid, in KiB.
relay_status_kib() { awk '/^'"$1"':/ {print $2}' "/proc/$relay_pid/status"; }
