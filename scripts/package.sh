#!/usr/bin/env bash
# package.sh: build slotguard's Debian packages (make package). The tree's tracked files are
# copied to a scratch directory with packaging/debian as debian/ (and the systemd, sysusers.d and
# tmpfiles.d files under the names debhelper looks for), then dpkg-buildpackage -b -us -uc builds
# postgresql-15-slotguard and slotguardd offline. The .deb files land in dist/ (or $SG_DIST).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIST=${SG_DIST:-$ROOT/dist}
WORK=${SG_PACKAGE_WORK:-$ROOT/build-deb}
VERSION=$(dpkg-parsechangelog -l "$ROOT/packaging/debian/changelog" -S Version)
SRC=$WORK/slotguard-$VERSION

rm -rf "$WORK" && mkdir -p "$SRC" "$DIST"
# Tracked files only (git ls-files also lists staged new files): no build trees, no clusters.
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp -P --parents -t "$SRC")
cp -r "$ROOT/packaging/debian" "$SRC/debian"
cp "$ROOT/packaging/systemd/slotguardd.service" "$SRC/debian/slotguardd.service"
cp "$ROOT/packaging/systemd/slotguardd.socket" "$SRC/debian/slotguardd.socket"
cp "$ROOT/packaging/sysusers.d/slotguard.conf" "$SRC/debian/slotguardd.sysusers"
cp "$ROOT/packaging/tmpfiles.d/slotguard.conf" "$SRC/debian/slotguardd.tmpfiles"

(cd "$SRC" && dpkg-buildpackage -b -us -uc -j"$(nproc)")
mv "$WORK"/*.deb "$DIST"/
ls -1 "$DIST"/*.deb
