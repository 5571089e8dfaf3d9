#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `qpeer pipe listen --relay` against a qpeer-relay that requires a token:
# without one, or with a bad one, the refusal is printed on stderr (HTTP
# status and Proxy-Status reason, no QPEER_LOG needed) and the listener
# exits non-zero at once instead of retrying; with the relay's token it
# binds and prints a ticket.
# Usage: test_pipe_refused.sh QPEER_BINARY QPEER_RELAY_BINARY
set -uo pipefail
q=$1
relayd=$2
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
pass=0 fail=0
check() { if eval "$2"; then echo "PASS: $1"; pass=$((pass+1)); else echo "FAIL: $1"; fail=$((fail+1)); fi; }
unset QPEER_LOG

printf '[relay]\nauth=jwt\nstate_dir=%s/state\n' "$work" > "$work/r.ini"
timeout 60 "$relayd" --config "$work/r.ini" --listen 127.0.0.1:0 > "$work/token.out" 2> "$work/relay.log" &
pids+=($!)
for _ in $(seq 200); do grep -q "ready" "$work/relay.log" 2>/dev/null && break; sleep 0.05; done
raddr=$(sed -n 's/.*serving HTTP\/3 MASQUE and STUN on udp \([0-9.:]*\).*/\1/p' "$work/relay.log" | head -1)
rpin=$(sed -n 's/.*relay peer ID (pin it in clients): \([a-z0-9]*\).*/\1/p' "$work/relay.log" | head -1)
if [ -z "$raddr" ] || [ -z "$rpin" ]; then echo "SKIP: qpeer-relay did not start"; cat "$work/relay.log"; exit 77; fi
token=$(grep -E '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' "$work/token.out" | head -1)

timeout 20 "$q" pipe listen --key "$work/l.pem" --bind 127.0.0.1:0 \
  --relay "$raddr" --relay-pin "$rpin" < /dev/null > /dev/null 2> "$work/none.err"
rc=$?
check "no token: exits non-zero (not a timeout)" '[ $rc != 0 ] && [ $rc != 124 ]'
check "no token: refusal on stderr" 'grep -qx "relay refused bind: 401 (token_missing)" "$work/none.err"'

timeout 20 "$q" pipe listen --key "$work/l.pem" --bind 127.0.0.1:0 \
  --relay "$raddr" --relay-pin "$rpin" --relay-token not.a.token \
  < /dev/null > /dev/null 2> "$work/bad.err"
rc=$?
check "bad token: exits non-zero (not a timeout)" '[ $rc != 0 ] && [ $rc != 124 ]'
check "bad token: refusal on stderr" 'grep -qx "relay refused bind: 401 (token_malformed)" "$work/bad.err"'

check "the relay printed a token" '[ -n "$token" ]'
timeout 60 "$q" pipe listen --key "$work/l.pem" --bind 127.0.0.1:0 \
  --relay "$raddr" --relay-pin "$rpin" --relay-token "$token" \
  --ticket-file "$work/t" < /dev/null > /dev/null 2> "$work/good.err" &
pids+=($!)
for _ in $(seq 200); do [ -s "$work/t" ] && break; sleep 0.05; done
check "good token: bound, ticket written" '[ -s "$work/t" ] && grep -q "bound at relay" "$work/good.err"'
check "good token: no refusal" '! grep -q "refused" "$work/good.err"'
if [ $fail != 0 ]; then echo "--- relay"; cat "$work/relay.log"; for f in none bad good; do echo "--- $f"; cat "$work/$f.err"; done; fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
