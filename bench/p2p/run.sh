#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# P2P connection benchmark in the NAT lab (issue 5; results in doc/p2p-benchmark.md).
#
# For every NAT profile pair (camera = side A, phone = side B), N runs, each in
# a fresh lab (test/nat/lab.sh, LAB_DELAY_MS=20 per edge, LAB_INPUT_DROP=1):
# qpeer-relay on 198.51.100.1, examples/camera behind A (binds at the relay,
# writes a ticket that holds only the relay address), examples/phone behind B
# (connects by ticket, --expect any). From the phone's output (times are ms
# since the phone started, taken just before it sends its first packet):
#   connect_ms    "phone: connected via relay ... at N ms"
#   direct_ms     "direct path validated at N ms (...)" (timeline)
#   migration_ms  direct_ms - connect_ms
#   final path, frames ok/errors, "result: OK|FAILED"
# Every run is a CSV line, also when the lab, the relay or the camera failed
# (status column); nothing is dropped. Then bench/p2p/report.py writes the
# per-pair Markdown table and an SVG plot.
#
# Usage: bench/p2p/run.sh [options] BUILD_DIR
#   -n N            runs per pair (default 20)
#   -p "A:B ..."    pairs (default: the 21 unordered pairs of
#                   none eim symmetric fullcone double blocked, in that order)
#   -s S            camera --seconds (stream length after the connection; default 3)
#   -d MS           LAB_DELAY_MS (default 20)
#   -o DIR          output directory (default bench/p2p/out/<UTC timestamp>):
#                   results.csv, table.md, plot.svg, meta.txt, logs/<run>/
#   --no-snapshot   run the binaries in BUILD_DIR directly (default: copy them,
#                   with libqpeer, into the output directory first, so that a
#                   concurrent rebuild cannot change them half way)
# Needs root, network namespaces, nftables, iptables (NFQUEUE), python3 (stdlib).
# Network: everything runs inside the lab's namespaces (see doc/nat-lab.md);
# the root namespace gets no route into the lab. Exit 77 without root/netns.

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lab="$root/test/nat/lab.sh"
profiles="none eim symmetric fullcone double blocked"

runs=20 pairs="" pairs_arg="" secs=3 delay=20 out="" snapshot=1
while [ $# -gt 0 ]; do
  case $1 in
    -n) runs=$2; shift 2 ;;
    -p) pairs=$2; pairs_arg=$2; shift 2 ;;
    -s) secs=$2; shift 2 ;;
    -d) delay=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    --no-snapshot) snapshot=0; shift ;;
    -h|--help) sed -n '3,31p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# = 1 ] || { sed -n '20,31p' "$0" >&2; exit 2; }
build_arg=$1
build=$(cd "$1" && pwd) || exit 2
[[ $runs =~ ^[1-9][0-9]*$ ]] && [ "$runs" -le 1000 ] || { echo "run.sh: bad -n" >&2; exit 2; }
[[ $secs =~ ^[1-9][0-9]*$ ]] && [ "$secs" -le 600 ] || { echo "run.sh: bad -s" >&2; exit 2; }
[[ $delay =~ ^[0-9]+$ ]] && [ "$delay" -le 5000 ] || { echo "run.sh: bad -d" >&2; exit 2; }
if [ -z "$pairs" ]; then
  set -- $profiles
  while [ $# -gt 0 ]; do
    for b in "$@"; do pairs="$pairs $1:$b"; done
    shift
  done
fi
for p in $pairs; do
  IFS=: read -r a b <<<"$p"
  for x in "$a" "$b"; do
    case " $profiles " in *" $x "*) ;; *) echo "run.sh: bad pair '$p'" >&2; exit 2 ;; esac
  done
done

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 77; fi
why=$(bash "$lab" check 2>&1) || { echo "SKIP: ${why#lab.sh: }"; exit 77; }
command -v python3 >/dev/null || { echo "run.sh: needs python3" >&2; exit 2; }

[ -n "$out" ] || out="$here/out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out/logs" || exit 1
out=$(cd "$out" && pwd)

# ------------------------------------------------------------------ binaries
# A binary may be missing for a moment while someone rebuilds: wait (bounded).
need_bins() { # dir
  local f i
  for i in $(seq 1 60); do
    local ok=1
    for f in examples/camera examples/phone tools/relayd/qpeer-relay test/nat/udpprobe lib/libqpeer.so.0; do
      [ -e "$1/$f" ] || ok=0
    done
    [ $ok = 1 ] && return 0
    echo "run.sh: waiting for binaries in $1 (try $i/60)" >&2
    sleep 5
  done
  return 1
}
need_bins "$build" || { echo "run.sh: binaries missing in $build" >&2; exit 1; }
bin=$build
if [ $snapshot = 1 ]; then
  bin="$out/bin"
  for i in $(seq 1 10); do
    rm -rf "$bin"
    mkdir -p "$bin/examples" "$bin/lib" "$bin/tools/relayd" "$bin/test/nat"
    cp -L "$build/examples/camera" "$build/examples/phone" "$bin/examples/" &&
      cp -L "$build/lib/libqpeer.so.0" "$bin/lib/libqpeer.so.0" &&
      cp -L "$build/tools/relayd/qpeer-relay" "$bin/tools/relayd/" &&
      cp -L "$build/test/nat/udpprobe" "$bin/test/nat/" &&
      "$bin/examples/phone" --help >/dev/null 2>&1 &&
      "$bin/examples/camera" --help >/dev/null 2>&1 &&
      "$bin/tools/relayd/qpeer-relay" --help >/dev/null 2>&1 && break
    echo "run.sh: snapshot of $build failed (rebuild in progress?), retrying" >&2
    sleep 10
    [ "$i" = 10 ] && { echo "run.sh: cannot snapshot the binaries" >&2; exit 1; }
  done
fi
camera=$bin/examples/camera phone=$bin/examples/phone relayd=$bin/tools/relayd/qpeer-relay
export UDPPROBE=$bin/test/nat/udpprobe

{
  echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "command=bench/p2p/run.sh -n $runs -s $secs -d $delay${pairs_arg:+ -p \"$pairs_arg\"} $build_arg"
  echo "git_head=$(git -C "$root" rev-parse --short HEAD 2>/dev/null)"
  echo "git_dirty_files=$(git -C "$root" status --porcelain 2>/dev/null | grep -v '^??' | wc -l)"
  echo "libqpeer_sha256=$(sha256sum "$bin/lib/libqpeer.so.0" | cut -c1-16)"
  echo "phone_sha256=$(sha256sum "$phone" | cut -c1-16)"
  echo "camera_sha256=$(sha256sum "$camera" | cut -c1-16)"
  echo "kernel=$(uname -r)"
  echo "cpus=$(nproc)"
  echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "runs_per_pair=$runs"
  echo "stream_seconds=$secs"
  echo "delay_ms=$delay"
  echo "input_drop=1"
} >"$out/meta.txt"

# ------------------------------------------------------------------ cleanup
export LAB_DELAY_MS=$delay LAB_INPUT_DROP=1 LAB_QUIET=1 LAB_TTL=$((secs + 120))
unset LAB_LOSS_PCT
prefix="qpb$$"
cur=""           # the lab that exists now (at most one)
pids=()
work=$(mktemp -d)
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$cur" ] && bash "$lab" down "$cur" >/dev/null 2>&1
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM HUP

head -c 48 /dev/urandom | base64 >"$work/jwt.secret"
chmod 600 "$work/jwt.secret"
cat >"$work/relay.ini" <<INI
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
INI
token=$("$relayd" token --config "$work/relay.ini" --scope bind,connect --ttl 86400) ||
  { echo "run.sh: cannot mint a relay token" >&2; exit 1; }

# Direct path possible without port prediction (RFC 4787 behaviour of the
# lab's profiles, doc/nat-lab.md): not if a side is blocked, not if a side is
# symmetric and the other is symmetric, eim or double.
direct_possible() {
  case "$1:$2" in
    blocked:*|*:blocked) echo 0 ;;
    symmetric:symmetric|symmetric:eim|eim:symmetric|symmetric:double|double:symmetric) echo 0 ;;
    *) echo 1 ;;
  esac
}

csv="$out/results.csv"
echo "run,pair,profile_a,profile_b,iter,expect_direct,status,connected,via,connect_ms,direct,direct_ms,migration_ms,validate_ms,upgrades,fallbacks,final_path,frames_ok,frame_errors,stream_finished,result,phone_rc,camera_rc,relay_bytes_after_migration,wall_ms,load1" >"$csv"

now_ms() { date +%s%3N; }

# One run, in this shell (so that the traps see its lab and PIDs): appends
# its CSV line and leaves it in $line.
one_run() { # n a b iter
  local n=$1 a=$2 b=$3 it=$4 d name status=ok rpin cpid ppid prc=-1 crc=-1 t0 t1
  d="$out/logs/$(printf %04d "$n")-$a-$b"
  mkdir -p "$d"
  name="$prefix-$n"
  local load1; load1=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(now_ms)
  pids=()
  cur=$name
  if ! bash "$lab" up "$name" "$a" "$b" >"$d/lab.log" 2>&1; then
    status=lab_failed
  fi
  if [ $status = ok ]; then
    bash "$lab" exec "$name" relay timeout $((secs + 60)) "$relayd" \
      --config "$work/relay.ini" --listen 198.51.100.1:4433 >/dev/null 2>"$d/relay.log" &
    pids+=($!)
    for _ in $(seq 200); do grep -q "ready" "$d/relay.log" 2>/dev/null && break; sleep 0.05; done
    rpin=$(sed -n 's/.*relay peer ID (pin it in clients): \([a-z0-9]*\).*/\1/p' "$d/relay.log" | head -1)
    [ -n "$rpin" ] || status=relay_failed
  fi
  if [ $status = ok ]; then
    bash "$lab" exec "$name" a timeout $((secs + 50)) "$camera" \
      --relay 198.51.100.1:4433 --relay-pin "$rpin" --relay-token "$token" \
      --ticket-file "$d/ticket" --seconds "$secs" 2>"$d/camera.log" &
    cpid=$!
    pids+=($cpid)
    for _ in $(seq 200); do [ -s "$d/ticket" ] && break; sleep 0.05; done
    [ -s "$d/ticket" ] || status=camera_no_ticket
  fi
  if [ $status = ok ]; then
    bash "$lab" exec "$name" b timeout $((secs + 50)) "$phone" --ticket-file "$d/ticket" \
      --metrics 198.51.100.1:9100 --expect any --timeout $((secs + 40)) \
      >"$d/phone.out" 2>"$d/phone.err" &
    ppid=$!
    pids+=($ppid)
    wait "$ppid"; prc=$?
    wait "$cpid"; crc=$?
  fi
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  pids=()
  bash "$lab" down "$name" >/dev/null 2>&1
  cur=""
  t1=$(now_ms)
  touch "$d/phone.out"
  line=$(awk -v run="$n" -v a="$a" -v b="$b" -v it="$it" -v xd="$(direct_possible "$a" "$b")" \
      -v status="$status" -v prc="$prc" -v crc="$crc" -v wall=$((t1 - t0)) -v load1="$load1" '
    BEGIN { connected = 0; via = ""; cms = ""; direct = 0; dms = ""; vms = ""; upg = 0; fb = 0
            final = "none"; fok = ""; ferr = ""; fin = 0; res = "none"; rb = "" }
    /^phone: connected via / { connected = 1; via = $4; cms = $(NF - 1) }
    /^path: .* -> direct .*validated in/ { upg++ }
    /^  direct path validated at / { direct = 1; dms = $5; s = $0; sub(/.*, /, "", s); vms = s + 0 }
    /^  direct from the start/ { direct = 1; dms = cms }
    /^  relay bytes since migration: / { rb = $5 }
    /^  fallbacks to the relay: / { fb = $5 }
    /^  final path: / { final = $3 }
    /^  frames: / { fok = $2; ferr = $4; fin = ($0 ~ /stream not finished/) ? 0 : 1 }
    /^result: / { res = $2 }
    END {
      mig = (direct && cms != "" && dms != "") ? dms - cms : ""
      printf "%d,%s:%s,%s,%s,%d,%d,%s,%d,%s,%s,%d,%s,%s,%s,%d,%d,%s,%s,%s,%d,%s,%d,%d,%s,%d,%s\n",
        run, a, b, a, b, it, xd, status, connected, via, cms, direct, dms, mig, vms, upg, fb,
        final, fok, ferr, fin, res, prc, crc, rb, wall, load1
    }' "$d/phone.out")
  echo "$line" >>"$csv"
}

total=0
for p in $pairs; do total=$((total + runs)); done
n=0
echo "run.sh: $total runs ($runs per pair), stream ${secs}s, delay ${delay} ms; output $out" >&2
for it in $(seq 1 "$runs"); do
  # Interleave pairs (round i of every pair, then round i+1) so that a slow
  # phase of the machine does not land on one pair only.
  for p in $pairs; do
    IFS=: read -r a b <<<"$p"
    n=$((n + 1))
    one_run "$n" "$a" "$b" "$it"
    echo "run.sh: [$n/$total] $line" >&2
  done
done
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/meta.txt"
echo "date_end_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$out/meta.txt"
python3 "$here/report.py" "$out" || exit 1
cat "$out/table.md"
