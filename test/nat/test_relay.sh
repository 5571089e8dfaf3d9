#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 4 "Done means" in the NAT lab: a camera (peer A) behind the
# `symmetric` NAT binds at qpeer-relay (relay host 198.51.100.1, auth = jwt
# with a token minted by `qpeer-relay token`) with `qpeer pipe listen
# --relay ... --no-direct`; a QUIC client in the lab's internet namespace runs
# `qpeer pipe connect TICKET` and receives the camera's file byte-exact
# (SHA-256). Then unauthorized use is refused: a bind with no token, with a
# bad signature and with the wrong scope fails with a clear error.
# CONNECT-UDP to a denied target has no CLI; the loopback tests
# (test/test_relay_loop.c and friends) cover its 403.
# Usage: test_relay.sh QPEER_BINARY QPEER_RELAY_BINARY [UDPPROBE]
set -uo pipefail
q=$(readlink -f "$1")
relayd=$(readlink -f "$2")
here=$(cd "$(dirname "$0")" && pwd)
lab=$here/lab.sh
NAME=rl$$
PORT=4433

bash "$lab" check || exit 77
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  LAB_QUIET=1 bash "$lab" down "$NAME" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
pass=0 fail=0
check() { if eval "$2"; then echo "PASS: $1"; pass=$((pass+1)); else echo "FAIL: $1"; fail=$((fail+1)); fi; }
lx() { local n=$1; shift; bash "$lab" exec "$NAME" "$n" "$@"; }

LAB_QUIET=1 LAB_TTL=300 bash "$lab" up "$NAME" symmetric none >"$work/lab.log" 2>&1 || {
  echo "FAIL: lab up"; cat "$work/lab.log"; exit 1; }

# Relay: auth required (HS256 JWT), targets only in the lab's internet
# (the inet node reaches the relay host from 198.51.100.254).
head -c 48 /dev/urandom | base64 -w0 > "$work/secret"
chmod 600 "$work/secret"
cat > "$work/r.ini" <<EOF
[relay]
auth = jwt
jwt_alg = HS256
jwt_secret_file = $work/secret
audience = qpeer-relay
state_dir = $work/state
[policy]
default = deny
allow = 203.0.113.0/24
allow = 198.51.100.0/24
EOF
lx relay timeout 110 "$relayd" --config "$work/r.ini" --listen "198.51.100.1:$PORT" \
  > "$work/relay.out" 2> "$work/relay.log" &
pids+=($!)
for _ in $(seq 200); do grep -q "ready" "$work/relay.log" 2>/dev/null && break; sleep 0.05; done
rpin=$(sed -n 's/.*relay peer ID (pin it in clients[^)]*): \([a-z0-9]*\).*/\1/p' "$work/relay.log" | head -1)
check "relay starts in the relay host namespace" '[ -n "$rpin" ] && grep -q "udp 198.51.100.1:$PORT" "$work/relay.log"'
if [ -z "$rpin" ]; then cat "$work/relay.log"; echo "$pass passed, $((fail+1)) failed"; exit 1; fi

tok=$("$relayd" token --secret-file "$work/secret" --aud qpeer-relay --scope bind --ttl 600 --sub camera-a 2>"$work/tok.err")
check "qpeer-relay token mints a token" '[ -n "$tok" ] && [ $(echo "$tok" | tr -cd . | wc -c) = 2 ]'
ctok=$("$relayd" token --secret-file "$work/secret" --aud qpeer-relay --scope connect --ttl 600 2>>"$work/tok.err")
head -c 48 /dev/urandom | base64 -w0 > "$work/other"
chmod 600 "$work/other"
badtok=$("$relayd" token --secret-file "$work/other" --aud qpeer-relay --scope bind --ttl 600 2>>"$work/tok.err")

# 1. The camera behind the symmetric NAT binds and serves a file.
head -c 4000000 /dev/urandom > "$work/cam.bin"
lx a timeout 60 "$q" pipe listen --key "$work/cam.pem" --bind 0.0.0.0:0 \
  --relay "198.51.100.1:$PORT" --relay-pin "$rpin" --relay-token "$tok" --no-direct \
  --ticket-file "$work/t" < "$work/cam.bin" > "$work/cam.out" 2> "$work/cam.err" &
campid=$!
pids+=($campid)
for _ in $(seq 300); do [ -s "$work/t" ] && break; sleep 0.05; done
check "camera bound at the relay (ticket written)" '[ -s "$work/t" ]'
"$q" ticket show "$(cat "$work/t" 2>/dev/null)" > "$work/show" 2>&1
check "ticket names the relay host" 'grep -q "198.51.100.1" "$work/show"'
check "ticket has no private address" '! grep -q "10\.0\.1\." "$work/show"'

# 2. A QUIC client in the internet namespace fetches the file.
: | lx inet timeout 60 "$q" pipe connect "$(cat "$work/t" 2>/dev/null)" --key "$work/cli.pem" \
  > "$work/got.bin" 2> "$work/cli.err"
rc=$?
wait "$campid"; lrc=$?
check "client in inet exits 0" '[ $rc = 0 ]'
check "camera exits 0" '[ $lrc = 0 ]'
check "client reached the camera via the relay" 'grep -q "^path: relay" "$work/cli.err"'
check "camera file arrives byte-exact (SHA-256)" \
  '[ "$(sha256sum < "$work/cam.bin")" = "$(sha256sum < "$work/got.bin")" ]'

# 3. Unauthorized binds are refused, with a reason, not a hang.
refused() { # label token-args...
  local lbl=$1; shift
  : | QPEER_LOG=warn lx a timeout 20 "$q" pipe listen --key "$work/cam.pem" --bind 0.0.0.0:0 \
    --relay "198.51.100.1:$PORT" --relay-pin "$rpin" "$@" --no-direct \
    --ticket-file "$work/t.$lbl" > /dev/null 2> "$work/$lbl.err"
  echo $? > "$work/$lbl.rc"
}
refused notoken
refused badsig --relay-token "$badtok"
refused scope --relay-token "$ctok"
refused garbage --relay-token "not.a.jwt"
declare -A want=([notoken]=401 [badsig]=401 [scope]=403 [garbage]=401)
declare -A why=([notoken]=token_missing [badsig]=token_bad_signature [scope]=token_wrong_scope [garbage]=token_malformed)
for c in notoken badsig scope garbage; do
  rc=$(cat "$work/$c.rc")
  check "bind $c: refused (exit $rc, not a timeout)" '[ "$rc" != 0 ] && [ "$rc" != 124 ] && [ ! -s "$work/t.$c" ]'
  check "bind $c: error says refused" 'grep -q "^relay refused bind: " "$work/$c.err"'
  check "bind $c: ${want[$c]} ${why[$c]} shown (Proxy-Status)" \
    'grep -Eq "proxy refused the request: ${want[$c]}.*error=.*${why[$c]}" "$work/$c.err"'
done
sleep 0.3
check "relay still serving after refusals" 'kill -0 "${pids[0]}" 2>/dev/null'

if [ $fail != 0 ]; then
  for f in relay.log cam.err cli.err notoken.err badsig.err scope.err garbage.err tok.err; do
    echo "--- $f"; cat "$work/$f" 2>/dev/null | tail -30
  done
else
  for c in notoken badsig scope garbage; do echo "  $c: $(grep -m1 "proxy refused" "$work/$c.err")"; done
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
