#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# House-style lint for lib/: no raw allocation or unsafe string calls (use
# qpeer__* helpers), no direct sendto/recvfrom outside the socket glue, no
# wall-clock time (use uv_hrtime or a 'now' passed in), and every file
# starts with an SPDX line. Usage: banned.sh SOURCE_ROOT
set -uo pipefail
cd "$1"
fail=0
pat='(^|[^_a-zA-Z0-9.>])(malloc|calloc|realloc|free|strdup|sprintf|strcpy|strcat|strtok|atoi|gettimeofday|time)\('
hits=$(grep -nE "$pat" $(find lib -name '*.[ch]') \
       | grep -vE '^\S+:[0-9]+:\s*(/\*|\*)' || true)
if [ -n "$hits" ]; then echo "FAIL: banned calls in lib/:"; echo "$hits"; fail=1; fi
io=$(grep -nE '(^|[^_a-zA-Z0-9])(sendto|recvfrom|sendmsg|recvmsg|sendmmsg|recvmmsg)\(' \
       $(find lib -name '*.c' ! -path 'lib/net/udp.c') || true)
if [ -n "$io" ]; then echo "FAIL: socket I/O outside lib/net/udp.c:"; echo "$io"; fail=1; fi
for f in $(find lib include tools test examples bench -name '*.[ch]'); do
  head -n 1 "$f" | grep -q 'SPDX-License-Identifier' || { echo "FAIL: no SPDX line: $f"; fail=1; }
done
if [ $fail = 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $fail
