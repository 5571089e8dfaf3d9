#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop, direction 2: qpeer's CONNECT-UDP client (qpeer_tunnel_t, driven
# by qpeer_via_proxy through the public API) through the independent proxy
# (masque_proxy, ix engine, no libqpeer). Checks: raw UDP echo over QUIC
# DATAGRAM frames; a full inner QUIC connection through the tunnel; the
# capsule fallback when the proxy does not announce SETTINGS_H3_DATAGRAM
# (qpeer must then never send a DATAGRAM frame); a bearer token accepted;
# a 401 refusal with Proxy-Status read by qpeer. Then the independent
# client against the independent proxy, as a control. Loopback, port 0.
# Usage: test_qpeer_proxy.sh QPEER_VIA_PROXY MASQUE_PROXY UDP_ECHO MASQUE_CLIENT
set -uo pipefail
via=$1 proxy=$2 echo_bin=$3 client=$4
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
pass=0 fail=0
check() { if eval "$2"; then echo "PASS: $1"; pass=$((pass+1)); else echo "FAIL: $1"; fail=$((fail+1)); fi; }
wait_for() { # FILE REGEX: bounded (10 s); the programs print these lines once listening
  local i
  for i in $(seq 200); do grep -Eq "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}
# start_proxy NAME ARGS...: a masque_proxy; sets port_NAME and pin_NAME.
start_proxy() {
  local name=$1; shift
  "$proxy" --timeout 100 "$@" > "$work/proxy-$name.out" 2> "$work/proxy-$name.err" &
  pids+=($!)
  eval "ppid_$name=$!"
  wait_for "$work/proxy-$name.out" "^masque proxy on" || return 1
  eval "port_$name=$(sed -n 's/^masque proxy on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/proxy-$name.out")"
  eval "pin_$name=$(sed -n 's/^pin: //p' "$work/proxy-$name.out")"
}
# stop_proxy NAME: SIGTERM, wait for its exit and its stats line.
stop_proxy() {
  local p; eval "p=\$ppid_$1"
  kill -TERM "$p" 2>/dev/null; wait "$p"
  grep "^stats:" "$work/proxy-$1.out" > "$work/stats-$1"
}
stat_of() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" "$work/stats-$1"; }

"$echo_bin" 127.0.0.1 --timeout 110 > "$work/echo.out" 2> "$work/echo.log" &
pids+=($!)
wait_for "$work/echo.out" "^udp echo on" || { echo "FAIL: udp_echo did not start"; exit 1; }
eport=$(sed -n 's/^udp echo on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/echo.out")

start_proxy dg || { echo "FAIL: masque_proxy did not start"; cat "$work/proxy-dg.err"; exit 1; }
start_proxy nodg --no-h3-datagram || { echo "FAIL: masque_proxy did not start"; exit 1; }
start_proxy tok --token s3cret-token || { echo "FAIL: masque_proxy did not start"; exit 1; }
check "three independent proxies and the echo are up" '[ -n "$port_dg" ] && [ -n "$pin_nodg" ] && [ -n "$port_tok" ]'

via_run() { # name expected-rc args...
  local name=$1 want=$2; shift 2
  timeout 30 "$via" --timeout 8000 "$@" > "$work/$name.out" 2> "$work/$name.err"
  [ $? = "$want" ]
}

# 1. Raw UDP through qpeer's tunnel, HTTP/3 datagrams on both sides.
check "qpeer tunnel -> independent proxy -> echo (20 payloads)" \
  "via_run raw 0 --proxy 127.0.0.1:$port_dg --pin $pin_dg --target 127.0.0.1:$eport --count 20"
check "  qpeer saw the proxy's SETTINGS_H3_DATAGRAM" 'grep -q "peer_h3_datagram=1" "$work/raw.out"'
check "  qpeer sent and received QUIC DATAGRAM frames" \
  'grep -Eq "tx_quic_datagrams=[1-9][0-9]* .*rx_quic_datagrams=[1-9]" "$work/raw.out"'
check "  all 20 echoed byte-exact" 'grep -q "^echoed 20 of 20 byte-exact, 0 unmatched" "$work/raw.out"'

# 2. A full QUIC connection (qpeer client and server) through the tunnel.
check "inner QUIC connection through the independent proxy" \
  "via_run quic 0 --proxy 127.0.0.1:$port_dg --pin $pin_dg --quic --count 20"
check "  inner handshake done and 20 inner datagrams echoed" \
  'grep -q "handshake through the tunnel done" "$work/quic.out" && grep -q "^echoed 20 of 20" "$work/quic.out"'

# 3. The proxy does not announce H3_DATAGRAM: qpeer must use capsules only.
check "qpeer tunnel with capsules only (proxy without H3_DATAGRAM)" \
  "via_run caps 0 --proxy 127.0.0.1:$port_nodg --pin $pin_nodg --target 127.0.0.1:$eport --count 20"
check "  qpeer sent no QUIC DATAGRAM frame, only capsules" \
  'grep -Eq "tx_quic_datagrams=0 tx_capsules=20 rx_quic_datagrams=0 rx_capsules=20" "$work/caps.out"'
check "inner QUIC connection over capsules" \
  "via_run capsquic 0 --proxy 127.0.0.1:$port_nodg --pin $pin_nodg --quic --count 10"

# 4. Tokens: qpeer's authorization header is accepted; no token is a 401
#    whose status and Proxy-Status qpeer reports.
check "qpeer with a bearer token accepted" \
  "via_run tok 0 --proxy 127.0.0.1:$port_tok --pin $pin_tok --target 127.0.0.1:$eport --token s3cret-token --count 5"
check "qpeer without a token: refused with 401" \
  "via_run notok 0 --proxy 127.0.0.1:$port_tok --pin $pin_tok --target 127.0.0.1:$eport --expect-status 401"
check "  qpeer reports EREFUSED with the proxy's Proxy-Status" \
  'grep -Eq "^tunnel: .*:status 401, proxy-status: ix-masque-proxy; error=http_request_denied" "$work/notok.out"'

# 5. Control: the independent client against the independent proxy.
check "independent client -> independent proxy (frames and capsules)" \
  "timeout 30 $client --proxy 127.0.0.1:$port_dg --pin $pin_dg --target 127.0.0.1:$eport --sizes 0,1,1200,3000 --count 8 > $work/ctl.out 2>&1"

stop_proxy dg; stop_proxy nodg; stop_proxy tok
check "proxy (datagrams) received QUIC DATAGRAM frames from qpeer" '[ "$(stat_of dg rx_frames)" -gt 0 ]'
check "proxy (no H3_DATAGRAM) received no QUIC DATAGRAM frame at all" \
  '[ "$(stat_of nodg rx_frames)" = 0 ] && [ "$(stat_of nodg rx_capsules)" -gt 0 ] && [ "$(stat_of nodg tx_frames)" = 0 ]'
check "every qpeer request carried capsule-protocol: ?1" \
  '[ "$(stat_of dg no_capsule_protocol)" = 0 ] && [ "$(stat_of nodg no_capsule_protocol)" = 0 ]'
check "proxy refused exactly the one request without a token" '[ "$(stat_of tok refused)" = 1 ] && [ "$(stat_of dg refused)" = 0 ]'

if [ $fail != 0 ]; then
  for f in "$work"/*.out "$work"/*.err; do echo "--- $(basename "$f")"; tail -25 "$f"; done
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
