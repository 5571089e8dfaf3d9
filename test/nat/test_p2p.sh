#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Camera/phone in the NAT lab, per NAT profile pair: a qpeer-relay on the
# lab's internet (198.51.100.1), examples/camera behind side A's NAT,
# examples/phone behind side B's, 20 ms delay per edge. For each pair the
# phone must verify every frame (sequence + checksum) of a finished stream,
# and reach the direct path where RFC 4787 behaviour allows a hole without
# port prediction (eim<->double, eim<->eim), or stay on the relay where it
# does not (symmetric<->eim). The phone's own exit status encodes both
# (--expect direct|relay). Exit 77 without root or network namespaces.
# Usage: test_p2p.sh CAMERA PHONE QPEER_RELAY UDPPROBE
# Environment: P2P_PAIRS ("A:B:expect ..."), P2P_SECONDS (default 6).
set -uo pipefail
camera=$1 phone=$2 relayd=$3
export UDPPROBE=$4
lab="$(cd "$(dirname "$0")" && pwd)/lab.sh"
secs=${P2P_SECONDS:-5}
profiles="none eim fullcone symmetric double blocked"

# What RFC 4787 behaviour allows without port prediction. Every profile
# but fullcone filters address-and-port dependently. A side that is
# blocked reaches only the relay. A symmetric side's mapping towards the
# peer is unknown until it sends, so the peer's NAT must accept a packet
# from an address it never sent to: only none and fullcone do.
expect() { # A B
  case "$1:$2" in
    blocked:*|*:blocked) echo relay ;;
    symmetric:none|symmetric:fullcone|none:symmetric|fullcone:symmetric) echo direct ;;
    symmetric:*|*:symmetric) echo relay ;;
    *) echo direct ;;
  esac
}
pairs=${P2P_PAIRS:-matrix}
case "$pairs" in
  matrix)
    pairs=""
    for a in $profiles; do for b in $profiles; do
      pairs="$pairs $a:$b:$(expect "$a" "$b")"
    done; done ;;
  faults)
    pairs="eim:double:direct:killrelay eim:double:direct:cutdirect eim:double:direct:rebind restart" ;;
  lossy)
    pairs="eim:double:any:lossy symmetric:eim:relay:lossy" ;;
esac
export LAB_DELAY_MS=${LAB_DELAY_MS:-20}
# Home routers drop unsolicited packets addressed to themselves; without
# that, Linux conntrack records the peer's first probe as an inbound flow
# and the NAT picks another port for our own packets (doc/nat-lab.md).
export LAB_INPUT_DROP=${LAB_INPUT_DROP:-1}
export LAB_TTL=$((secs + 120))
export LAB_QUIET=1

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 77; fi
why=$(bash "$lab" check 2>&1) || { echo "SKIP: ${why#lab.sh: }"; exit 77; }

name="qpp2p$$"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  bash "$lab" down "$name" >/dev/null 2>&1
  if [ -n "${P2P_KEEP:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
pass=0 fail=0 runno=0
check() { if eval "$2"; then echo "PASS: $1"; pass=$((pass+1)); else echo "FAIL: $1"; fail=$((fail+1)); fi; }

head -c 48 /dev/urandom | base64 > "$work/jwt.secret"
chmod 600 "$work/jwt.secret"
cat > "$work/relay.ini" <<EOF
[relay]
auth=jwt
jwt_secret_file=$work/jwt.secret
state_dir=$work/relay-state
[policy]
allow=203.0.113.0/24
allow=198.51.100.0/24
[metrics]
listen=198.51.100.1:9100
allow_remote=yes
EOF
token=$("$relayd" token --config "$work/relay.ini" --scope bind,connect --ttl 900) ||
  { echo "FAIL: cannot mint a relay token"; echo "0 passed, 1 failed"; exit 1; }

# Waits (bounded) until the phone reports the direct path, then injects
# fault $1: "killrelay" stops the relay; "cutdirect" drops the direct path on
# the camera's router for 6 s, then restores it; "rebind" flushes the phone's
# NATs' conntrack tables.
inject() {
  local fault=$1 d=$2 i
  for i in $(seq 200); do grep -q -- "-> direct .*validated" "$d/phone.out" 2>/dev/null && break; sleep 0.05; done
  case "$fault" in
    killrelay)
      # Only the processes in the relay's network namespace.
      ip netns pids "$name-relay" 2>/dev/null | xargs -r kill ;;
    cutdirect)
      bash "$lab" exec "$name" rA nft insert rule ip natlab forward ip saddr 203.0.113.3 drop
      bash "$lab" exec "$name" rA nft insert rule ip natlab forward ip daddr 203.0.113.3 drop
      sleep 6
      bash "$lab" exec "$name" rA nft flush chain ip natlab forward ;;
    rebind)
      # The phone's NATs forget every mapping (a NAT rebinding).
      bash "$lab" exec "$name" rB conntrack -F >/dev/null 2>&1
      bash "$lab" exec "$name" cgB conntrack -F >/dev/null 2>&1 ;;
  esac
}

run_pair() { # A B EXPECT [FAULT]
  runno=$((runno + 1))
  local a=$1 b=$2 expect=$3 fault=${4:-} d="$work/$runno-$1-$2${4:+-$4}" rpin prc crc ipid=
  local tag="$a<->$b${fault:+ ($fault)}"
  # Fault runs last longer: the fault, the fallback and the re-upgrade.
  local secs=$secs loss=${LAB_LOSS_PCT:-} delay=$LAB_DELAY_MS camargs=""
  case "$fault" in
    "") ;;
    # A correctness run: a bitrate the lossy relay path carries.
    lossy) secs=${P2P_LOSSY_SECONDS:-8}; loss=10; delay=50; camargs="--bitrate 200000" ;;
    *) secs=${P2P_FAULT_SECONDS:-20} ;;
  esac
  mkdir -p "$d"
  bash "$lab" down "$name" >/dev/null 2>&1
  if ! LAB_LOSS_PCT=$loss LAB_DELAY_MS=$delay bash "$lab" up "$name" "$a" "$b" > "$d/lab.log" 2>&1; then
    check "$tag: lab up" false; cat "$d/lab.log"; return
  fi
  pids=()
  bash "$lab" exec "$name" relay timeout $((secs + 60)) "$relayd" \
    --config "$work/relay.ini" --listen 198.51.100.1:4433 > /dev/null 2> "$d/relay.log" &
  pids+=($!)
  for _ in $(seq 200); do grep -q "ready" "$d/relay.log" 2>/dev/null && break; sleep 0.05; done
  rpin=$(sed -n 's/.*relay peer ID (pin it in clients): \([a-z0-9]*\).*/\1/p' "$d/relay.log" | head -1)
  if [ -z "$rpin" ]; then check "$tag: relay started" false; cat "$d/relay.log"; return; fi
  bash "$lab" exec "$name" a timeout $((secs + 50)) "$camera" --key "$d/camera.pem" \
    --relay 198.51.100.1:4433 --relay-pin "$rpin" --relay-token "$token" \
    --ticket-file "$d/ticket" --seconds "$secs" $camargs 2> "$d/camera.log" &
  local cpid=$!
  pids+=($cpid)
  for _ in $(seq 200); do [ -s "$d/ticket" ] && break; sleep 0.05; done
  if [ ! -s "$d/ticket" ]; then check "$tag: camera ticket" false; cat "$d/camera.log"; return; fi
  bash "$lab" exec "$name" b timeout $((secs + 50)) "$phone" --ticket-file "$d/ticket" \
    --metrics 198.51.100.1:9100 --expect "$expect" --timeout $((secs + 40)) \
    > "$d/phone.out" 2> "$d/phone.err" &
  local ppid=$!
  if [ -n "$fault" ] && [ "$fault" != lossy ]; then inject "$fault" "$d" & ipid=$!; fi
  wait "$ppid"; prc=$?
  # The relay's counters and the routers' state at the end (printed when
  # the run fails).
  bash "$lab" exec "$name" relay curl -s --max-time 2 http://198.51.100.1:9100/metrics \
    > "$d/metrics.txt" 2>/dev/null
  if [ "$prc" != 0 ]; then
    for n in rA rB cgA cgB; do
      echo "== $n"
      bash "$lab" exec "$name" "$n" nft list ruleset 2>/dev/null | grep counter | grep -v "packets 0 "
      bash "$lab" exec "$name" "$n" conntrack -L -p udp 2>/dev/null
    done > "$d/state.txt" 2>&1
  fi
  [ -n "$ipid" ] && wait "$ipid" 2>/dev/null
  wait "$cpid"; crc=$?
  check "$tag: phone connected via the relay" 'grep -q "^  connected via relay at" "$d/phone.out"'
  check "$tag: every frame verified, stream finished" \
    'grep -Eq "^  frames: [1-9][0-9]* ok, 0 errors \([0-9]+ bytes\)$" "$d/phone.out"'
  local sent got
  sent=$(sed -n 's/^camera: stream ends after [0-9]* frames ([0-9]* bytes, sha256 \([0-9a-f]*\))$/\1/p' "$d/camera.log")
  got=$(sed -n 's/^  stream: [0-9]* bytes, sha256 \([0-9a-f]*\)$/\1/p' "$d/phone.out")
  check "$tag: stream SHA-256 matches the camera's" '[ -n "$sent" ] && [ "$sent" = "$got" ]'
  if [ "$expect" = any ]; then
    :
  elif [ "$expect" = direct ]; then
    check "$tag: direct path reached" 'grep -q "^path: relay -> direct .* (validated in [0-9]* ms)$" "$d/phone.out"'
    # Nothing crosses the relay for this connection a second after the
    # move (the second lets packets in flight land).
    [ -z "$fault" ] && check "$tag: relay idle for the connection after the move" \
      'grep -q "^  relay bytes from [0-9]* ms after migration to the end: 0$" "$d/phone.out"'
  else
    check "$tag: stayed on the relay" '! grep -q -- "-> direct .*validated" "$d/phone.out" && grep -q "^  final path: relay$" "$d/phone.out"'
  fi
  case "$fault" in
    cutdirect)
      check "$tag: fell back to the relay" 'grep -Eq "^path: direct -> relay" "$d/phone.out"'
      check "$tag: upgraded again once restored" \
        '[ "$(grep -c -- "-> direct .*validated" "$d/phone.out")" -ge 2 ]' ;;
  esac
  check "$tag: phone exits 0" '[ $prc = 0 ]'
  check "$tag: camera exits 0" '[ $crc = 0 ]'
  if [ $prc != 0 ] || [ $crc != 0 ] || [ "$sent" != "$got" ]; then
    echo "--- phone ($tag)"; grep -v "^t=" "$d/phone.out"; cat "$d/phone.err"
    echo "--- camera"; grep -v "t=" "$d/camera.log"
    echo "--- relay counters"; grep -v "^#" "$d/metrics.txt" | grep -v " 0$"
    [ -f "$d/state.txt" ] && { echo "--- routers"; cat "$d/state.txt"; }
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  pids=()
  bash "$lab" down "$name" >/dev/null 2>&1
}

# Reconnect after a restart without a fresh ticket: the phone keeps a
# bootstrap cache (--cache); the camera (public address, fixed port, the
# same key) restarts and binds at the relay anew, so the cached relay
# address is stale; the phone, restarted with only --peer, still reaches it
# through the cached direct address.
run_restart() {
  runno=$((runno + 1))
  local d="$work/$runno-restart" tag="restart" rpin cpid prc pid i
  mkdir -p "$d"
  bash "$lab" down "$name" >/dev/null 2>&1
  if ! bash "$lab" up "$name" none eim > "$d/lab.log" 2>&1; then
    check "$tag: lab up" false; cat "$d/lab.log"; return
  fi
  pids=()
  bash "$lab" exec "$name" relay timeout 120 "$relayd" \
    --config "$work/relay.ini" --listen 198.51.100.1:4433 > /dev/null 2> "$d/relay.log" &
  pids+=($!)
  for _ in $(seq 200); do grep -q "ready" "$d/relay.log" 2>/dev/null && break; sleep 0.05; done
  rpin=$(sed -n 's/.*relay peer ID (pin it in clients): \([a-z0-9]*\).*/\1/p' "$d/relay.log" | head -1)
  for i in 1 2; do
    rm -f "$d/ticket"
    bash "$lab" exec "$name" a timeout 60 "$camera" --key "$d/camera.pem" \
      --bind 203.0.113.2:4500 --ticket-host \
      --relay 198.51.100.1:4433 --relay-pin "$rpin" --relay-token "$token" \
      --ticket-file "$d/ticket" --seconds 3 2> "$d/camera$i.log" &
    cpid=$!
    pids+=($cpid)
    for _ in $(seq 200); do [ -s "$d/ticket" ] && break; sleep 0.05; done
    if [ "$i" = 1 ]; then
      bash "$lab" exec "$name" b timeout 60 "$phone" --ticket-file "$d/ticket" \
        --cache "$d/phone.cache" --timeout 40 > "$d/phone$i.out" 2> "$d/phone$i.err"
      prc=$?
      pid=$(sed -n 's/^camera: peer ID \([a-z0-9]*\)$/\1/p' "$d/camera1.log")
    else
      bash "$lab" exec "$name" b timeout 60 "$phone" --peer "$pid" \
        --cache "$d/phone.cache" --timeout 40 > "$d/phone$i.out" 2> "$d/phone$i.err"
      prc=$?
    fi
    wait "$cpid"
    check "$tag: phone run $i verified every frame" '[ $prc = 0 ]'
  done
  check "$tag: first run filled the cache" 'grep -q "bootstrap cache .*: 0 peers" "$d/phone1.err"'
  check "$tag: second run used the cache, no ticket" \
    'grep -q "bootstrap cache .*: 1 peers" "$d/phone2.err" && grep -q "ticket from the bootstrap cache" "$d/phone2.err"'
  check "$tag: second run reached the restarted camera" 'grep -q "^  connected via " "$d/phone2.out"'
  if [ "$fail" != 0 ]; then
    for f in "$d"/phone*.err "$d"/camera*.log; do echo "--- $f"; grep -v "t=" "$f"; done
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  pids=()
  bash "$lab" down "$name" >/dev/null 2>&1
}

for p in $pairs; do
  if [ "$p" = restart ]; then run_restart; continue; fi
  IFS=: read -r a b e f <<< "$p"
  run_pair "$a" "$b" "$e" "$f"
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
