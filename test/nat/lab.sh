#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# qpeer NAT lab: network namespaces + nftables NAT profiles (see doc/nat-lab.md).
#
#   lab.sh check                          exit 0 if usable, 77 (with a reason) if not
#   lab.sh up NAME PROFILE_A PROFILE_B    build a lab; profiles:
#                                         none eim symmetric fullcone double blocked
#   lab.sh down NAME                      delete everything of lab NAME (idempotent)
#   lab.sh exec NAME NODE cmd...          run cmd in a node (inet relay a b rA rB cgA cgB)
#   lab.sh addr NAME NODE                 print the node's main IPv4 address
#   lab.sh info NAME                      print the lab's address plan as KEY=VALUE lines
#   lab.sh nodes NAME                     list the lab's existing nodes
#   lab.sh stun NAME                      start coturn (STUN only) in inet on the two STUN addresses
#   lab.sh upnp NAME A|B                  start miniupnpd (UPnP IGD + NAT-PMP + PCP) on that home router
#
# Environment for `up`:
#   LAB_LOSS_PCT=N    drop N % of the IP packets in each direction on each side's WAN edge
#   LAB_DELAY_MS=N    hold each packet arriving from the internet at each side's WAN edge
#                     for N ms (NFQUEUE + `udpprobe delay`; needs UDPPROBE or udpprobe in PATH)
#   LAB_INPUT_DROP=1  routers drop new inbound UDP addressed to themselves (a home-router
#                     firewall); default: such packets reach the router's stack (plain Linux)
#   LAB_ALLOW=IP      the one internet host a `blocked` side may reach with UDP (198.51.100.1)
#   LAB_TTL=S         helper daemons (delay, coturn, miniupnpd) exit by themselves after S s (3600)
#   UDPPROBE=PATH     the udpprobe binary (for LAB_DELAY_MS)
#
# Network rules: the lab uses 203.0.113.0/24 and 198.51.100.0/24 as its internet,
# 100.64.0.0/10 for CGNAT and 10.0.0.0/8 behind the home NATs, all inside namespaces
# this script creates. The root namespace gets no address or route into the lab.

set -u
set -o pipefail

PROFILES="none eim symmetric fullcone double blocked"
NODES="a b rA rB cgA cgB relay inet"
STATE_ROOT=${LAB_STATE_ROOT:-/run/qpeer-natlab}

# Address plan
INET_IP=203.0.113.1
STUN1_IP=203.0.113.10
STUN2_IP=203.0.113.11
PUB_A=203.0.113.2
PUB_B=203.0.113.3
RELAY_IP=198.51.100.1
RELAY_GW=198.51.100.254
LAB_ALLOW=${LAB_ALLOW:-$RELAY_IP}
LAB_TTL=${LAB_TTL:-3600}

die() { echo "lab.sh: $*" >&2; exit 1; }
log() { [ -n "${LAB_QUIET:-}" ] || echo "lab.sh: $*" >&2; }

# --------------------------------------------------------------- helpers
ns() { echo "$NAME-$1"; }
nsx() { local n=$1; shift; ip netns exec "$NAME-$n" "$@"; }
have_ns() { [ -e "/run/netns/$NAME-$1" ]; }

valid_name() {
  [[ $1 =~ ^[A-Za-z0-9_]([A-Za-z0-9_-]{0,23})$ ]] || die "bad lab name '$1' (letters, digits, _ and -, at most 24)"
}

valid_profile() {
  local p
  for p in $PROFILES; do [ "$p" = "$1" ] && return 0; done
  die "unknown profile '$1' (one of: $PROFILES)"
}

check_env() {
  if [ "$(id -u)" != 0 ]; then echo "lab.sh: SKIP: needs root (network namespaces, nftables)"; return 77; fi
  local t
  for t in ip nft; do
    command -v "$t" >/dev/null 2>&1 || { echo "lab.sh: SKIP: '$t' not installed (apt-get install iproute2 nftables)"; return 77; }
  done
  local probe="qpeer-natlab-check-$$"
  if ! ip netns add "$probe" 2>/dev/null; then
    echo "lab.sh: SKIP: 'ip netns add' does not work here (no network namespaces?)"; return 77
  fi
  local ok=0
  if ip netns exec "$probe" nft -f - 2>/dev/null <<'EOF'
table ip natlabcheck {
  chain p { type nat hook postrouting priority srcnat; policy accept; oifname "lo" masquerade; }
}
EOF
  then ok=1; fi
  ip netns del "$probe" 2>/dev/null
  if [ $ok != 1 ]; then echo "lab.sh: SKIP: nftables NAT does not work in a namespace"; return 77; fi
  return 0
}

mkns() {
  local n=$1
  ip netns add "$NAME-$n" || die "cannot create namespace $NAME-$n"
  nsx "$n" ip link set lo up
  nsx "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
  nsx "$n" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 2>/dev/null
  echo "$n" >>"$STATE/nodes"
}

# veth between two nodes, created directly inside both namespaces.
vlink() {
  ip link add "$2" netns "$NAME-$1" type veth peer name "$4" netns "$NAME-$3" ||
    die "cannot create veth $1:$2 <-> $3:$4"
  nsx "$1" ip link set "$2" up
  nsx "$3" ip link set "$4" up
}

# ---------------------------------------------------------------- nftables
# The `prerouting` nat chain must exist even when empty, or replies are not
# un-NATed in every setup (see protocols.md §7.3).
nft_router() { # node profile
  local n=$1 p=$2 masq="masquerade" extra_fwd="" map="" pre=""
  case $p in
    symmetric) masq="masquerade fully-random" ;;
    fullcone)
      map='map fullcone { type inet_service : ipv4_addr; flags dynamic,timeout; timeout 120s; }'
      pre='iifname "wan" meta l4proto udp dnat ip to udp dport map @fullcone'
      extra_fwd='iifname "lan" oifname "wan" meta l4proto udp update @fullcone { udp sport : ip saddr }
    iifname "wan" ct status dnat accept' ;;
    blocked)
      extra_fwd="iifname \"lan\" oifname \"wan\" meta l4proto udp ip daddr != $LAB_ALLOW counter drop" ;;
  esac
  # LAB_INPUT_DROP=1: drop new inbound UDP addressed to the router itself, as
  # home-router firewalls do. A dropped packet never gets a confirmed conntrack
  # entry, so an early peer probe cannot steal the mapping (see doc).
  local input=""
  [ "${LAB_INPUT_DROP:-0}" = 1 ] && input='chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan" meta l4proto udp ct state new counter drop
  }'
  nsx "$n" nft -f - <<EOF || die "nft ruleset for $n ($p) failed"
table ip natlab {
  $map
  $input
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    $pre
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" $masq
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    $extra_fwd
    iifname "wan" ct state established,related accept
    iifname "wan" counter drop
  }
}
EOF
}

nft_loss() { # node wan-if pct
  nsx "$1" nft -f - <<EOF || die "nft loss rules for $1 failed"
table inet natlab_loss {
  chain in {
    type filter hook prerouting priority raw; policy accept;
    iifname "$2" numgen random mod 100 < $3 counter drop
  }
  chain out {
    type filter hook postrouting priority 300; policy accept;
    oifname "$2" numgen random mod 100 < $3 counter drop
  }
}
EOF
}

find_udpprobe() {
  if [ -n "${UDPPROBE:-}" ] && [ -x "$UDPPROBE" ]; then echo "$UDPPROBE"; return 0; fi
  command -v udpprobe 2>/dev/null && return 0
  return 1
}

# Inbound delay on a side's edge: NFQUEUE in the raw table (before conntrack)
# and `udpprobe delay` holding each verdict. The kernel has no netem.
add_delay() { # node wan-if ms
  local probe
  probe=$(find_udpprobe) || die "LAB_DELAY_MS needs UDPPROBE=/path/to/udpprobe"
  command -v iptables >/dev/null || die "LAB_DELAY_MS needs iptables (NFQUEUE target)"
  nsx "$1" timeout "$LAB_TTL" "$probe" delay 0 "$3" "$LAB_TTL" >"$STATE/delay-$1.log" 2>&1 &
  local i
  for i in $(seq 1 50); do
    grep -q '^DELAY' "$STATE/delay-$1.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q '^DELAY' "$STATE/delay-$1.log" || die "delay helper in $1 did not start: $(cat "$STATE/delay-$1.log")"
  nsx "$1" iptables -t raw -A PREROUTING -i "$2" -j NFQUEUE --queue-num 0 --queue-bypass ||
    die "NFQUEUE rule in $1 failed"
}

# ------------------------------------------------------------------- sides
# Side X (A or B), index i (1 or 2). The node holding the public address is
# the side's "edge": the peer itself (none), its home router, or the CGNAT.
build_side() {
  local X=$1 p=$2 i=$3 x pub lan cg edge edge_if
  x=$(echo "$X" | tr AB ab)
  pub=$PUB_A; [ "$X" = B ] && pub=$PUB_B
  lan=10.0.$i
  cg=100.64.$i
  case $p in
    none)
      mkns "$x"
      vlink inet "p$X" "$x" eth0
      nsx inet ip link set "p$X" master br0
      nsx "$x" ip addr add "$pub/24" dev eth0
      nsx "$x" ip route add default via "$INET_IP"
      edge=$x; edge_if=eth0 ;;
    eim|symmetric|fullcone|blocked)
      mkns "r$X"; mkns "$x"
      vlink inet "p$X" "r$X" wan
      nsx inet ip link set "p$X" master br0
      vlink "r$X" lan "$x" eth0
      nsx "r$X" ip addr add "$pub/24" dev wan
      nsx "r$X" ip route add default via "$INET_IP"
      nsx "r$X" ip addr add "$lan.1/24" dev lan
      nsx "r$X" sysctl -qw net.ipv4.ip_forward=1
      nsx "$x" ip addr add "$lan.2/24" dev eth0
      nsx "$x" ip route add default via "$lan.1"
      nft_router "r$X" "$p"
      edge=r$X; edge_if=wan ;;
    double)
      mkns "cg$X"; mkns "r$X"; mkns "$x"
      vlink inet "p$X" "cg$X" wan
      nsx inet ip link set "p$X" master br0
      vlink "cg$X" lan "r$X" wan
      vlink "r$X" lan "$x" eth0
      nsx "cg$X" ip addr add "$pub/24" dev wan
      nsx "cg$X" ip route add default via "$INET_IP"
      nsx "cg$X" ip addr add "$cg.1/24" dev lan
      nsx "cg$X" sysctl -qw net.ipv4.ip_forward=1
      nsx "r$X" ip addr add "$cg.2/24" dev wan
      nsx "r$X" ip route add default via "$cg.1"
      nsx "r$X" ip addr add "$lan.1/24" dev lan
      nsx "r$X" sysctl -qw net.ipv4.ip_forward=1
      nsx "$x" ip addr add "$lan.2/24" dev eth0
      nsx "$x" ip route add default via "$lan.1"
      nft_router "cg$X" eim
      nft_router "r$X" eim
      edge=cg$X; edge_if=wan ;;
  esac
  {
    echo "PROFILE_$X=$p"
    echo "PUB_$X=$pub"
    echo "EDGE_$X=$edge"
    echo "EDGE_IF_$X=$edge_if"
    if [ "$p" = none ]; then echo "PEER_$X=$pub"; else echo "PEER_$X=$lan.2"; fi
  } >>"$STATE/info"
  if [ -n "${LAB_LOSS_PCT:-}" ] && [ "${LAB_LOSS_PCT}" != 0 ]; then
    [[ $LAB_LOSS_PCT =~ ^[0-9]+$ ]] && [ "$LAB_LOSS_PCT" -le 100 ] || die "bad LAB_LOSS_PCT"
    nft_loss "$edge" "$edge_if" "$LAB_LOSS_PCT"
  fi
  if [ -n "${LAB_DELAY_MS:-}" ] && [ "${LAB_DELAY_MS}" != 0 ]; then
    [[ $LAB_DELAY_MS =~ ^[0-9]+$ ]] && [ "$LAB_DELAY_MS" -le 5000 ] || die "bad LAB_DELAY_MS"
    add_delay "$edge" "$edge_if" "$LAB_DELAY_MS"
  fi
}

# ---------------------------------------------------------------- commands
cmd_up() {
  [ $# = 3 ] || die "usage: lab.sh up NAME PROFILE_A PROFILE_B"
  NAME=$1; valid_name "$NAME"; valid_profile "$2"; valid_profile "$3"
  local rc; check_env >&2; rc=$?; [ $rc = 0 ] || exit $rc
  have_ns inet && die "lab '$NAME' already exists (lab.sh down $NAME)"
  STATE=$STATE_ROOT/$NAME
  rm -rf "$STATE"; mkdir -p "$STATE" || die "cannot create $STATE"
  : >"$STATE/nodes"
  # On any failure while building, tear down what exists.
  trap 'echo "lab.sh: up failed, cleaning up" >&2; cmd_down "$NAME" >/dev/null 2>&1' EXIT
  {
    echo "NAME=$NAME"
    echo "INET_IP=$INET_IP"
    echo "STUN1_IP=$STUN1_IP"
    echo "STUN2_IP=$STUN2_IP"
    echo "RELAY_IP=$RELAY_IP"
    echo "LAB_ALLOW=$LAB_ALLOW"
    echo "LAB_DELAY_MS=${LAB_DELAY_MS:-0}"
    echo "LAB_LOSS_PCT=${LAB_LOSS_PCT:-0}"
    echo "LAB_INPUT_DROP=${LAB_INPUT_DROP:-0}"
  } >"$STATE/info"

  mkns inet
  nsx inet ip link add br0 type bridge
  nsx inet ip link set br0 up
  nsx inet ip addr add "$INET_IP/24" dev br0
  nsx inet ip addr add "$STUN1_IP/24" dev br0
  nsx inet ip addr add "$STUN2_IP/24" dev br0
  nsx inet sysctl -qw net.ipv4.ip_forward=1
  mkns relay
  vlink inet prl relay eth0
  nsx inet ip addr add "$RELAY_GW/24" dev prl
  nsx relay ip addr add "$RELAY_IP/24" dev eth0
  nsx relay ip route add default via "$RELAY_GW"

  build_side A "$2" 1
  build_side B "$3" 2
  trap - EXIT
  log "lab '$NAME' up: A=$2 B=$3 (state in $STATE)"
}

cmd_down() {
  [ $# = 1 ] || die "usage: lab.sh down NAME"
  NAME=$1; valid_name "$NAME"
  local n pids i
  # Stop the processes still running inside the lab's namespaces (only ours).
  for n in $NODES; do
    have_ns "$n" || continue
    pids=$(ip netns pids "$NAME-$n" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
  done
  for i in $(seq 1 20); do
    pids=""
    for n in $NODES; do
      have_ns "$n" && pids="$pids $(ip netns pids "$NAME-$n" 2>/dev/null)"
    done
    [ -z "${pids// /}" ] && break
    [ "$i" = 20 ] && kill -9 $pids 2>/dev/null
    sleep 0.1
  done
  for n in $NODES; do
    have_ns "$n" && ip netns del "$NAME-$n" 2>/dev/null
  done
  rm -rf "${STATE_ROOT:?}/$NAME"
  return 0
}

cmd_exec() {
  [ $# -ge 3 ] || die "usage: lab.sh exec NAME NODE cmd..."
  NAME=$1; valid_name "$NAME"; local n=$2; shift 2
  have_ns "$n" || die "no node '$n' in lab '$NAME'"
  exec ip netns exec "$NAME-$n" "$@"
}

cmd_addr() {
  [ $# = 2 ] || die "usage: lab.sh addr NAME NODE"
  NAME=$1; valid_name "$NAME"; local n=$2 dev
  have_ns "$n" || die "no node '$n' in lab '$NAME'"
  case $n in
    inet) echo "$INET_IP"; return 0 ;;
    relay) echo "$RELAY_IP"; return 0 ;;
    a|b) dev=eth0 ;;
    *) dev=wan ;;
  esac
  nsx "$n" ip -4 -o addr show dev "$dev" scope global | awk '{split($4, a, "/"); print a[1]; exit}'
}

cmd_info() {
  [ $# = 1 ] || die "usage: lab.sh info NAME"
  NAME=$1; valid_name "$NAME"
  [ -f "$STATE_ROOT/$NAME/info" ] || die "no lab '$NAME'"
  cat "$STATE_ROOT/$NAME/info"
}

cmd_nodes() {
  [ $# = 1 ] || die "usage: lab.sh nodes NAME"
  NAME=$1; valid_name "$NAME"; local n
  for n in $NODES; do have_ns "$n" && echo "$n"; done
  return 0
}

wait_udp_port() { # node port tries
  local i
  for i in $(seq 1 "$3"); do
    nsx "$1" ss -Hlun "sport = :$2" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  return 1
}

cmd_stun() {
  [ $# = 1 ] || die "usage: lab.sh stun NAME"
  NAME=$1; valid_name "$NAME"; STATE=$STATE_ROOT/$NAME
  have_ns inet || die "no lab '$NAME'"
  command -v turnserver >/dev/null || die "coturn not installed (apt-get install coturn)"
  if [ -f "$STATE/turnserver.pid" ] && kill -0 "$(cat "$STATE/turnserver.pid")" 2>/dev/null; then
    return 0
  fi
  nsx inet timeout "$LAB_TTL" turnserver -n --stun-only -z --no-cli --no-tls --no-dtls \
    -L "$STUN1_IP" -L "$STUN2_IP" -p 3478 --log-file=stdout --simple-log \
    --pidfile="$STATE/turnserver.pid" >"$STATE/turnserver.log" 2>&1 &
  echo $! >"$STATE/turnserver.wrapper.pid"
  wait_udp_port inet 3478 50 || die "coturn did not start (see $STATE/turnserver.log)"
  log "STUN (coturn) on $STUN1_IP and $STUN2_IP ports 3478/3479"
}

cmd_upnp() {
  [ $# = 2 ] || die "usage: lab.sh upnp NAME A|B"
  NAME=$1; valid_name "$NAME"; STATE=$STATE_ROOT/$NAME
  local X=$2 r lan
  case $X in A|a) X=A; lan=10.0.1.0/24 ;; B|b) X=B; lan=10.0.2.0/24 ;; *) die "side must be A or B" ;; esac
  r=r$X
  have_ns "$r" || die "side $X of lab '$NAME' has no home router (profile none?)"
  command -v miniupnpd >/dev/null || die "miniupnpd not installed (apt-get install miniupnpd)"
  cmd_stun "$NAME"
  # miniupnpd's own table layout (Debian's nft_init.sh is broken): replaces
  # the profile's table on this router; the NAT stays a plain masquerade.
  nsx "$r" nft delete table ip natlab 2>/dev/null
  nsx "$r" nft -f - <<'EOF' || die "miniupnpd nftables setup failed"
table inet miniupnpd {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" accept
    iifname "wan" oifname "lan" jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    jump postrouting_miniupnpd
    oifname "wan" masquerade
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
EOF
  # No inline comments: miniupnpd silently ignores a line with one.
  cat >"$STATE/miniupnpd-$X.conf" <<EOF
ext_ifname=wan
listening_ip=lan
http_port=5000
enable_natpmp=yes
enable_upnp=yes
ipv6_disable=yes
secure_mode=yes
ext_perform_stun=yes
ext_stun_host=$STUN1_IP
ext_stun_port=3478
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
uuid=00000000-0000-4000-8000-0000000000a$(echo $X | tr AB 12)
allow 1024-65535 $lan 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
  nsx "$r" timeout "$LAB_TTL" miniupnpd -d -f "$STATE/miniupnpd-$X.conf" -P "$STATE/miniupnpd-$X.pid" \
    >"$STATE/miniupnpd-$X.log" 2>&1 &
  wait_udp_port "$r" 5351 80 || die "miniupnpd did not open NAT-PMP/PCP port 5351 (see $STATE/miniupnpd-$X.log)"
  log "miniupnpd on $r: UPnP http://$(echo "$lan" | sed 's/0\/24$/1/'):5000, NAT-PMP/PCP udp 5351"
}

main() {
  [ $# -ge 1 ] || { sed -n '3,26p' "$0"; exit 2; }
  local c=$1; shift
  case $c in
    check) check_env ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    exec) cmd_exec "$@" ;;
    addr) cmd_addr "$@" ;;
    info) cmd_info "$@" ;;
    nodes) cmd_nodes "$@" ;;
    stun) cmd_stun "$@" ;;
    upnp) cmd_upnp "$@" ;;
    -h|--help|help) sed -n '3,26p' "$0" ;;
    *) die "unknown command '$c' (check up down exec addr info nodes stun upnp)" ;;
  esac
}

main "$@"
