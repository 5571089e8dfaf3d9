#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main demo (for now): a file carried byte-exact by `qpeer pipe`
# between two endpoints on loopback (127.0.0.1 only), with the
# connection's statistics.
# Usage: examples/demo.sh BUILD_DIR [SIZE_MIB]
set -euo pipefail
build=${1:?usage: demo.sh BUILD_DIR [SIZE_MIB]}
size=${2:-64}
q="$build/tools/qpeer"
work=$(mktemp -d)
trap 'kill $lpid 2>/dev/null || true; rm -rf "$work"' EXIT
lpid=

echo "== qpeer demo: $size MiB through 'qpeer pipe' on loopback =="
head -c $((size * 1024 * 1024)) /dev/urandom > "$work/in.bin"
"$q" id new --key "$work/listener.pem" | sed 's/^/listener peer ID: /'
"$q" id new --key "$work/dialer.pem" | sed 's/^/dialer peer ID:   /'

"$q" pipe listen --key "$work/listener.pem" --bind 127.0.0.1:0 \
  --ticket-file "$work/ticket" \
  --stats < /dev/null > "$work/out.bin" 2> "$work/listen.log" &
lpid=$!
for _ in $(seq 100); do [ -s "$work/ticket" ] && break; sleep 0.05; done
[ -s "$work/ticket" ] || { cat "$work/listen.log"; exit 1; }
echo "ticket: $(cat "$work/ticket")"
"$q" ticket show "$(cat "$work/ticket")" | sed 's/^/  /'
echo "-- dialer --"
"$q" pipe connect "$(cat "$work/ticket")" --key "$work/dialer.pem" --stats \
  < "$work/in.bin" > /dev/null
wait $lpid
lpid=
echo "-- listener --"
cat "$work/listen.log"
a=$(sha256sum < "$work/in.bin" | cut -d' ' -f1)
b=$(sha256sum < "$work/out.bin" | cut -d' ' -f1)
echo "sha256 sent     $a"
echo "sha256 received $b"
[ "$a" = "$b" ] && echo "OK: byte-exact" || { echo "MISMATCH"; exit 1; }
