#!/usr/bin/env bash
# make dist: the kubectl plugin's release archive and its krew manifest.
#
#   test/dist.sh BUILD VERSION DIST_DIR MANIFEST
#
# DIST_DIR/kubectl-optipod_VERSION_linux_amd64.tar.gz holds BUILD's two binaries
# (stripped) and LICENSE, with fixed owners and times (SOURCE_DATE_EPOCH, else the
# last commit's) and gzip without a name or time, so a commit rebuilds the same bytes;
# beside it its .sha256. MANIFEST (plugins/optipod.yaml) gets the archive's sha256,
# and krew_check fails unless its version, uri, files and bin match the archive.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$1 version=$2 out=$3 manifest=$4
name="kubectl-optipod_${version}_linux_amd64"
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
rm -rf "${out:?}/$name"
mkdir -p "$out/$name"
for b in optipod kubectl-optipod; do
  strip --strip-unneeded -o "$out/$name/$b" "$build/$b"
done
install -m 0644 LICENSE "$out/$name/"
tar --sort=name --mtime=@"$epoch" --owner=0 --group=0 --numeric-owner -C "$out/$name" -cf - . |
  gzip -9n >"$out/$name.tar.gz"
(cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
"$build/tools/krew_check" --update "$manifest" "$out/$name.tar.gz" "$version"
echo "dist: $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1)), $manifest"
