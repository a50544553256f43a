#!/usr/bin/env bash
# Runs each test binary, prints its output, and closes with the summed
# "N passed, N failed" line. Exit status is non-zero if any test failed or any
# binary crashed (a crash counts as one failure, named).
#
#   TEST_WRAPPER="valgrind ..."   run each binary under a wrapper
#   TEST_FILTER=substring         run only matching test functions
set -u
passed=0 failed=0 skipped=0 crashed=()
for bin in "$@"; do
  name=$(basename "$bin")
  echo "== $name"
  out=$(mktemp)
  start=$EPOCHREALTIME
  # shellcheck disable=SC2086
  ${TEST_WRAPPER:-} "$bin" >"$out" 2>&1
  rc=$?
  cat "$out"
  awk -v a="$start" -v b="$EPOCHREALTIME" -v n="$name" 'BEGIN { printf "   (%s: %.1f s)\n", n, b - a }'
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  rm -f "$out"
  if [ -n "$line" ]; then
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p')
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${s:-0}))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      crashed+=("$name (exit $rc after its summary: leak or sanitizer report above)"); failed=$((failed + 1))
    fi
  else
    crashed+=("$name (exit $rc, no summary: crashed)"); failed=$((failed + 1))
  fi
done
echo
for c in "${crashed[@]+"${crashed[@]}"}"; do echo "CRASHED $c"; done
if [ "$skipped" -gt 0 ]; then
  echo "total: $passed passed, $failed failed, $skipped skipped"
else
  echo "total: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
