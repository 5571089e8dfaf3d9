#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# NAT lab: `qpeer netcheck` classifies every lab profile correctly. For each
# profile (none, eim, symmetric, fullcone, double, blocked) a lab is built
# with that profile on side A, coturn runs in the "internet" on
# 203.0.113.10 and .11 (RFC 5780: two IPs, ports 3478/3479), and
#   qpeer netcheck --json --stun 203.0.113.10:3478 --stun 203.0.113.11:3478
# runs inside peer A's namespace. Its JSON is checked for UDP, mapping,
# filtering, hairpinning, double NAT / CGNAT, the reflexive address and the
# per-server latency. With miniupnpd installed, one more "eim" lab runs it with
# --portmap against miniupnpd on the home router.
#
#   test_netcheck.sh PATH/TO/qpeer                (or QPEER_CLI=...)
#
# Exit 0 all passed, 1 something failed, 77 skipped (not root, no netns/nft,
# no coturn or python3). Env: NATLAB_KEEP=1 leaves the labs up.

set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$HERE/lab.sh
QPEER=${1:-${QPEER_CLI:-}}

if [ -z "$QPEER" ] || [ ! -x "$QPEER" ]; then
  echo "SKIP: qpeer binary not given (test_netcheck.sh PATH/TO/qpeer)"
  exit 77
fi
QPEER=$(cd "$(dirname "$QPEER")" && pwd)/$(basename "$QPEER")
export LAB_QUIET=1

msg=$(bash "$LAB" check 2>&1); rc=$?
if [ $rc != 0 ]; then
  echo "$msg"
  echo "SKIP: NAT lab unavailable"
  exit 77
fi
for t in turnserver python3; do
  if ! command -v $t >/dev/null 2>&1; then
    echo "SKIP: $t not installed (apt-get install coturn python3)"
    exit 77
  fi
done

PFX=qnc$$
TMP=$(mktemp -d /tmp/natlab-netcheck.XXXXXX)
LABS=()
PASS=0
FAIL=0
T_START=$(date +%s)

cleanup() {
  local l
  if [ -z "${NATLAB_KEEP:-}" ]; then
    for l in "${LABS[@]}"; do bash "$LAB" down "$l" >/dev/null 2>&1; done
  else
    echo "NATLAB_KEEP set: labs left up: ${LABS[*]}"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 1' INT TERM

ok() { PASS=$((PASS + 1)); echo "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }

# q FILE EXPR: evaluates a Python expression over the report (as r);
# prints the value ("True"/"False"/"None"/text).
q() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(eval(sys.argv[2], {"r": r}))
PY
}

# check FILE DESCRIPTION EXPR: PASS if EXPR is true.
check() {
  local f=$1 d=$2 e=$3 v
  v=$(q "$f" "$e" 2>&1)
  if [ "$v" = True ]; then ok "$d"; else bad "$d (got: $v; expr: $e)"; fi
}

# run PROFILE: builds the lab, runs netcheck in A, leaves the JSON in
# $TMP/PROFILE.json (and the text output in $TMP/PROFILE.txt).
run() {
  local p=$1 name=$PFX-$1 t0 t1
  LABS+=("$name")
  if ! bash "$LAB" up "$name" "$p" none >"$TMP/$p.lab" 2>&1; then
    bad "$p: lab up ($(tail -1 "$TMP/$p.lab"))"
    return 1
  fi
  if ! bash "$LAB" stun "$name" >>"$TMP/$p.lab" 2>&1; then
    bad "$p: coturn in the lab ($(tail -1 "$TMP/$p.lab"))"
    return 1
  fi
  t0=$(date +%s%N)
  bash "$LAB" exec "$name" a timeout 30 "$QPEER" netcheck --json \
    --stun 203.0.113.10:3478 --stun 203.0.113.11:3478 \
    >"$TMP/$p.json" 2>"$TMP/$p.err"
  rc=$?
  t1=$(date +%s%N)
  echo "INFO: $p: netcheck took $(( (t1 - t0) / 1000000 )) ms (exit $rc)"
  if [ $rc != 0 ] || ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \
       "$TMP/$p.json" 2>/dev/null; then
    bad "$p: netcheck --json exits 0 with valid JSON (exit $rc: $(head -c 300 "$TMP/$p.err"))"
    return 1
  fi
  ok "$p: netcheck --json exits 0 with valid JSON"
  # The human-readable form too (shorter deadline: it is only parsed).
  bash "$LAB" exec "$name" a timeout 30 "$QPEER" netcheck \
    --stun 203.0.113.10:3478 --stun 203.0.113.11:3478 >"$TMP/$p.txt" 2>&1
  q "$TMP/$p.json" '"INFO: %s: mapping=%s filtering=%s hairpin=%s double_nat=%s cgnat=%s reflexive=%s path=%s rtt_ms=%s" % (
      "'"$p"'", r["ipv4"]["mapping"], r["ipv4"]["filtering"], r["ipv4"]["hairpin"],
      r["double_nat"], r["cgnat"], r["ipv4"]["reflexive"],
      "->".join(h["addr"] or "*" for h in r["path"]),
      ",".join("%s" % s["rtt_ms"] for s in r["servers"]))'
  return 0
}

# Assertions common to the profiles where UDP works.
works() {
  local f=$TMP/$1.json p=$1
  check "$f" "$p: UDP works over IPv4" 'r["udp"] is True and r["ipv4"]["works"] is True'
  check "$f" "$p: IPv6 not tested (no IPv6 server)" 'r["ipv6"]["tested"] is False'
  check "$f" "$p: reflexive address is the side's public edge 203.0.113.2" \
    'r["ipv4"]["reflexive"].startswith("203.0.113.2:")'
  check "$f" "$p: both servers answered, with a latency" \
    'all(s["ok"] and s["rtt_ms"] is not None and s["rtt_ms"] < 1000 for s in r["servers"] if s["role"] == "server") and len([s for s in r["servers"] if s["role"] == "server"]) == 2'
  check "$f" "$p: RFC 5780 server found (OTHER-ADDRESS)" \
    'r["ipv4"]["rfc5780_server"] == "203.0.113.10:3478"'
  check "$f" "$p: not partial" 'r["partial"] is False'
}

expect_class() { # profile mapping filtering hairpin double cgnat
  local f=$TMP/$1.json p=$1
  check "$f" "$p: mapping $2" "r['ipv4']['mapping'] == '$2'"
  check "$f" "$p: filtering $3" "r['ipv4']['filtering'] == '$3'"
  check "$f" "$p: hairpinning $4" "r['ipv4']['hairpin'] is $4"
  check "$f" "$p: double NAT $5" "r['double_nat'] is $5"
  check "$f" "$p: CGNAT $6" "r['cgnat'] is $6"
}

for p in none eim symmetric fullcone double blocked; do
  if ! run "$p"; then
    bash "$LAB" down "$PFX-$p" >/dev/null 2>&1
    continue
  fi
  case $p in
    none)
      works none
      expect_class none none endpoint-independent True False False
      check "$TMP/none.json" "none: reflexive port is the local port" \
        'r["ipv4"]["reflexive"].split(":")[1] == r["local"].split(":")[1]'
      ;;
    eim)
      works eim
      expect_class eim endpoint-independent address-and-port-dependent False False False
      check "$TMP/eim.json" "eim: path is home router then server" \
        '[h["addr"] for h in r["path"]] == ["10.0.1.1", "203.0.113.10"]'
      if grep -q 'mapping *endpoint-independent (IPv4)' "$TMP/eim.txt" &&
         grep -q 'filtering *address-and-port-dependent' "$TMP/eim.txt"; then
        ok "eim: human-readable output says the same"
      else
        bad "eim: human-readable output ($(head -c 400 "$TMP/eim.txt"))"
      fi
      ;;
    symmetric)
      works symmetric
      expect_class symmetric address-and-port-dependent address-and-port-dependent False False False
      check "$TMP/symmetric.json" "symmetric: mapping varies by destination" \
        'r["mapping_varies_by_dest"] is True and len(set(s["reflexive"] for s in r["servers"] if s["ok"])) >= 2'
      ;;
    fullcone)
      works fullcone
      expect_class fullcone endpoint-independent endpoint-independent False False False
      ;;
    double)
      works double
      expect_class double endpoint-independent address-and-port-dependent False True True
      check "$TMP/double.json" "double: evidence is the CGNAT hop on the path" \
        '"path-cgnat" in r["double_nat_evidence"] and [h["addr"] for h in r["path"]][:2] == ["10.0.1.1", "100.64.1.1"]'
      ;;
    blocked)
      check "$TMP/blocked.json" "blocked: UDP does not work" \
        'r["udp"] is False and r["ipv4"]["tested"] is True and r["ipv4"]["works"] is False'
      check "$TMP/blocked.json" "blocked: every server timed out" \
        'all(s["error"] == "ETIMEDOUT" for s in r["servers"])'
      check "$TMP/blocked.json" "blocked: mapping, filtering, double NAT unknown" \
        'r["ipv4"]["mapping"] == "unknown" and r["ipv4"]["filtering"] == "unknown" and r["double_nat"] is None'
      check "$TMP/blocked.json" "blocked: gave up within the probe timeout" \
        'r["duration_ms"] < 6000'
      ;;
  esac
  [ -z "${NATLAB_KEEP:-}" ] && bash "$LAB" down "$PFX-$p" >/dev/null 2>&1
done

# Port mapping next to the survey (--portmap): miniupnpd (UPnP IGD, NAT-PMP,
# PCP) on side A's home router in an "eim" lab. The mapping is reported, is
# single-NAT evidence, and is deleted when netcheck exits.
if command -v miniupnpd >/dev/null 2>&1; then
  name=$PFX-pm
  LABS+=("$name")
  if bash "$LAB" up "$name" eim none >"$TMP/pm.lab" 2>&1 &&
     bash "$LAB" upnp "$name" A >>"$TMP/pm.lab" 2>&1; then
    bash "$LAB" exec "$name" a timeout 30 "$QPEER" netcheck --json --portmap \
      --stun 203.0.113.10:3478 --stun 203.0.113.11:3478 \
      >"$TMP/pm.json" 2>"$TMP/pm.err"
    rc=$?
    if [ $rc = 0 ] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/pm.json" 2>/dev/null; then
      q "$TMP/pm.json" '"INFO: eim+portmap: portmap=%s double_nat=%s" % (r["portmap"], r["double_nat"])'
      check "$TMP/pm.json" "eim+portmap: a gateway answered and mapped the port" \
        'r["portmap"]["tried"] and r["portmap"]["error"] is None and r["portmap"]["protocol"] in ("pcp", "nat-pmp", "upnp") and r["portmap"]["external"].startswith("203.0.113.2:")'
      check "$TMP/pm.json" "eim+portmap: the mapping is single-NAT evidence" \
        'r["double_nat"] is False and r["double_nat_evidence"] == []'
      check "$TMP/pm.json" "eim+portmap: classification unchanged" \
        'r["ipv4"]["mapping"] == "endpoint-independent" and r["ipv4"]["filtering"] == "address-and-port-dependent"'
      if bash "$LAB" exec "$name" rA nft list chain inet miniupnpd prerouting_miniupnpd 2>/dev/null | grep -q dnat; then
        bad "eim+portmap: mapping deleted when netcheck exits"
      else
        ok "eim+portmap: mapping deleted when netcheck exits"
      fi
    else
      bad "eim+portmap: netcheck --json --portmap exits 0 with valid JSON (exit $rc: $(head -c 300 "$TMP/pm.err"))"
    fi
  else
    bad "eim+portmap: lab with miniupnpd ($(tail -1 "$TMP/pm.lab"))"
  fi
  [ -z "${NATLAB_KEEP:-}" ] && bash "$LAB" down "$name" >/dev/null 2>&1
else
  echo "INFO: miniupnpd not installed: --portmap case not run"
fi

echo "INFO: $(( $(date +%s) - T_START )) s"
echo "$PASS passed, $FAIL failed"
[ $FAIL = 0 ]
