#!/usr/bin/env bash
# make image-check: the OCI archive `make image` wrote is the image the Containerfile
# describes, and its binaries run inside it.
#
#   test/image_check.sh ARCHIVE REF ROOT      (OPTIPOD_BUILD: where image_config is built)
#
#  1. the image's config (user, entrypoint, labels, ...) equals the Containerfile's final stage,
#     and the archive is named REF, the chart's image;
#  2. its one layer holds exactly ROOT (what `make image-root` computed), and nothing but the
#     two binaries, shared libraries, the CA bundle, /etc/passwd and /etc/group (no shell);
#  3. the Containerfile's build stage, given only the files it COPYs, builds the same root;
#  4. inside the unpacked image, as its user (podman when it can run containers here, else
#     chroot): optipod --version, optipod --self-check, kubectl-optipod version;
#  5. the check can fail: without the CA bundle the self-check fails, without a library the
#     binary does not start.
set -euo pipefail
cd "$(dirname "$0")/.."
archive=$1 ref=$2 root=$3
build=${OPTIPOD_BUILD:-build/rel}
ic="$build/tools/image_config"
work=build/image/check
user=
fail() { echo "image-check: FAIL: $*" >&2; exit 1; }
[ -f "$archive" ] || fail "no $archive: run make image first"
[ -x "$ic" ] || fail "no $ic: run make $ic"
version=${ref##*:}
rm -rf "$work"
mkdir -p "$work/layout" "$work/rootfs"
tar -xf "$archive" -C "$work/layout"

# 1. config and name
"$ic" containerfile Containerfile >"$work/containerfile.txt"
"$ic" config "$work/layout" >"$work/image.txt"
diff -u "$work/containerfile.txt" "$work/image.txt" ||
  fail "the image's config differs from the Containerfile's final stage (above: - Containerfile, + image)"
name=$("$ic" ref "$work/layout")
[ "$name" = "$ref" ] || fail "the archive names $name, not $ref"
repo=$(sed -n 's/^  repository: *//p' charts/optipod/values.yaml)
[ "$repo:$version" = "$ref" ] || fail "the chart deploys $repo, the image is $ref"
user=$(sed -n 's/^user //p' "$work/image.txt")
echo "config: $(tr '\n' ';' <"$work/image.txt" | sed 's/;$//; s/;/; /g')"
echo "name:   $name"

# 2. the layer's files
"$ic" layers "$work/layout" >"$work/layers.txt"
while read -r layer; do
  tar -xzf "$layer" -C "$work/rootfs" --numeric-owner
done <"$work/layers.txt"
[ -z "$(find "$work/rootfs" -name '.wh.*')" ] || fail "the layers hold whiteouts"
listing() { (cd "$1" && find . -printf '%y %m %U:%G %s %p\n' | sort -k6); }
diff -u <(listing "$root") <(listing "$work/rootfs") ||
  fail "the image's files differ from $root (above: - image-root, + image)"
diff -r "$root" "$work/rootfs" >/dev/null || fail "a file's content differs from $root"
extra=$(cd "$work/rootfs" && find . -type f ! -name optipod ! -name kubectl-optipod \
  ! -path './etc/passwd' ! -path './etc/group' ! -path './etc/ssl/certs/ca-certificates.crt' \
  ! -regex '\./\(usr/\)?lib\(64\|/x86_64-linux-gnu\)?/[^/]*\.so[.0-9]*' -print)
[ -z "$extra" ] || fail "files besides the binaries, libraries, CA bundle and passwd/group: $extra"
[ -z "$(find "$work/rootfs" ! -type f ! -type d -print)" ] || fail "links or devices in the image"
for sh in bin/sh bin/bash usr/bin/sh bin/busybox; do
  [ ! -e "$work/rootfs/$sh" ] || fail "the image holds a shell: /$sh"
done
echo "files:  $(find "$work/rootfs" -type f | wc -l) ($(find "$work/rootfs" -name '*.so*' | wc -l) libraries), equal to $root; no shell"

# 3. the Containerfile's build stage, from exactly the files it COPYs
sources=$(awk 'toupper($1) == "FROM" { stage++ } stage == 1 && toupper($1) == "COPY" && $2 !~ /^--from/ {
                 for (i = 2; i < NF; i++) print $i }' Containerfile)
srcs=${sources//$'\n'/ }
mkdir -p "$work/context"
for s in $sources; do cp -a "${s%/}" "$work/context/"; done
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
(cd "$work/context" && make -j2 image-root SOURCE_DATE_EPOCH="$epoch") >"$work/context.log" 2>&1 ||
  { tail -20 "$work/context.log" >&2; fail "the Containerfile's build stage (make image-root from $srcs) fails"; }
diff -r "$work/context/build/image/rootfs" "$root" >"$work/context.diff" 2>&1 ||
  { cat "$work/context.diff" >&2
    fail "the Containerfile's build stage builds a different root (objects in $(dirname "$build") older than a Makefile change? make clean)"; }
echo "build:  the Containerfile's build stage, given $srcs, builds the same root"

# 4. run inside: podman where it can run a container here, else chroot
runner=chroot
if command -v podman >/dev/null 2>&1; then
  trap 'podman rmi -f "$ref" >/dev/null 2>&1 || true' EXIT
  if podman load -q -i "$archive" >"$work/podman.log" 2>&1 &&
    podman run --rm --network none "$ref" --version >>"$work/podman.log" 2>&1; then
    runner=podman
  else
    echo "podman cannot run containers here ($(grep -m1 -i error "$work/podman.log" || tail -1 "$work/podman.log")): using chroot"
  fi
fi
[ "$runner" = podman ] || [ "$(id -u)" = 0 ] || fail "neither podman nor chroot (needs root) can run the image"
run() { # run BINARY ARGS... inside the image as its user
  if [ "$runner" = podman ]; then
    podman run --rm --network none --entrypoint "$1" "$ref" "${@:2}"
  else
    chroot --userspec="$user" "$work/rootfs" "$@"
  fi
}
out=$(run /optipod --version) || fail "optipod --version inside the image: exit $?"
[ "$out" = "optipod $version" ] || fail "optipod --version inside the image: $out"
echo "run ($runner, user $user): /optipod --version: $out"
run /optipod --self-check >"$work/self-check.txt" 2>&1 ||
  { cat "$work/self-check.txt" >&2; fail "optipod --self-check fails inside the image"; }
sed 's/^/  /' "$work/self-check.txt"
out=$(run /kubectl-optipod version) || fail "kubectl-optipod version inside the image: exit $?"
[ "$out" = "kubectl-optipod $version" ] || fail "kubectl-optipod version inside the image: $out"
echo "run ($runner, user $user): /kubectl-optipod version: $out"

# 5. the same runs catch a broken image (in the unpacked copy, with chroot)
if [ "$(id -u)" = 0 ]; then
  runner=chroot
  ca="$work/rootfs/etc/ssl/certs/ca-certificates.crt"
  mv "$ca" "$ca.hidden"
  if run /optipod --self-check >"$work/broken.txt" 2>&1; then fail "self-check passes without the CA bundle"; fi
  grep -q "default CA bundle .*FAILED" "$work/broken.txt" || fail "self-check without the CA bundle: $(cat "$work/broken.txt")"
  mv "$ca.hidden" "$ca"
  lib=$(find "$work/rootfs" -name 'libyaml-0.so.*' | head -1)
  mv "$lib" "$lib.hidden"
  if run /optipod --version >"$work/broken.txt" 2>&1; then fail "optipod starts without libyaml"; fi
  grep -q "error while loading shared libraries" "$work/broken.txt" || fail "without libyaml: $(cat "$work/broken.txt")"
  mv "$lib.hidden" "$lib"
  echo "broken: without the CA bundle the self-check fails; without libyaml optipod does not start"
fi
echo "image-check: passed ($ref, $(du -h "$archive" | cut -f1))"
