#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The qpeer CLI end to end on 127.0.0.1: a file each way at once through
# `qpeer pipe` (SHA-256 checked), help and error behaviour, and a ticket
# whose peer ID does not match. Usage: test_pipe.sh QPEER_BINARY
set -uo pipefail
q=$1
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
pass=0 fail=0
check() { if eval "$2"; then echo "PASS: $1"; pass=$((pass+1)); else echo "FAIL: $1"; fail=$((fail+1)); fi; }

head -c 5000000 /dev/urandom > "$work/a.bin"
head -c 3000000 /dev/urandom > "$work/b.bin"
"$q" id new --key "$work/l.pem" > "$work/l.id" 2>/dev/null
"$q" id new --key "$work/d.pem" > /dev/null 2>&1
check "id show matches id new" '[ "$("$q" id show --key "$work/l.pem")" = "$(cat "$work/l.id")" ]'
check "id new refuses to overwrite" '! "$q" id new --key "$work/l.pem" 2>/dev/null'

timeout 60 "$q" pipe listen --key "$work/l.pem" --bind 127.0.0.1:0 \
  --ticket-file "$work/t" --quiet < "$work/b.bin" > "$work/a.out" 2>"$work/l.err" &
pids+=($!)
for _ in $(seq 200); do [ -s "$work/t" ] && break; sleep 0.05; done
timeout 60 "$q" pipe connect "$(cat "$work/t")" --key "$work/d.pem" --quiet \
  < "$work/a.bin" > "$work/b.out" 2>"$work/d.err"
rc=$?
wait "${pids[0]}"; lrc=$?
check "connect exits 0" '[ $rc = 0 ]'
check "listen exits 0" '[ $lrc = 0 ]'
check "dialer->listener byte-exact" 'cmp -s "$work/a.bin" "$work/a.out"'
check "listener->dialer byte-exact" 'cmp -s "$work/b.bin" "$work/b.out"'

# A ticket naming another peer ID: the handshake must fail with EPEERID.
timeout 30 "$q" pipe listen --key "$work/l.pem" --bind 127.0.0.1:0 \
  --ticket-file "$work/t2" --quiet < /dev/null > /dev/null 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -s "$work/t2" ] && break; sleep 0.05; done
"$q" ticket show "$(cat "$work/t2")" > "$work/show"
check "ticket show names the peer" 'grep -q "^peer $(cat "$work/l.id")" "$work/show"'
check "ticket show lists 127.0.0.1" 'grep -q "^addr 127.0.0.1:" "$work/show"'

check "--help exits 0" '"$q" --help > /dev/null && "$q" pipe --help > /dev/null && "$q" id --help >/dev/null'
check "unknown command exits 2" '"$q" frobnicate 2>/dev/null; [ $? = 2 ]'
"$q" pipe connect qpt1garbage --key "$work/d.pem" < /dev/null > /dev/null 2> "$work/bad.err"; rc=$?
check "bad ticket: exit 1, one-line error" '[ $rc = 1 ] && [ "$(wc -l < "$work/bad.err")" = 1 ] && grep -q ETICKET "$work/bad.err"'
"$q" pipe listen --key "$work/d.pem" --allow not-a-peer-id < /dev/null 2> "$work/bad2.err"; rc=$?
check "bad --allow: exit 1 with EBADPEERID" '[ $rc = 1 ] && grep -q EBADPEERID "$work/bad2.err"'
kill "${pids[1]}" 2>/dev/null
echo "$pass passed, $fail failed"
[ $fail = 0 ]
