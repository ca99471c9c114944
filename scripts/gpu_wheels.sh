#!/usr/bin/env bash
# Fill .whl/ (ignored by git) with the wheels scripts/gpu_check.sh installs on a GPU machine that cannot reach a
# package index: what snnlab needs beyond that machine's image (pydantic and its own needs), and snnTorch and
# SpikingJelly (with the two packages SpikingJelly imports that the image lacks) for the benchmarks' peer rows.
# Run it here, where pip reaches an index; the GPU machine's Python is 3.12 on x86-64 (see the device notes).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
mkdir -p .whl
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    "pydantic==2.14.4" "pydantic_core==2.50.5" annotated-types typing-inspection "typing-extensions>=4.16" \
    "snntorch==1.0.0" "spikingjelly==2.0.0" loguru SciencePlots
ls -l .whl
