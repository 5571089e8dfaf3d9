#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `qpeer pipe` through a qpeer-relay on 127.0.0.1: the listener binds at the
# relay and prints a ticket with the relay address; the dialer connects via
# the relay (peer connect), upgrades to the direct path (one "path: relay
# -> direct" line on stderr) and a file crosses each way byte-exact.
# Usage: test_pipe_relay.sh QPEER_BINARY QPEER_RELAY_BINARY
set -uo pipefail
q=$1
relayd=$2
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
pass=0 fail=0
check() { if eval "$2"; then echo "PASS: $1"; pass=$((pass+1)); else echo "FAIL: $1"; fail=$((fail+1)); fi; }

printf '[relay]\nauth=none-INSECURE-open-relay\nstate_dir=%s/state\n[policy]\nallow=127.0.0.1/32\n' "$work" > "$work/r.ini"
timeout 60 "$relayd" --config "$work/r.ini" --listen 127.0.0.1:0 > /dev/null 2> "$work/relay.log" &
pids+=($!)
for _ in $(seq 200); do grep -q "ready" "$work/relay.log" 2>/dev/null && break; sleep 0.05; done
raddr=$(sed -n 's/.*serving HTTP\/3 MASQUE and STUN on udp \([0-9.:]*\).*/\1/p' "$work/relay.log" | head -1)
rpin=$(sed -n 's/.*relay peer ID (pin it in clients): \([a-z0-9]*\).*/\1/p' "$work/relay.log" | head -1)
if [ -z "$raddr" ] || [ -z "$rpin" ]; then echo "SKIP: qpeer-relay did not start"; cat "$work/relay.log"; exit 77; fi

head -c 3000000 /dev/urandom > "$work/a.bin"
head -c 2000000 /dev/urandom > "$work/b.bin"
# The dialer's input arrives slowly so that the upgrade happens mid-stream.
timeout 60 "$q" pipe listen --key "$work/l.pem" --bind 127.0.0.1:0 \
  --relay "$raddr" --relay-pin "$rpin" --no-direct --ticket-file "$work/t" \
  < "$work/b.bin" > "$work/a.out" 2> "$work/l.err" &
pids+=($!)
for _ in $(seq 200); do [ -s "$work/t" ] && break; sleep 0.05; done
"$q" ticket show "$(cat "$work/t")" > "$work/show" 2>&1
check "ticket carries a relay address" 'grep -qi "relay" "$work/show"'
( head -c 1000000 "$work/a.bin"; sleep 2; tail -c +1000001 "$work/a.bin" ) |
  timeout 60 "$q" pipe connect "$(cat "$work/t")" --key "$work/d.pem" \
  > "$work/b.out" 2> "$work/d.err"
rc=$?
wait "${pids[1]}"; lrc=$?
check "connect exits 0" '[ $rc = 0 ]'
check "listen exits 0" '[ $lrc = 0 ]'
check "dialer connected via the relay" 'grep -q "^path: relay$" "$work/d.err"'
check "dialer reports relay -> direct" 'grep -q "^path: relay -> direct 127.0.0.1:[0-9]* (validated in [0-9]* ms)$" "$work/d.err"'
check "listener reports the move" 'grep -q "^path: relay -> direct" "$work/l.err"'
check "dialer->listener byte-exact" 'cmp -s "$work/a.bin" "$work/a.out"'
check "listener->dialer byte-exact" 'cmp -s "$work/b.bin" "$work/b.out"'
if [ $fail != 0 ]; then echo "--- relay"; cat "$work/relay.log"; echo "--- listener"; cat "$work/l.err"; echo "--- dialer"; cat "$work/d.err"; fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
