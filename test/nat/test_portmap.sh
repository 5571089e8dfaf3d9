#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# NAT lab test of qpeer_portmap_t (lib/nat/portmap.c) against miniupnpd
# (UPnP IGD + NAT-PMP + PCP) on peer A's home router:
#
#  1. for each of PCP, NAT-PMP and UPnP (forced by --proto): map a UDP port
#     of A with a short lifetime, check the dnat rule in the router's
#     prerouting_miniupnpd chain, send from the "internet" to the external
#     port and receive it on A, force a renewal, close (which deletes the
#     mapping) and check that the rule is gone;
#  2. the default (all three in parallel) picks PCP; a mapping of a qpeer
#     endpoint's own socket receives a datagram from the internet;
#  3. gateway "reboot": miniupnpd is killed, its rules flushed, restarted;
#     each protocol notices (PCP/NAT-PMP epoch, UPnP entry lookup) and
#     re-creates the mapping, which works again;
#  4. double NAT signals: an observed (STUN) address that differs from the
#     mapped one, then agrees;
#  5. no gateway: a router without miniupnpd (refusing with ICMP, then
#     silently dropping) makes the attempt fail with ENOMAPPING within its
#     deadline, without retrying.
#
#   test_portmap.sh PATH/portmap_probe PATH/udpprobe
#
# Exit 0 all passed, 1 something failed, 77 skipped (not root, no netns/nft,
# miniupnpd or coturn missing). Env: NATLAB_KEEP=1 leaves the labs up.

set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$HERE/lab.sh
PROBE=${1:-${PORTMAP_PROBE:-}}
UDPPROBE=${2:-${UDPPROBE:-}}

if [ -z "$PROBE" ] || [ ! -x "$PROBE" ] || [ -z "$UDPPROBE" ] ||
   [ ! -x "$UDPPROBE" ]; then
  echo "SKIP: usage: test_portmap.sh PATH/portmap_probe PATH/udpprobe"
  exit 77
fi
abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
PROBE=$(abspath "$PROBE")
UDPPROBE=$(abspath "$UDPPROBE")
export UDPPROBE LAB_QUIET=1

msg=$(bash "$LAB" check 2>&1); rc=$?
if [ $rc != 0 ]; then
  echo "$msg"
  echo "SKIP: NAT lab unavailable"
  exit 77
fi
for c in miniupnpd turnserver nft; do
  if ! command -v "$c" >/dev/null 2>&1; then
    echo "SKIP: $c not installed (apt-get install miniupnpd coturn nftables)"
    exit 77
  fi
done

PFX=qpm$$
TMP=$(mktemp -d /tmp/natlab-portmap.XXXXXX)
LABS=()
PASS=0
FAIL=0
PROBE_PID=
PROBE_FD=
STATE_ROOT=${LAB_STATE_ROOT:-/run/qpeer-natlab}
S1=203.0.113.10
S2=203.0.113.11
PEER_A=10.0.1.2

cleanup() {
  local l
  [ -n "$PROBE_FD" ] && exec {PROBE_FD}>&- 2>/dev/null
  [ -n "$PROBE_PID" ] && kill "$PROBE_PID" 2>/dev/null
  if [ -z "${NATLAB_KEEP:-}" ]; then
    for l in "${LABS[@]}"; do bash "$LAB" down "$l" >/dev/null 2>&1; done
  else
    echo "NATLAB_KEEP set: labs left up: ${LABS[*]}"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 1' INT TERM

ok() { PASS=$((PASS + 1)); echo "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
info() { echo "INFO: $*"; }
check() { # description, command... (0 = pass)
  local d=$1; shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}

lx() { local l=$1 n=$2; shift 2; bash "$LAB" exec "$l" "$n" "$@"; }

lab_up() { # name profileA profileB
  LABS+=("$1")
  bash "$LAB" up "$1" "$2" "$3" >"$TMP/lab-$1.log" 2>&1
}

# ------------------------------------------------------------ the probe
# probe_start LAB ARGS...: runs portmap_probe on A with a FIFO as stdin
# (commands) and its output in $OUT.
OUT=
probe_start() {
  local l=$1; shift
  local n=$((${#OUTS[@]} + 1))
  OUT=$TMP/probe$n.out
  OUTS+=("$OUT")
  mkfifo "$TMP/probe$n.in"
  bash "$LAB" exec "$l" a "$PROBE" "$@" <"$TMP/probe$n.in" >"$OUT" \
    2>"$OUT.err" &
  PROBE_PID=$!
  exec {PROBE_FD}>"$TMP/probe$n.in"
}
OUTS=()

probe_cmd() { echo "$1" >&"$PROBE_FD"; }

# probe_wait_exit SECS: closes stdin and waits for the probe to end; fails
# (showing its stderr) if it hangs or exits with an error (a sanitizer
# report, a loop that did not close cleanly).
probe_wait_exit() {
  local i rc
  [ -n "$PROBE_FD" ] && exec {PROBE_FD}>&-
  PROBE_FD=
  for i in $(seq 1 $(($1 * 10))); do
    kill -0 "$PROBE_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$PROBE_PID" 2>/dev/null; then
    kill "$PROBE_PID" 2>/dev/null
    wait "$PROBE_PID" 2>/dev/null
    PROBE_PID=
    bad "probe ($OUT) hung; killed"
    return 1
  fi
  wait "$PROBE_PID" 2>/dev/null
  rc=$?
  PROBE_PID=
  if [ $rc != 0 ]; then
    bad "probe ($OUT) exited with $rc: $(tail -n 5 "$OUT.err" | tr '\n' ' ')"
    return 1
  fi
  return 0
}

# wait_line PATTERN SECS [COUNT]: waits until the probe printed COUNT
# (default 1) lines starting with PATTERN; prints the last. 1 on timeout.
wait_line() {
  local pat=$1 secs=$2 count=${3:-1} i
  for i in $(seq 1 $((secs * 10))); do
    if [ "$(grep -c "^$pat" "$OUT" 2>/dev/null)" -ge "$count" ]; then
      grep "^$pat" "$OUT" | tail -n 1
      return 0
    fi
    sleep 0.1
  done
  return 1
}

field() { # LINE KEY
  echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# --------------------------------------------------------------- checks
rule_present() { # LAB EXTPORT IPORT
  lx "$1" rA nft list chain inet miniupnpd prerouting_miniupnpd 2>/dev/null |
    grep -qE "dport $2 dnat ip to $PEER_A:$3\$"
}

rule_count() { # LAB
  lx "$1" rA nft list chain inet miniupnpd prerouting_miniupnpd 2>/dev/null |
    grep -c "dnat"
}

# reach LAB EXT_IP EXT_PORT IPORT: a datagram from 203.0.113.11:6000 to the
# external tuple arrives at A's port IPORT (udpprobe recv there).
reach() {
  local l=$1 ip=$2 port=$3 iport=$4 f=$TMP/recv.$RANDOM i rp
  lx "$l" a "$UDPPROBE" recv "$iport" 4 >"$f" 2>&1 &
  rp=$!
  for i in $(seq 1 30); do grep -q READY "$f" && break; sleep 0.1; done
  lx "$l" inet "$UDPPROBE" send "$S2:6000" "$ip:$port" 3 >/dev/null 2>&1
  wait "$rp"
  grep -q "GOT from $S2:6000" "$f"
}

# reach_endpoint LAB EXT_IP EXT_PORT: the probe's endpoint reports a raw
# datagram from 203.0.113.11:6001.
reach_endpoint() {
  lx "$1" inet "$UDPPROBE" send "$S2:6001" "$2:$3" 3 >/dev/null 2>&1
  wait_line "GOT from $S2:6001" 3 >/dev/null
}

miniupnpd_restart() { # LAB: kill, forget every mapping (reboot), start
  local l=$1 st=$STATE_ROOT/$1 i
  kill "$(cat "$st/miniupnpd-A.pid")" 2>/dev/null
  for i in $(seq 1 30); do
    lx "$l" rA ss -Hlun 'sport = :5351' 2>/dev/null | grep -q . || break
    sleep 0.1
  done
  lx "$l" rA nft flush chain inet miniupnpd prerouting_miniupnpd
  lx "$l" rA nft flush chain inet miniupnpd postrouting_miniupnpd
  lx "$l" rA nft flush chain inet miniupnpd miniupnpd
  lx "$l" rA timeout 600 miniupnpd -d -f "$st/miniupnpd-A.conf" \
    -P "$st/miniupnpd-A.pid" >>"$st/miniupnpd-A.log" 2>&1 </dev/null &
  for i in $(seq 1 80); do
    lx "$l" rA ss -Hlun 'sport = :5351' 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  return 1
}

# silent_router LAB: (re)creates a table on rA that drops, and counts, the
# probes' requests to it (5351) and SSDP.
silent_router() {
  lx "$1" rA nft delete table ip pmtest 2>/dev/null
  lx "$1" rA nft -f - <<'EOF'
table ip pmtest {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "lan" udp dport 5351 counter drop
    iifname "lan" ip daddr 239.255.255.250 counter drop
  }
}
EOF
}

silent_count() { # LAB: datagrams dropped on their way to 5351
  lx "$1" rA nft list chain ip pmtest input |
    sed -n 's/.*dport 5351 counter packets \([0-9]*\) .*/\1/p'
}

T_START=$(date +%s)

# ====================================================================
# 1. Each protocol: map, reach, renew, delete.
L=$PFX-1
if ! lab_up "$L" eim none || ! bash "$LAB" upnp "$L" A >>"$TMP/lab-$L.log" 2>&1
then
  bad "lab $L (eim + miniupnpd) could not be built: $(tail -n 3 "$TMP/lab-$L.log")"
  echo "$PASS passed, $FAIL failed"
  exit 1
fi
info "lab $L: A=eim behind rA (203.0.113.2) with miniupnpd; B=none"

port=41000
for proto in pcp natpmp upnp; do
  port=$((port + 1))
  probe_start "$L" --proto "$proto" --port "$port" --lifetime 60 \
    --timeout 8000 --check-interval 0
  if ! line=$(wait_line MAPPED 15); then
    bad "$proto: no mapping ($(tail -n 2 "$OUT" | tr '\n' ' '))"
    probe_wait_exit 10
    continue
  fi
  ext=$(field "$line" external)
  eip=${ext%:*}
  eport=${ext##*:}
  life=$(field "$line" lifetime)
  ms=$(field "$line" ms)
  check "$proto: mapping $PEER_A:$port -> $ext by $(field "$line" proto) in $ms ms (lifetime $life s)" \
    [ "$(field "$line" proto)" = "$(echo "$proto" | sed 's/natpmp/nat-pmp/')" \
    -a "$eip" = 203.0.113.2 -a "$(field "$line" internal)" = "$PEER_A:$port" ]
  check "$proto: dnat rule for $eport in prerouting_miniupnpd" \
    rule_present "$L" "$eport" "$port"
  check "$proto: a datagram from the internet to $ext reaches A:$port" \
    reach "$L" "$eip" "$eport" "$port"
  check "$proto: external address not flagged as double NAT" \
    [ "$(field "$line" double_nat)" = 0 ]
  probe_cmd renew
  if rline=$(wait_line RENEWED 15); then
    check "$proto: forced renewal keeps $ext (lifetime $(field "$rline" lifetime) s, at $(field "$rline" ms) ms)" \
      [ "$(field "$rline" external)" = "$ext" ]
    check "$proto: rule still there after renewal" \
      rule_present "$L" "$eport" "$port"
  else
    bad "$proto: no renewal ($(tail -n 2 "$OUT" | tr '\n' ' '))"
  fi
  probe_cmd close
  if cline=$(wait_line CLOSED 10); then
    c0=$(field "$(wait_line CLOSING 1)" ms)
    ok "$proto: closed (delete answered) in $(($(field "$cline" ms) - c0)) ms"
  else
    bad "$proto: close did not finish"
  fi
  probe_wait_exit 10
  if rule_present "$L" "$eport" "$port"; then
    bad "$proto: rule still present after close"
  else
    ok "$proto: rule gone after close"
  fi
done

# ====================================================================
# 2. All protocols at once (the default) prefer PCP; map an endpoint.
probe_start "$L" --endpoint 41010 --timeout 8000
if line=$(wait_line MAPPED 15); then
  ext=$(field "$line" external)
  check "any: the parallel attempt chose PCP (got $(field "$line" proto) in $(field "$line" ms) ms)" \
    [ "$(field "$line" proto)" = pcp ]
  check "any: a datagram to $ext reaches the qpeer endpoint's socket" \
    reach_endpoint "$L" "${ext%:*}" "${ext##*:}"
  check "any: only one mapping was made (rules: $(rule_count "$L"))" \
    [ "$(rule_count "$L")" = 1 ]
else
  bad "any: no mapping ($(tail -n 2 "$OUT" | tr '\n' ' '))"
fi
probe_cmd close
if cline=$(wait_line CLOSED 10); then
  d=$(($(field "$cline" ms) - $(field "$(wait_line CLOSING 1)" ms)))
  # PCP answered at once, so UPnP discovery never started: nothing to wait
  # for in the thread pool.
  check "any: closed in $d ms (delete answered, no SSDP discovery pending)" \
    [ "$d" -lt 500 ]
else
  bad "any: close did not finish"
fi
probe_wait_exit 10
check "any: no rule left after close" [ "$(rule_count "$L")" = 0 ]

# ====================================================================
# 3. Gateway reboot: the mapping is re-created.
port=41020
for proto in pcp natpmp upnp; do
  port=$((port + 1))
  probe_start "$L" --proto "$proto" --port "$port" --lifetime 120 \
    --timeout 8000 --check-interval 1000
  if ! line=$(wait_line MAPPED 15); then
    bad "$proto reboot: no mapping"
    probe_wait_exit 10
    continue
  fi
  ext=$(field "$line" external)
  sleep 3 # let the server epoch advance past the restart's
  if ! miniupnpd_restart "$L"; then
    bad "$proto reboot: miniupnpd did not restart"
    probe_wait_exit 10
    continue
  fi
  t0=$(date +%s%N)
  if rline=$(wait_line RECREATED 20); then
    t1=$(date +%s%N)
    ok "$proto reboot: gateway state loss noticed, mapping re-created $(((t1 - t0) / 1000000)) ms after the restart (epoch $(field "$line" epoch) -> $(field "$rline" epoch))"
    rext=$(field "$rline" external)
    check "$proto reboot: dnat rule for ${rext##*:} is back" \
      rule_present "$L" "${rext##*:}" "$port"
    check "$proto reboot: a datagram to $rext reaches A again" \
      reach "$L" "${rext%:*}" "${rext##*:}" "$port"
  else
    bad "$proto reboot: not noticed ($(tail -n 2 "$OUT" | tr '\n' ' '))"
  fi
  probe_cmd close
  wait_line CLOSED 10 >/dev/null || bad "$proto reboot: close did not finish"
  probe_wait_exit 10
  check "$proto reboot: rule gone after close" \
    [ "$(rule_count "$L")" = 0 ]
done

# ====================================================================
# 4. Double NAT signal from a STUN-observed address.
probe_start "$L" --proto pcp --port 41030 --observed 198.51.100.77 \
  --check-interval 0
if line=$(wait_line MAPPED 15); then
  check "double NAT: external 203.0.113.2 vs observed 198.51.100.77 flagged ($(field "$line" flags))" \
    [ "$(field "$line" double_nat)" = 1 ]
  probe_cmd "observed 203.0.113.2"
  if cline=$(wait_line CHANGED 5); then
    check "double NAT: cleared once the observed address agrees ($(field "$cline" flags))" \
      [ "$(field "$cline" double_nat)" = 0 ]
  else
    bad "double NAT: no CHANGED event after the observed address changed"
  fi
else
  bad "double NAT: no mapping"
fi
probe_cmd close
wait_line CLOSED 10 >/dev/null
probe_wait_exit 10

# ====================================================================
# 6. Timers: renewal at half the granted lifetime, a mapping lost while
#    the gateway is unreachable (renewal fails until expiry), recovery
#    after the back-off. PCP runs alongside: miniupnpd grants it no less
#    than 120 s, so its own renewal comes at 60 s.
PCP_OUT=$TMP/pcp-natural.out
bash "$LAB" exec "$L" a "$PROBE" --proto pcp --port 41060 --lifetime 60 \
  --check-interval 0 --hold 66000 </dev/null >"$PCP_OUT" 2>"$PCP_OUT.err" &
PCP_PID=$!
for proto in natpmp upnp; do
  probe_start "$L" --proto "$proto" --port 41061 --lifetime 6 \
    --check-interval 0
  if line=$(wait_line MAPPED 15) && rline=$(wait_line RENEWED 10); then
    d=$(($(field "$rline" ms) - $(field "$line" ms)))
    check "$proto: renewed by itself $d ms after mapping (granted $(field "$line" lifetime) s)" \
      [ "$d" -ge 2500 -a "$d" -le 4000 ]
  else
    bad "$proto: no renewal of its own ($(tail -n 2 "$OUT" | tr '\n' ' '))"
  fi
  probe_cmd close
  wait_line CLOSED 10 >/dev/null
  probe_wait_exit 10
done
probe_start "$L" --proto natpmp --port 41062 --lifetime 6 --check-interval 0 \
  --timeout 2000 --retry-min 1000 --retry-max 2000
if line=$(wait_line MAPPED 15); then
  silent_router "$L"
  if fline=$(wait_line FAILED 15); then
    d=$(($(field "$fline" ms) - $(field "$line" ms)))
    check "natpmp loss: gateway silent, mapping reported lost ($(field "$fline" status)) at expiry, $d ms after mapping" \
      [ "$(field "$fline" status)" = ENOMAPPING -a "$d" -ge 5500 -a "$d" -le 7000 ]
    sleep 3 # a few failed retries
    lx "$L" rA nft delete table ip pmtest
    if mline=$(wait_line MAPPED 10 2); then
      ok "natpmp loss: mapped again after the gateway came back ($(($(field "$mline" ms) - $(field "$fline" ms))) ms after the loss)"
    else
      bad "natpmp loss: no new mapping after the gateway came back"
    fi
    check "natpmp loss: the failure was reported once ($(grep -c '^FAILED' "$OUT") FAILED lines)" \
      [ "$(grep -c '^FAILED' "$OUT")" = 1 ]
  else
    bad "natpmp loss: not reported"
    lx "$L" rA nft delete table ip pmtest 2>/dev/null
  fi
else
  bad "natpmp loss: no mapping"
fi
probe_cmd close
wait_line CLOSED 10 >/dev/null
probe_wait_exit 10
# The PCP mapping made at the start of this section renews at 60 s.
for i in $(seq 1 700); do
  grep -q '^RENEWED' "$PCP_OUT" && break
  kill -0 "$PCP_PID" 2>/dev/null || break
  sleep 0.1
done
if rline=$(grep '^RENEWED' "$PCP_OUT" | head -n 1) && [ -n "$rline" ]; then
  line=$(grep '^MAPPED' "$PCP_OUT")
  d=$(($(field "$rline" ms) - $(field "$line" ms)))
  check "pcp: renewed by itself $d ms after mapping (granted $(field "$line" lifetime) s)" \
    [ "$d" -ge 59000 -a "$d" -le 61000 ]
else
  bad "pcp: no renewal of its own ($(tail -n 2 "$PCP_OUT" | tr '\n' ' '))"
fi
wait "$PCP_PID"
check "pcp: probe ended cleanly, no rule left" \
  [ $? = 0 -a "$(rule_count "$L")" = 0 ]

# ====================================================================
# 5. No gateway: a plain eim router (no miniupnpd).
L2=$PFX-2
if lab_up "$L2" eim none; then
  probe_start "$L2" --port 41040 --timeout 4000 --exit-on-fail
  if line=$(wait_line FAILED 15); then
    ms=$(field "$line" ms)
    check "no gateway (ICMP refused): $(field "$line" status) after $ms ms (deadline 4000)" \
      [ "$(field "$line" status)" = ENOMAPPING -a "$ms" -le 4300 ]
  else
    bad "no gateway: no failure reported"
  fi
  probe_wait_exit 10
  check "no gateway: exactly one failure report" \
    [ "$(grep -c '^FAILED' "$OUT")" = 1 ]
  # A router that silently drops what the probes send it (counted).
  silent_router "$L2"
  probe_start "$L2" --port 41040 --timeout 4000 --exit-on-fail
  if line=$(wait_line FAILED 15); then
    ms=$(field "$line" ms)
    check "no gateway (silent): $(field "$line" status) at the deadline ($ms ms, deadline 4000)" \
      [ "$(field "$line" status)" = ENOMAPPING -a "$ms" -ge 3900 -a "$ms" -le 4300 ]
  else
    bad "silent gateway: no failure reported"
  fi
  probe_wait_exit 10
  # PCP (IRT 3 s: 0, ~3 s, + 1 delete on giving up) and libnatpmp (0,
  # .25, .75, 1.75, 3.75 s).
  n=$(silent_count "$L2")
  check "no gateway (silent): no retry storm ($n datagrams to 5351 in 4 s)" \
    [ "$n" -ge 2 -a "$n" -le 8 ]
  silent_router "$L2"
  # PCP alone against the silent router: only the RFC schedule.
  probe_start "$L2" --proto pcp --port 41041 --timeout 7000 --exit-on-fail
  if line=$(wait_line FAILED 15); then
    ms=$(field "$line" ms)
    check "no gateway (silent, PCP only): $(field "$line" status) at $ms ms (deadline 7000)" \
      [ "$(field "$line" status)" = ENOMAPPING -a "$ms" -ge 6900 -a "$ms" -le 7300 ]
  else
    bad "silent gateway, PCP only: no failure reported"
  fi
  probe_wait_exit 10
  n=$(silent_count "$L2")
  # Requests at 0 and 3 s +-10 % (the next would be at 9 s), then one
  # delete with the nonce when giving up, in case a reply was lost.
  check "no gateway (silent, PCP only): $n datagrams in 7 s (2 MAP + 1 delete)" \
    [ "$n" = 3 ]
else
  bad "lab $L2 could not be built"
fi

info "took $(($(date +%s) - T_START)) s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
