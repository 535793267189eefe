#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `meson install` into a throwaway DESTDIR puts every file where its ecosystem looks:
# the CNI plugin in cni_bin_dir, the binaries in bindir, the unit in systemd_unit_dir
# pointing at the installed twilld, the manifests and the guide under datadir.
set -euo pipefail
build=${TWILL_BUILD_DIR:?}
command -v meson >/dev/null || { echo "FAIL: meson is missing (scripts/install-deps)"; exit 1; }
dest=$(mktemp -d /tmp/kb-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT

meson install -C "$build" --no-rebuild --quiet --destdir "$dest"
opt() { meson introspect "$build" --buildoptions | python3 -c "
import json, sys
print(next(o['value'] for o in json.load(sys.stdin) if o['name'] == '$1'))"; }
prefix=$(opt prefix)
bindir=$prefix/$(opt bindir)
datadir=$prefix/$(opt datadir)
unitdir=$(opt systemd_unit_dir)
cnibin=$(opt cni_bin_dir)

need() { [ -e "$dest$1" ] || { echo "FAIL: $1 not installed"; find "$dest" -type f; exit 1; }; echo "ok: $1"; }
need "$cnibin/twill"
[ -x "$dest$cnibin/twill" ] || { echo "FAIL: the plugin is not executable"; exit 1; }
need "$unitdir/twilld.service"
need "$datadir/twill/twill.default"
for f in twill-rbac.yaml twill.yaml twill-cleanup.yaml; do need "$datadir/twill/kubernetes/$f"; done
need "$datadir/doc/twill/deploy.md"
grep -qx "ExecStart=$bindir/twilld \$TWILLD_OPTS" "$dest$unitdir/twilld.service" \
  || { echo "FAIL: the unit does not start $bindir/twilld"; exit 1; }
echo "ok: unit starts $bindir/twilld"
# every front end is built and installed into bindir: one missing is a regression
for b in twilld twillctl twill-bench; do
  [ -x "$build/tools/$b" ] || { echo "FAIL: tools/$b is not built"; exit 1; }
  need "$bindir/$b"
  [ -x "$dest$bindir/$b" ] || { echo "FAIL: $bindir/$b is not executable"; exit 1; }
done
[ -z "$(find "$dest" -name 'kube-probe' -o -name 'test-*' -o -name 'wgctl-tool')" ] \
  || { echo "FAIL: a test program was installed"; exit 1; }
echo "ok: no test program installed"
echo "kube-install: PASS"
