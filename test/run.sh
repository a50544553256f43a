#!/usr/bin/env bash
# Runs the test binaries, TEST_JOBS at a time, prints each one's output in the
# order given (as soon as it and those before it are done), and closes with the
# summed "N passed, N failed" line. Exit status is non-zero if any test failed
# or any binary crashed (a crash counts as one failure, named).
#
#   TEST_JOBS=n                   binaries run at once (default 1)
#   TEST_WRAPPER="valgrind ..."   run each binary under a wrapper
#   TEST_FILTER=substring         run only matching test functions
set -u
jobs=${TEST_JOBS:-1}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: TEST_JOBS must be a positive number, not '$jobs'" >&2; exit 2; }
bins=("$@")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0 skipped=0 crashed=()

# One binary: its output in $dir/i.out, then "rc start end" in $dir/i.rc (written
# last, so its presence means the binary is done).
run_one() {
  local i=$1 bin=$2 start=$EPOCHREALTIME rc
  # shellcheck disable=SC2086
  ${TEST_WRAPPER:-} "$bin" >"$dir/$i.out" 2>&1
  rc=$?
  echo "$rc $start $EPOCHREALTIME" >"$dir/$i.rc.tmp" && mv "$dir/$i.rc.tmp" "$dir/$i.rc"
}

# Print and count binary i's result.
report_one() {
  local i=$1 name rc start end line p f s
  name=$(basename "${bins[$i]}")
  read -r rc start end <"$dir/$i.rc"
  echo "== $name"
  cat "$dir/$i.out"
  awk -v a="$start" -v b="$end" -v n="$name" 'BEGIN { printf "   (%s: %.1f s)\n", n, b - a }'
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$dir/$i.out" | tail -n 1)
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
  rm -f "$dir/$i.out"
}

# Print every finished result that has no unfinished one before it.
next=0
report_ready() {
  while [ "$next" -lt "${#bins[@]}" ] && [ -f "$dir/$next.rc" ]; do
    report_one "$next"
    next=$((next + 1))
  done
}

for i in "${!bins[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n
    report_ready
  done
  run_one "$i" "${bins[$i]}" &
done
wait
report_ready

echo
for c in "${crashed[@]+"${crashed[@]}"}"; do echo "CRASHED $c"; done
if [ "$skipped" -gt 0 ]; then
  echo "total: $passed passed, $failed failed, $skipped skipped"
else
  echo "total: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
