#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main demo: a camera behind a home NAT streams video frames to a phone
# behind CGNAT + home NAT, in the NAT lab (test/nat/lab.sh, network
# namespaces on this machine only). The phone reaches the camera by ticket
# through a qpeer-relay on the lab's "internet" (198.51.100.1), then the
# two punch through both NATs and the connection migrates to the direct
# path while the frames keep flowing. At the end the phone prints its
# timeline (connected via relay at ..., direct path validated at ...,
# relay bytes since migration ...). The lab is always torn down.
# Without root or network namespaces it says so and runs the loopback demo
# (examples/demo.sh) instead.
# Usage: examples/lab_demo.sh BUILD_DIR [SECONDS]
# Environment: LAB_DELAY_MS (default 20; hole punching between two Linux
# NATs needs link delay, see doc/nat-lab.md), DEMO_CAMERA_NAT (default eim),
# DEMO_PHONE_NAT (default double), DEMO_PHONE_ARGS (extra phone options).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: lab_demo.sh BUILD_DIR [SECONDS]}" && pwd)
secs=${2:-15}
lab="$here/test/nat/lab.sh"
cam_nat=${DEMO_CAMERA_NAT:-eim}
phone_nat=${DEMO_PHONE_NAT:-double}
export LAB_DELAY_MS=${LAB_DELAY_MS:-20}
# Home routers drop unsolicited packets addressed to themselves; without
# that, Linux conntrack records the peer's first probe as an inbound flow
# and the NAT picks another port for our own packets (doc/nat-lab.md).
export LAB_INPUT_DROP=${LAB_INPUT_DROP:-1}
export UDPPROBE="$build/test/nat/udpprobe"
export LAB_TTL=$((secs + 120))

if ! why=$(bash "$lab" check 2>&1); then
  echo "== NAT lab unavailable: ${why#lab.sh: } =="
  echo "== running the loopback demo instead (examples/demo.sh) =="
  exec "$here/examples/demo.sh" "$build"
fi
for b in examples/camera examples/phone tools/relayd/qpeer-relay test/nat/udpprobe; do
  [ -x "$build/$b" ] || { echo "lab_demo: $build/$b missing (build first)" >&2; exit 1; }
done

name="qpdemo$$"
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  LAB_QUIET=1 bash "$lab" down "$name" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
L() { bash "$lab" "$@"; }

echo "== qpeer demo: camera behind '$cam_nat' NAT, phone behind '$phone_nat' NAT, ${LAB_DELAY_MS} ms per edge =="
LAB_QUIET=1 L up "$name" "$cam_nat" "$phone_nat" || { echo "lab_demo: lab.sh up failed" >&2; exit 1; }
echo "lab '$name': relay 198.51.100.1, camera $(L addr "$name" a) behind $(L addr "$name" rA), phone $(L addr "$name" b) behind $(L addr "$name" rB)$( [ "$phone_nat" = double ] && echo " and CGNAT $(L addr "$name" cgB)")"

# The relay: JWT auth with a secret of our own, a token minted for the
# camera, a target policy that allows the lab's "internet", metrics for
# the phone's "relay bytes since migration".
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
token=$("$build/tools/relayd/qpeer-relay" token --config "$work/relay.ini" \
  --scope bind,connect --ttl 600 --sub demo-camera) || { echo "lab_demo: cannot mint a token" >&2; exit 1; }
L exec "$name" relay timeout $((secs + 90)) "$build/tools/relayd/qpeer-relay" \
  --config "$work/relay.ini" --listen 198.51.100.1:4433 > /dev/null 2> "$work/relay.log" &
pids+=($!)
for _ in $(seq 200); do grep -q "ready" "$work/relay.log" 2>/dev/null && break; sleep 0.05; done
rpin=$(sed -n 's/.*relay peer ID (pin it in clients): \([a-z0-9]*\).*/\1/p' "$work/relay.log" | head -1)
if [ -z "$rpin" ]; then echo "lab_demo: qpeer-relay did not start:" >&2; cat "$work/relay.log" >&2; exit 1; fi
echo "relay: 198.51.100.1:4433, pin $rpin"

# The camera (side A) binds at the relay and writes its ticket.
L exec "$name" a timeout $((secs + 60)) "$build/examples/camera" \
  --key "$work/camera.pem" --relay 198.51.100.1:4433 --relay-pin "$rpin" \
  --relay-token "$token" --ticket-file "$work/ticket" --seconds "$secs" \
  2> "$work/camera.log" &
cpid=$!
pids+=($cpid)
for _ in $(seq 200); do [ -s "$work/ticket" ] && break; sleep 0.05; done
if [ ! -s "$work/ticket" ]; then echo "lab_demo: the camera printed no ticket:" >&2; cat "$work/camera.log" >&2; exit 1; fi
echo "camera ticket: $(cat "$work/ticket")"
echo "-- phone (side B) --"

# The phone (side B) connects by ticket and watches for $secs seconds.
L exec "$name" b timeout $((secs + 60)) "$build/examples/phone" \
  --ticket-file "$work/ticket" --metrics 198.51.100.1:9100 --expect "${DEMO_EXPECT:-any}" ${DEMO_PHONE_ARGS:-} \
  --timeout $((secs + 45)) 2> "$work/phone.err" | tee "$work/phone.out"
prc=${PIPESTATUS[0]}
wait "$cpid"; crc=$?
echo "-- camera --"
grep -E "^path:|connected|advertised|bound|acknowledged|left" "$work/camera.log" | sed 's/^/  /'
tail -n 1 "$work/camera.log" | grep -q "t=" && tail -n 1 "$work/camera.log" | sed 's/^/  /'
if [ "$prc" != 0 ] || [ "$crc" != 0 ]; then
  echo "-- phone stderr --"; cat "$work/phone.err"
  echo "-- camera log --"; cat "$work/camera.log"
  echo "== demo FAILED (phone $prc, camera $crc) =="
  exit 1
fi
if grep -q "^  stayed on the relay" "$work/phone.out"; then
  echo "== demo OK: every frame verified over the relay; the direct upgrade did not succeed (known gap, see README) =="
else
  echo "== demo OK: every frame verified; the connection moved from the relay to the direct path =="
fi
if [ -n "${QPEER_LOG:-}" ]; then
  echo "-- phone stderr --"; cat "$work/phone.err"
  echo "-- camera log --"; cat "$work/camera.log"
fi
