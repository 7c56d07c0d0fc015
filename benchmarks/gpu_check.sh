#!/usr/bin/env bash
# One call on a lent GPU machine (the device tool): the gpu-marked tests, then the training
# timings of docs/performance.md ("On a GPU"), eager vs compiled vs CUDA graphs in one run.
# The machine has torch but not gymnasium: its wheels travel in .whl/ (git-ignored), made with
#   pip download --no-deps --only-binary=:all: gymnasium==1.4.0 farama-notifications==0.0.6 -d .whl
# Usage (from the repository root, there): bash benchmarks/gpu_check.sh   (results in $OUT)
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv;
  python3 -c "import torch, platform; print(torch.__version__, torch.cuda.get_device_name(), platform.processor())";
  nproc; } 2>&1 | tee "$OUT/machine.txt"
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider -x \
  tests/test_train_cuda_graph.py tests/test_train_checkpoint.py 2>&1 | tee "$OUT/pytest.log"
B="python3 benchmarks/train.py --device cuda --compile --cuda-graph --critic-modes bmm --threads 1"
timeout 170 $B --compile-modes default reduce-overhead --critics 10 --hidden 256 --steps 500 \
  --rounds 3 2>&1 | tee "$OUT/bench_paper.txt"
timeout 110 $B --critics 5 --hidden 128 --state-dim 6 --action-dim 2 --steps 500 --rounds 3 \
  2>&1 | tee "$OUT/bench_maze.txt"
timeout 160 $B --critics 10 --hidden 256 --steps 20 --rounds 1 --loop-steps 50000 \
  2>&1 | tee "$OUT/loop_paper.txt"
