#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Developer entry point: one command for the demo, one for the tests.
#   tools/dev.sh demo      install dependencies if needed, build, run the demo
#   tools/dev.sh test      install dependencies if needed, build, run all tests
#   tools/dev.sh asan      the test suite again under ASan+UBSan (clang)
#   tools/dev.sh deps      only install the Debian packages
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

need_deps() {
  local missing=()
  while read -r p; do
    [ -z "$p" ] && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done < .ci/packages
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "missing Debian packages: ${missing[*]} (run as root to install)" >&2
      exit 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The relay and STUN daemons must not start as system services here.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
}

build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null
  fi
  # Quiet on success; the full output when the build fails.
  if ! ninja -C "$dir" > "$dir/build.log" 2>&1; then
    cat "$dir/build.log"
    return 1
  fi
}

summary() {
  # Prints the closing line "N passed, M failed" from meson's test log.
  python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(f"{p} passed, {f} failed, {s} skipped")
PY
}

run_tests() {
  local dir=$1; shift
  local rc=0
  meson test -C "$dir" --num-processes 2 --print-errorlogs "$@" || rc=$?
  summary "$dir"
  return $rc
}

case "${1:-}" in
  deps) need_deps ;;
  test)
    need_deps
    build build -Dwerror=true
    run_tests build
    ;;
  asan)
    need_deps
    CC=clang build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true
    QPEER_TEST_TIMEOUT_MULTIPLIER=3 run_tests build-asan --suite unit --suite loop --suite fuzz-replay --timeout-multiplier 3
    ;;
  demo)
    need_deps
    build build
    exec "$here/examples/lab_demo.sh" "$here/build"
    ;;
  *)
    sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
