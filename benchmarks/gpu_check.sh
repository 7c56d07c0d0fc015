#!/usr/bin/env bash
# Calls on a lent GPU machine (the device tool), timings in docs/performance.md ("On a GPU").
#   bash benchmarks/gpu_check.sh        the gpu-marked tests, then eager vs compiled vs CUDA
#                                       graphs in one run (paper and maze sizes), then the
#                                       real training loop for 50,000 steps
#   bash benchmarks/gpu_check.sh loop   the real training loop at the paper's sizes for
#                                       100,000 steps, compiled + graphs, fp32 then TF32
#   bash benchmarks/gpu_check.sh runs   batches of R = 1, 4, 16, 64 runs (RunBatch, one
#                                       graph) and R separate graphed runs on R CUDA streams,
#                                       against one run (eager, compiled + graph), maze and
#                                       paper sizes
# The machine has torch but not gymnasium: its wheels travel in .whl/ (git-ignored), made with
#   pip download --no-deps --only-binary=:all: gymnasium==1.4.0 farama-notifications==0.0.6 -d .whl
# Run from the repository root, there; results in $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
B="python3 benchmarks/train.py --device cuda --compile --cuda-graph --critic-modes bmm --threads 1"
if [ "${1:-check}" = runs ]; then
  R="python3 benchmarks/train.py --device cuda --critic-modes bmm --threads 1 --runs 1 4 16 64 --graph-streams"
  timeout 200 $R --compile --cuda-graph --critics 5 --hidden 128 --state-dim 4 --action-dim 2 \
    --steps 640 --rounds 2 2>&1 | grep -v -i warn | tee "$OUT/runs_maze.txt"
  timeout 200 $R --compile --cuda-graph --critics 10 --hidden 256 --steps 640 --rounds 2 \
    2>&1 | grep -v -i warn | tee "$OUT/runs_paper.txt"
  exit
fi
if [ "${1:-check}" = loop ]; then
  L="--critics 10 --hidden 256 --steps 20 --rounds 1 --loop-steps 100000"
  timeout 140 $B $L 2>&1 | grep -v -i warn | tee "$OUT/loop_paper_100k.txt"
  timeout 140 $B $L --tf32 2>&1 | grep -v -i warn | tee "$OUT/loop_paper_100k_tf32.txt"
  exit
fi
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv;
  python3 -c "import torch, platform; print(torch.__version__, torch.cuda.get_device_name(), platform.processor())";
  nproc; } 2>&1 | tee "$OUT/machine.txt"
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider -x \
  tests/test_train_cuda_graph.py tests/test_train_checkpoint.py 2>&1 | tee "$OUT/pytest.log"
timeout 170 $B --compile-modes default reduce-overhead --critics 10 --hidden 256 --steps 500 \
  --rounds 3 2>&1 | tee "$OUT/bench_paper.txt"
timeout 110 $B --critics 5 --hidden 128 --state-dim 6 --action-dim 2 --steps 500 --rounds 3 \
  2>&1 | tee "$OUT/bench_maze.txt"
timeout 160 $B --critics 10 --hidden 256 --steps 20 --rounds 1 --loop-steps 50000 \
  2>&1 | tee "$OUT/loop_paper.txt"
