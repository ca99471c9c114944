#!/usr/bin/env bash
# The GPU checks in one run, for a short time on a machine with an NVIDIA GPU (about 8 minutes on one H100 or
# H200): the CUDA tests, the training-step benchmark, Open Neuromorphic's shape, the presets' runs in bfloat16
# and torchrun over NCCL. Each section writes one file into the results folder and a line into its summary.txt;
# a section that fails or runs out of its time is named there and the next one runs.
#
#   scripts/gpu_check.sh [RESULTS_DIR] [SECTION ...]     # RESULTS_DIR: $OUT if set, else gpu-results
#   scripts/gpu_check.sh gpu-results tests bench        # some sections only
#
# Sections, in order: env, tests, bench, onm, runs, ddp. DEVICE=cpu runs the same commands on the CPU (a dry run
# of this script, not a measurement). snnlab runs from this checkout (PYTHONPATH), not
# installed. Python packages the machine lacks (pydantic; snnTorch and SpikingJelly for the peer rows) are
# taken from .whl/ when it is there: scripts/gpu_wheels.sh fills it on a machine that can reach a package
# index. Data: the bundled Fashion-MNIST sample only, so that nothing is downloaded.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-results}}
shift $(($# > 0 ? 1 : 0))
sections=${*:-env tests bench onm runs ddp}
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
mkdir -p "$out"
summary="$out/summary.txt"

if compgen -G ".whl/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/snnlab-site \
        .whl/*.whl >"$out/wheels.txt" 2>&1 || echo "wheels: pip install failed (see wheels.txt)" | tee -a "$summary"
    export PYTHONPATH=/tmp/snnlab-site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

# section NAME SECONDS COMMAND...: run COMMAND with its output in $out/NAME.txt, at most SECONDS.
section() {
    local name=$1 limit=$2 started rc
    shift 2
    [[ " $sections " == *" $name "* ]] || return 0
    started=$(date +%s)
    echo "== $name: $*" | tee -a "$summary"
    timeout --kill-after=10 "$limit" "$@" >>"$out/$name.txt" 2>&1
    rc=$?
    local verdict=ok
    [ $rc -eq 0 ] || verdict="FAILED (exit $rc)"
    [ $rc -ne 124 ] && [ $rc -ne 137 ] || verdict="STOPPED after ${limit} s"
    echo "   $name: $verdict in $(($(date +%s) - started)) s" | tee -a "$summary"
}

section env 30 bash -c "nvidia-smi; $python - <<'EOF'
import torch
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())
if torch.cuda.is_available():
    print('gpu', torch.cuda.get_device_name(), torch.cuda.get_device_capability())
import triton
print('triton', triton.__version__)
from snnlab.engine.kernels import cuda
print('snnlab cuda path:', cuda.status())
for name in ('pydantic', 'snntorch', 'spikingjelly'):
    try:
        print(name, __import__(name).__version__)
    except ImportError as exc:
        print(name, 'missing:', exc)
EOF"

# The engine's tests with a GPU present (the CUDA kernel tests skip without one), then the CLI's CUDA tests.
section tests 120 "$python" -m pytest -q -x -n 8 -p no:cacheprovider -m "not slow" tests/engine tests/cli/test_cli.py

section bench 120 "$python" benchmarks/bench_train.py --device "$device" --repeats 20 \
    --only fc-direct,fc-rate,conv-direct,long-T500,floor,snnlab,snnlab-bf16,snntorch,spikingjelly,speed

section onm 100 "$python" benchmarks/bench_onm.py --device "$device" --sizes 512,4096,16384 --repeats 10

runs=$(mktemp -d)
section runs 60 bash -c "
    $python -m snnlab run snntorch-tutorial5 --set run.runs_dir=$runs --set data.dataset=bundled --set train.device=$device \
        --set train.precision=bfloat16 --set train.epochs=1 &&
    $python -m snnlab run fashion-csnn --set run.runs_dir=$runs --set data.dataset=bundled --set train.device=$device \
        --set train.precision=bfloat16 --set train.epochs=1"

section ddp 45 "$python" -m torch.distributed.run --standalone --nproc_per_node 1 -m snnlab run quickstart \
    --set run.runs_dir="$runs" --set train.device=$device --set train.epochs=1
rm -rf "$runs"
echo "results in $out" | tee -a "$summary"
