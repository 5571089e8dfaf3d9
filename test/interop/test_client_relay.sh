#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop, direction 1: the independent CONNECT-UDP client (masque_client,
# ix engine, no libqpeer) through the real qpeer-relay daemon to a UDP echo
# on 127.0.0.1. qpeer-relay runs as in test/relayd: a config file with JWT
# auth (HS256 secret file), tokens minted by `qpeer-relay token`, and a
# policy that allows only 127.0.0.1 as a target. Checks: echoes byte-exact
# over QUIC DATAGRAM frames, over capsules (client without H3_DATAGRAM;
# client forcing capsules), large payloads, refusals read with their
# status and Proxy-Status (no token 401, bind-only token 403, denied IPv4
# and IPv6 targets 403), and a wrong pin. Everything on loopback, port 0.
# Usage: test_client_relay.sh MASQUE_CLIENT QPEER_RELAY UDP_ECHO
set -uo pipefail
client=$1 relayd=$2 echo_bin=$3
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
# wait_for FILE REGEX: until a line matches, at most 10 s (bounded, no luck
# involved: the daemons print these lines once they are listening).
wait_for() {
  local i
  for i in $(seq 200); do grep -Eq "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}

head -c 48 /dev/urandom | base64 -w0 > "$work/secret"
chmod 600 "$work/secret"
cat > "$work/relay.ini" <<EOT
[relay]
listen = 127.0.0.1:0
state_dir = $work/state
auth = jwt
jwt_alg = HS256
jwt_secret_file = $work/secret
audience = interop.test
log_level = debug
[policy]
allow = 127.0.0.1
EOT
"$relayd" --config "$work/relay.ini" > "$work/relay.out" 2> "$work/relay.log" &
pids+=($!)
"$echo_bin" 127.0.0.1 --timeout 110 > "$work/echo.out" 2> "$work/echo.log" &
pids+=($!)
wait_for "$work/relay.log" " ready" || { echo "FAIL: qpeer-relay did not start"; cat "$work/relay.log"; exit 1; }
wait_for "$work/echo.out" "^udp echo on" || { echo "FAIL: udp_echo did not start"; exit 1; }
port=$(sed -n 's/.*serving HTTP\/3 MASQUE and STUN on udp 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/relay.log" | head -1)
pin=$(sed -n 's/.*relay peer ID (pin it in clients[^)]*): \([a-z0-9]*\).*/\1/p' "$work/relay.log" | head -1)
eport=$(sed -n 's/^udp echo on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/echo.out")
check "relay listening (port $port), pin printed, echo on port $eport" '[ -n "$port" ] && [ -n "$pin" ] && [ -n "$eport" ]'

tok=$("$relayd" token --secret-file "$work/secret" --aud interop.test --scope connect --ttl 600 --sub interop 2>"$work/tok.err")
btok=$("$relayd" token --secret-file "$work/secret" --aud interop.test --scope bind --ttl 600 2>>"$work/tok.err")
check "qpeer-relay token mints connect and bind tokens" '[ -n "$tok" ] && [ -n "$btok" ]'

run() { # name expected-rc args...
  local name=$1 want=$2; shift 2
  timeout 30 "$client" --proxy "127.0.0.1:$port" --pin "$pin" --timeout 8000 "$@" \
    > "$work/$name.out" 2> "$work/$name.err"
  echo $? > "$work/$name.rc"
  [ "$(cat "$work/$name.rc")" = "$want" ]
}
T="--target 127.0.0.1:$eport"

# 1. The tunnel with HTTP/3 datagrams on both sides.
check "echo through qpeer-relay (QUIC DATAGRAM frames)" "run dgram 0 $T --token $tok --count 12"
check "  relay announced ENABLE_CONNECT_PROTOCOL=1 and H3_DATAGRAM=1" \
  'grep -q "proxy SETTINGS: ENABLE_CONNECT_PROTOCOL=1 H3_DATAGRAM=1" "$work/dgram.out"'
check "  2xx carries capsule-protocol: ?1" 'grep -q "^response header: capsule-protocol: ?1" "$work/dgram.out"'
check "  all 12 echoed byte-exact, some as QUIC DATAGRAM frames" \
  'grep -Eq "^sent 12 payloads, 12 echoed byte-exact \([1-9][0-9]* as QUIC DATAGRAM frames" "$work/dgram.out"'
check "  client sent QUIC DATAGRAM frames" 'grep -Eq "^datagrams usable: yes; sent [1-9]" "$work/dgram.out"'

# 2. A client that does not announce H3_DATAGRAM: the relay must fall back
#    to DATAGRAM capsules both ways and never send a QUIC DATAGRAM frame.
check "echo with a client without SETTINGS_H3_DATAGRAM (capsules, up to 20000 bytes)" \
  "run nodgram 0 $T --token $tok --no-h3-datagram --sizes 0,1,1200,3000,20000 --count 10"
check "  every echo came as a capsule, no frame" \
  'grep -q "^sent 10 payloads, 10 echoed byte-exact (0 as QUIC DATAGRAM frames, 10 as DATAGRAM capsules)" "$work/nodgram.out" && ! grep -q "^violation" "$work/nodgram.out"'

# 3. A client that announces H3_DATAGRAM but sends capsules (allowed).
check "echo with client-side DATAGRAM capsules" "run caps 0 $T --token $tok --capsules --count 6"
check "  client sent only capsules" 'grep -q "sent 0 frames, 6 capsules" "$work/caps.out"'

# 3b. A request without capsule-protocol (RFC 9297 §3.4: SHOULD) is served.
check "request without the capsule-protocol field accepted, echo works" \
  "run nocp 0 $T --token $tok --no-capsule-protocol --count 4"

# 4. Refusals, read by the independent client.
check "no token: 401" "run notoken 0 $T --expect-status 401"
check "  401 has Proxy-Status error token_missing" \
  'grep -Eq "^refused: 401, proxy-status: .*error=.*token_missing" "$work/notoken.out"'
check "  401 has WWW-Authenticate: Bearer" 'grep -qi "www-authenticate: Bearer" "$work/notoken.out"'
check "no token without --expect-status exits 3 (refused)" "run notoken3 3 $T"
check "bind-only token: 403 token_wrong_scope" "run scope 0 $T --token $btok --expect-status 403"
check "  Proxy-Status names token_wrong_scope" 'grep -q "token_wrong_scope" "$work/scope.out"'
check "target 127.0.0.2 outside the policy: 403 destination_ip_prohibited" \
  "run deny4 0 --target 127.0.0.2:$eport --token $tok --expect-status 403"
check "  Proxy-Status names destination_ip_prohibited" 'grep -q "destination_ip_prohibited" "$work/deny4.out"'
check "IPv6 target [::1] (percent-encoded colons) parsed and refused by policy: 403" \
  "run deny6 0 --target [::1]:$eport --token $tok --expect-status 403"
check "  request path used %3A" 'grep -q "/.well-known/masque/udp/%3A%3A1/$eport/" "$work/deny6.out"'
check "  Proxy-Status names destination_ip_prohibited" 'grep -q "destination_ip_prohibited" "$work/deny6.out"'

# 5. The independent client's own TLS pinning refuses another key.
check "wrong pin: connection refused by the client" \
  "run badpin 1 $T --token $tok --pin paaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaadlfq"
check "  error says the pin does not match" 'grep -q "does not match the pin" "$work/badpin.err"'

check "relay still running" 'kill -0 "${pids[0]}" 2>/dev/null'
if [ $fail != 0 ]; then
  for f in "$work"/*.out "$work"/*.err; do echo "--- $(basename "$f")"; tail -20 "$f"; done
  echo "--- relay.log"; tail -60 "$work/relay.log"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
