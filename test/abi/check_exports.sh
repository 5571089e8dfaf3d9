#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ABI check: the shared library exports only qpeer_* symbols and carries
# a SONAME. Usage: check_exports.sh LIBQPEER_SO
set -euo pipefail
lib=$1
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDRBW]$/ {print $3}' \
        | grep -v '^qpeer_' | grep -v '^QPEER_' || true)
n=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDRBW]$/' | grep -c ' qpeer_' || true)
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
fail=0
if [ -n "$bad" ]; then
  echo "FAIL: symbols outside qpeer_*:"; echo "$bad"; fail=1
fi
if [ "$n" -lt 40 ]; then
  echo "FAIL: only $n qpeer_ symbols exported"; fail=1
fi
case "$soname" in
  libqpeer.so.*) ;;
  *) echo "FAIL: SONAME is '$soname'"; fail=1 ;;
esac
echo "exports: $n qpeer_* symbols, SONAME $soname"
if [ $fail = 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $fail
