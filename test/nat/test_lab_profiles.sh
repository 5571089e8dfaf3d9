#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# NAT lab self-test: builds labs with test/nat/lab.sh and checks with udpprobe
# that every NAT profile behaves as documented (RFC 4787 mapping/filtering),
# then measures a UDP hole-punch matrix.
#
#   test_lab_profiles.sh [PATH/TO/udpprobe]       (or UDPPROBE=...)
#
# Exit 0 all passed, 1 something failed, 77 skipped (not root, no netns/nft).
# Env: NATLAB_PUNCH_TRIALS=N  repeat each punch measurement N times (default 1)
#      NATLAB_KEEP=1          do not tear the labs down (debugging)

set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$HERE/lab.sh
UDPPROBE=${1:-${UDPPROBE:-}}
TRIALS=${NATLAB_PUNCH_TRIALS:-1}

if [ -z "$UDPPROBE" ] || [ ! -x "$UDPPROBE" ]; then
  echo "SKIP: udpprobe binary not given (test_lab_profiles.sh PATH/TO/udpprobe)"
  exit 77
fi
UDPPROBE=$(cd "$(dirname "$UDPPROBE")" && pwd)/$(basename "$UDPPROBE")
export UDPPROBE LAB_QUIET=1

msg=$(bash "$LAB" check 2>&1); rc=$?
if [ $rc != 0 ]; then
  echo "$msg"
  echo "SKIP: NAT lab unavailable"
  exit 77
fi
if ! command -v iptables >/dev/null 2>&1; then
  echo "SKIP: iptables (NFQUEUE, for the lab's delay) not installed"
  exit 77
fi

PFX=qnl$$
TMP=$(mktemp -d /tmp/natlab-test.XXXXXX)
LABS=()
N=0
PASS=0
FAIL=0
T_START=$(date +%s)

cleanup() {
  local l names
  # Labs made in $(...) subshells are not in LABS: also find them by prefix.
  names=$( { printf '%s\n' "${LABS[@]}"
             ls -1 "${LAB_STATE_ROOT:-/run/qpeer-natlab}" 2>/dev/null
             ip netns list 2>/dev/null | awk '{print $1}' | sed 's/-[A-Za-z]*$//'
           } | grep "^$PFX-[0-9]*$" | sort -u)
  if [ -z "${NATLAB_KEEP:-}" ]; then
    for l in $names; do bash "$LAB" down "$l" >/dev/null 2>&1; done
  else
    echo "NATLAB_KEEP set: labs left up:" $names
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 1' INT TERM

ok() { PASS=$((PASS + 1)); echo "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
expect() { # description, condition-result (0 = true)
  local d=$1; shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}

lab() { bash "$LAB" "$@"; }
lx() { local l=$1 n=$2; shift 2; bash "$LAB" exec "$l" "$n" "$@"; }
info() { lab info "$1" | sed -n "s/^$2=//p"; }

S1=203.0.113.10
S2=203.0.113.11
RELAY=198.51.100.1

# lab_up NAME PROFILE_A PROFILE_B [DELAY_MS [INPUT_DROP]]; starts echo servers in inet and relay
lab_up() {
  N=$((N + 1))
  local name=$PFX-$N
  LAB_DELAY_MS=${4:-0} LAB_INPUT_DROP=${5:-0} lab up "$name" "$2" "$3" || { bad "lab up $2/$3"; return 1; }
  LABS+=("$name")
  lx "$name" inet timeout 300 "$UDPPROBE" echo 4000 300 >/dev/null 2>&1 &
  lx "$name" inet timeout 300 "$UDPPROBE" echo 4001 300 >/dev/null 2>&1 &
  lx "$name" relay timeout 300 "$UDPPROBE" echo 4000 300 >/dev/null 2>&1 &
  for _ in $(seq 1 30); do
    lx "$name" inet ss -Hlun 'sport = :4001' | grep -q . &&
      lx "$name" relay ss -Hlun 'sport = :4000' | grep -q . && break
    sleep 0.1
  done
  eval "$1=\$name"
}

lab_down() { [ -n "${NATLAB_KEEP:-}" ] || lab down "$1"; }

# Mapped address from an `ask` output line for a server.
mapped_for() { awk -v s="$2" '$1 == "MAPPED" && $2 == s {print $3}' <<<"$1"; }

# recv_probe LAB NODE LOCALPORT SRC -> "delivered"|"dropped": ask S1 from LOCALPORT
# (creates the mapping), then send unsolicited datagrams from SRC to the mapping.
recv_probe() {
  local l=$1 n=$2 lp=$3 src=$4 f=$TMP/recv.$RANDOM m
  lx "$l" "$n" "$UDPPROBE" recv "$lp" 1 "$S1:4000" >"$f" 2>&1 &
  local pid=$!
  for _ in $(seq 1 40); do grep -q '^READY' "$f" 2>/dev/null && break; sleep 0.05; done
  m=$(awk '$1 == "MAPPED" {print $3}' "$f")
  if [ -z "$m" ]; then
    wait $pid
    echo "nomapping"
    return
  fi
  lx "$l" inet "$UDPPROBE" send "$src" "$m" 3 >/dev/null 2>&1
  if wait $pid; then echo "delivered"; else echo "dropped"; fi
}

# ------------------------------------------------------------ behaviour checks
in_cgnat() { # 100.64.0.0/10 = 100.64.0.0 .. 100.127.255.255
  local o1 o2
  IFS=. read -r o1 o2 _ <<<"$1"
  [ "$o1" = 100 ] && [ "${o2:-0}" -ge 64 ] && [ "${o2:-0}" -le 127 ]
}

check_side() { # LAB SIDE(A|B) PROFILE
  local l=$1 X=$2 p=$3 x pub out m1 m2 m3 f1 f2
  x=$(echo "$X" | tr AB ab)
  pub=$(info "$l" "PUB_$X")
  out=$(lx "$l" "$x" "$UDPPROBE" ask 40000 "$S1:4000" "$S2:4000" "$S1:4001" 2>&1)
  m1=$(mapped_for "$out" "$S1:4000")
  m2=$(mapped_for "$out" "$S2:4000")
  m3=$(mapped_for "$out" "$S1:4001")
  echo "  [$p] mappings from $x:40000: S1:4000->${m1:-none} S2:4000->${m2:-none} S1:4001->${m3:-none}"

  if [ "$p" = blocked ]; then
    expect "blocked: UDP to non-allowed internet hosts dropped (no answer from $S1, $S2)" \
      test -z "$m1$m2$m3"
    out=$(lx "$l" "$x" "$UDPPROBE" ask 40010 "$RELAY:4000" 2>&1)
    m1=$(mapped_for "$out" "$RELAY:4000")
    expect "blocked: UDP to the allowed host $RELAY passes (mapped ${m1:-none})" \
      test "${m1%:*}" = "$pub"
    return
  fi

  expect "$p: all servers answered" test -n "$m1" -a -n "$m2" -a -n "$m3"
  case $p in
    none)
      expect "none: no translation (observed $m1 = own $pub:40000)" \
        test "$m1" = "$pub:40000" -a "$m2" = "$pub:40000" -a "$m3" = "$pub:40000" ;;
    eim|fullcone|double)
      expect "$p: endpoint-independent mapping (same $m1 toward 3 server endpoints)" \
        test "$m1" = "$m2" -a "$m1" = "$m3"
      expect "$p: external address is the public edge address $pub" test "${m1%:*}" = "$pub"
      if [ "$p" = double ]; then
        local cgw
        cgw=$(lab addr "$l" "r$X")
        expect "double: home router WAN $cgw is in CGNAT space 100.64.0.0/10; reflexive is the CGNAT router's $pub" \
          in_cgnat "$cgw"
      fi ;;
    symmetric)
      expect "symmetric: endpoint-dependent mapping ($m1, $m2, $m3 all different)" \
        test -n "$m1" -a "$m1" != "$m2" -a "$m1" != "$m3" -a "$m2" != "$m3"
      expect "symmetric: external address is $pub" test "${m1%:*}" = "$pub" ;;
  esac

  # Filtering: unsolicited datagrams to the mapping of (x:port -> S1:4000).
  f1=$(recv_probe "$l" "$x" 40001 "$S2:5000")   # other IP
  f2=$(recv_probe "$l" "$x" 40002 "$S1:5001")   # same IP, other port
  echo "  [$p] unsolicited from other IP: $f1; from same IP, other port: $f2"
  case $p in
    none)
      expect "none: unsolicited packets delivered (no NAT, no filter)" \
        test "$f1" = delivered -a "$f2" = delivered ;;
    fullcone)
      expect "fullcone: endpoint-independent filtering (other IP and other port delivered)" \
        test "$f1" = delivered -a "$f2" = delivered ;;
    eim|symmetric|double)
      expect "$p: address-and-port-dependent filtering (other IP and other port dropped)" \
        test "$f1" = dropped -a "$f2" = dropped ;;
  esac
}

echo "== NAT profile behaviour (RFC 4787)"
for pair in "eim symmetric" "fullcone double" "none blocked"; do
  set -- $pair
  lab_up L "$1" "$2" || continue
  echo "-- lab $L: A=$1 B=$2"
  check_side "$L" A "$1"
  check_side "$L" B "$2"
  lab_down "$L"
done

# --------------------------------------------------------------- punch matrix
# punch_once PA PB DELAY [INPUT_DROP] -> "both" | "A-only" | "B-only" | "none"
punch_once() {
  local pa=$1 pb=$2 d=$3 L ma mb st ra rb
  lab_up L "$pa" "$pb" "$d" "${4:-0}" || { echo "error"; return; }
  ma=$(lx "$L" a "$UDPPROBE" ask 50000 "$S1:4000" | awk '$1 == "MAPPED" {print $3}')
  mb=$(lx "$L" b "$UDPPROBE" ask 50000 "$S1:4000" | awk '$1 == "MAPPED" {print $3}')
  if [ -z "$ma" ] || [ -z "$mb" ]; then lab_down "$L"; echo "error"; return; fi
  # Coordinated start: both sides begin at the same wall-clock instant.
  st=$(($(date +%s%3N) + 300))
  lx "$L" a "$UDPPROBE" punch 50000 "$mb" 3 "$st" >"$TMP/punch.a" 2>&1 &
  local pida=$!
  lx "$L" b "$UDPPROBE" punch 50000 "$ma" 3 "$st" >"$TMP/punch.b" 2>&1 &
  local pidb=$!
  wait $pida; ra=$?
  wait $pidb; rb=$?
  lab_down "$L"
  if [ $ra = 0 ] && [ $rb = 0 ]; then echo both
  elif [ $ra = 0 ]; then echo A-only
  elif [ $rb = 0 ]; then echo B-only
  else echo none; fi
}

# Expected results, from repeated measurements (doc/nat-lab.md). "both" means
# each side received the other's packets; anything else is a failed punch.
# Only pairs that were deterministic in the measurements are asserted
# ("-" = measured and reported, not asserted).
# The last column is 0 ms with LAB_INPUT_DROP=1 (routers drop unsolicited
# inbound UDP addressed to themselves, like home-router firewalls).
#           pair                 0 ms    20 ms   0 ms+input-drop
MATRIX="
eim,eim                         -       both    both
eim,fullcone                    both    both    -
symmetric,symmetric             none    none    -
eim,symmetric                   none    none    -
none,symmetric                  both    both    -
fullcone,symmetric              both    both    -
double,eim                      -       both    both
double,double                   -       both    both
"

echo "== UDP hole-punch matrix (coordinated start, reflexive addresses from $S1, $TRIALS trial(s))"
while read -r pair e0 e20 efw; do
  [ -n "$pair" ] || continue
  pa=${pair%,*}; pb=${pair#*,}
  for variant in 0 20 fw; do
    case $variant in
      0) exp=$e0; d=0; fw=0; what="0 ms inbound delay per edge" ;;
      20) exp=$e20; d=20; fw=0; what="20 ms inbound delay per edge" ;;
      fw) exp=$efw; d=0; fw=1; what="0 ms, routers drop unsolicited inbound (LAB_INPUT_DROP=1)"
          [ "$exp" = - ] && continue ;;
    esac
    res=""
    for _ in $(seq 1 "$TRIALS"); do res="$res $(punch_once "$pa" "$pb" "$d" "$fw")"; done
    res=${res# }
    line="punch $pa <-> $pb, $what: $res"
    if [ "$exp" = - ]; then
      echo "INFO: $line (race, not asserted)"
    else
      all=1
      for r in $res; do [ "$r" = "$exp" ] || all=0; done
      if [ $all = 1 ]; then ok "$line (expected $exp)"; else bad "$line (expected $exp)"; fi
    fi
  done
done <<<"$MATRIX"

echo "runtime $(($(date +%s) - T_START)) s"
echo "$PASS passed, $FAIL failed"
[ $FAIL = 0 ]
