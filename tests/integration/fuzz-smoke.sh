#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A short run of every libFuzzer target (FUZZ_SMOKE_SECONDS each, default 10): the
# parsers survive their seed corpus and a few hundred thousand mutations. Long runs:
# scripts/fuzz SECONDS. Skips when clang's libFuzzer runtime is missing.
set -euo pipefail
src=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
seconds=${FUZZ_SMOKE_SECONDS:-10}

probe=$(mktemp -d /tmp/ip-fuzz-probe-XXXXXX)
trap 'rm -rf "$probe"' EXIT
cat >"$probe/probe.c" <<'C'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { (void)data; (void)size; return 0; }
C
if ! command -v clang >/dev/null; then
  echo "SKIP: clang is not installed"
  exit 77
fi
if ! clang -fsanitize=fuzzer,address,undefined "$probe/probe.c" -o "$probe/probe" 2>"$probe/err"; then
  echo "SKIP: clang cannot link libFuzzer (libclang-rt-dev missing?): $(head -n 1 "$probe/err")"
  exit 77
fi

exec "$src/scripts/fuzz" "$seconds"
