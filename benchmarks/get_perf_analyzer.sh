#!/usr/bin/env bash
# Fetch perf_analyzer (the C++ reference load generator) into benchmarks/.tools/ (git-ignored).
#
# PyPI's `perf-analyzer` is an empty stub; the tritonclient==2.41.0 manylinux wheel still ships the
# real binary. It needs Debian's libb64-0d and libcudart.so.12 (from nvidia-cuda-runtime-cu12).
# Prints the LD_LIBRARY_PATH to use. Idempotent: re-running skips what is already there.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$HERE/.tools"
PIP="${PIP:-$HERE/../.venv/bin/pip}"
[ -x "$PIP" ] || PIP=pip
mkdir -p "$TOOLS/bin" "$TOOLS/lib" "$TOOLS/wheels"

if [ ! -x "$TOOLS/bin/perf_analyzer" ]; then
    "$PIP" download tritonclient==2.41.0 --no-deps --only-binary=:all: \
        --platform manylinux1_x86_64 --python-version 3.11 -d "$TOOLS/wheels" >&2
    wheel="$(ls "$TOOLS"/wheels/tritonclient-2.41.0-*x86_64*.whl | head -n1)"
    unzip -o -j "$wheel" "tritonclient-2.41.0.data/data/bin/perf_analyzer" -d "$TOOLS/bin" >&2
    chmod +x "$TOOLS/bin/perf_analyzer"
fi

if ! dpkg -s libb64-0d >/dev/null 2>&1; then
    apt-get install -y libb64-0d >&2 || { apt-get update >&2 && apt-get install -y libb64-0d >&2; }
fi

if [ ! -e "$TOOLS/lib/libcudart.so.12" ]; then
    "$PIP" download nvidia-cuda-runtime-cu12 --no-deps --only-binary=:all: \
        --platform manylinux2014_x86_64 --python-version 3.11 -d "$TOOLS/wheels" >&2
    wheel="$(ls "$TOOLS"/wheels/nvidia_cuda_runtime_cu12-*.whl | head -n1)"
    unzip -o -j "$wheel" "nvidia/cuda_runtime/lib/libcudart.so.12" -d "$TOOLS/lib" >&2
fi

export LD_LIBRARY_PATH="$TOOLS/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# perf_analyzer 2.41 rejects --help ("unrecognized option") but prints its usage and exits: check that
# the usage appears, which proves the binary and its shared libraries load.
usage="$("$TOOLS/bin/perf_analyzer" --help 2>&1 || true)"
if ! grep -q -- "--concurrency-range" <<<"$usage"; then
    echo "perf_analyzer does not run:" >&2
    echo "$usage" | head -n 5 >&2
    ldd "$TOOLS/bin/perf_analyzer" | grep "not found" >&2 || true
    exit 1
fi
echo "perf_analyzer: $TOOLS/bin/perf_analyzer" >&2
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
