# shellcheck shell=bash
# The multi-level NAT test network, built from network namespaces (source this).
#
#   relay host ──┐ main LAN 192.168.200.0/24 (bridge in "lan")
#     .1         ├── NAT A   (.2)  ── 192.168.10.0/24 ── device A (.2)
#                └── NAT B   (.3)  ── 192.168.20.0/24 ── NAT B2 (.2) ── 192.168.30.0/24 ── device B (.2)
#
# Each NAT masquerades what its inside sends out and drops anything from outside
# that its inside did not start, so nothing can open a connection down to a
# device, and the devices cannot reach each other. Every address lives only in
# these namespaces. Names carry a prefix, so several networks can coexist.
#
#   mnedc_net_up PREFIX      build it (namespaces ${PREFIX}relay, ${PREFIX}deva, ...)
#   mnedc_net_down PREFIX    kill what runs inside and delete every namespace
#   mnedc_ns PREFIX NAME     the namespace name for a role: relay lan nata deva natb natb2 devb
#   mnedc_net_add_relay2 PREFIX   a second relay host on the main LAN (.4), role relay2
#   mnedc_net_lan_host PREFIX     gives the main LAN's bridge an address (.254): a host
#                                 on the LAN itself, in namespace ${PREFIX}lan (etcd's)

MNEDC_NET_ROLES=(relay lan nata deva natb natb2 devb)
# Built only on request, removed by mnedc_net_down all the same.
MNEDC_NET_EXTRA_ROLES=(relay2)
MNEDC_RELAY_IP=192.168.200.1
MNEDC_RELAY2_IP=192.168.200.4
MNEDC_LAN_HOST_IP=192.168.200.254
MNEDC_DEVA_IP=192.168.10.2
MNEDC_DEVB_IP=192.168.30.2

mnedc_ns() { echo "$1$2"; }

_mnedc_in() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# veth between two namespaces, created directly inside them (nothing in the root namespace).
_mnedc_link() {  # ns1 if1 addr1 ns2 if2 [addr2]
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
  _mnedc_in "$1" ip link set "$2" up
  _mnedc_in "$4" ip link set "$5" up
  [[ -n $3 ]] && _mnedc_in "$1" ip addr add "$3" dev "$2"
  [[ -n ${6:-} ]] && _mnedc_in "$4" ip addr add "$6" dev "$5"
  return 0
}

_mnedc_nat() {  # ns: masquerade out of "wan", admit only replies back in.
  local ns=$1
  _mnedc_in "$ns" sysctl -qw net.ipv4.ip_forward=1
  _mnedc_in "$ns" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
  _mnedc_in "$ns" iptables -P FORWARD DROP
  _mnedc_in "$ns" iptables -A FORWARD -i lan -o wan -j ACCEPT
  _mnedc_in "$ns" iptables -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  # Nothing from outside may open a connection to the NAT box itself either.
  _mnedc_in "$ns" iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  _mnedc_in "$ns" iptables -A INPUT -i wan -j DROP
}

mnedc_net_up() {
  local p=$1 role
  mnedc_net_down "$p" 2>/dev/null
  for role in "${MNEDC_NET_ROLES[@]}"; do
    ip netns add "$p$role" || return 1
    _mnedc_in "$p$role" ip link set lo up
  done
  # Main LAN: a bridge with the relay host and both top-level NATs.
  _mnedc_in "${p}lan" ip link add br0 type bridge
  _mnedc_in "${p}lan" ip link set br0 up
  _mnedc_link "${p}relay" eth0 "$MNEDC_RELAY_IP/24" "${p}lan" p-relay
  _mnedc_link "${p}nata" wan 192.168.200.2/24 "${p}lan" p-nata
  _mnedc_link "${p}natb" wan 192.168.200.3/24 "${p}lan" p-natb
  local port
  for port in p-relay p-nata p-natb; do _mnedc_in "${p}lan" ip link set "$port" master br0; done
  # NAT A and device A.
  _mnedc_link "${p}nata" lan 192.168.10.1/24 "${p}deva" eth0 "$MNEDC_DEVA_IP/24"
  _mnedc_in "${p}deva" ip route add default via 192.168.10.1
  _mnedc_nat "${p}nata"
  # NAT B, NAT B2 under it, device B under that.
  _mnedc_link "${p}natb" lan 192.168.20.1/24 "${p}natb2" wan 192.168.20.2/24
  _mnedc_in "${p}natb2" ip route add default via 192.168.20.1
  _mnedc_link "${p}natb2" lan 192.168.30.1/24 "${p}devb" eth0 "$MNEDC_DEVB_IP/24"
  _mnedc_in "${p}devb" ip route add default via 192.168.30.1
  _mnedc_nat "${p}natb"
  _mnedc_nat "${p}natb2"
  # Routes towards the inside networks, as a flat LAN might have: so what stops
  # the relay and the devices from reaching each other is the NATs, not routing.
  _mnedc_relay_routes "${p}relay"
  _mnedc_in "${p}nata" ip route add 192.168.30.0/24 via 192.168.200.3
  _mnedc_in "${p}natb" ip route add 192.168.30.0/24 via 192.168.20.2
  _mnedc_in "${p}natb" ip route add 192.168.10.0/24 via 192.168.200.2
}

# The routes a relay host has towards the inside networks (see mnedc_net_up).
_mnedc_relay_routes() {
  _mnedc_in "$1" ip route replace 192.168.10.0/24 via 192.168.200.2
  _mnedc_in "$1" ip route replace 192.168.30.0/24 via 192.168.200.3
}

mnedc_net_add_relay2() {
  local p=$1
  ip netns add "${p}relay2" || return 1
  _mnedc_in "${p}relay2" ip link set lo up
  _mnedc_link "${p}relay2" eth0 "$MNEDC_RELAY2_IP/24" "${p}lan" p-relay2
  _mnedc_in "${p}lan" ip link set p-relay2 master br0
  _mnedc_relay_routes "${p}relay2"
}

mnedc_net_lan_host() { _mnedc_in "${1}lan" ip addr add "$MNEDC_LAN_HOST_IP/24" dev br0; }

# mnedc_net_cut PREFIX ROLE / mnedc_net_mend PREFIX ROLE: a relay host's link to
# the main LAN goes down (its packets vanish: no RST, no FIN), and comes back
# with its routes.
mnedc_net_cut() { _mnedc_in "$1$2" ip link set eth0 down; }
mnedc_net_mend() {
  _mnedc_in "$1$2" ip link set eth0 up
  _mnedc_relay_routes "$1$2"
}

mnedc_net_down() {
  local p=$1 role ns pids
  for role in "${MNEDC_NET_ROLES[@]}" "${MNEDC_NET_EXTRA_ROLES[@]}"; do
    ns="$p$role"
    ip netns list 2>/dev/null | grep -qw "^$ns" || continue
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [[ -n $pids ]] && kill -TERM $pids 2>/dev/null
  done
  sleep 0.3
  for role in "${MNEDC_NET_ROLES[@]}" "${MNEDC_NET_EXTRA_ROLES[@]}"; do
    ns="$p$role"
    ip netns list 2>/dev/null | grep -qw "^$ns" || continue
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "${TMPDIR:-/tmp}/mnedc-state-$p"  # The clients' keys (helpers.sh: mnedc_state_dir).
  return 0
}

# Turns NAT A into a middlebox that lets device A out only to TCP port 443.
mnedc_net_web_only() {
  local ns="${1}nata"
  _mnedc_in "$ns" iptables -D FORWARD -i lan -o wan -j ACCEPT
  _mnedc_in "$ns" iptables -A FORWARD -i lan -o wan -p tcp --dport 443 -j ACCEPT
}

# Turns NAT A into a middlebox that forwards nothing from device A: an HTTP
# proxy on the box itself (listening on 192.168.10.1) is the only way out.
mnedc_net_proxy_only() {
  local ns="${1}nata"
  _mnedc_in "$ns" iptables -F FORWARD
  _mnedc_in "$ns" iptables -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
}

# Why the network cannot be built here, or nothing if it can.
mnedc_net_unavailable() {
  [[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces, TUN, iptables)"; return; }
  [[ -e /dev/net/tun ]] || { echo "/dev/net/tun is missing"; return; }
  command -v ip >/dev/null || { echo "iproute2 is not installed"; return; }
  command -v iptables >/dev/null || { echo "iptables is not installed"; return; }
  ip netns add mnedc-probe$$ 2>/dev/null || { echo "cannot create network namespaces"; return; }
  ip netns del mnedc-probe$$
}
