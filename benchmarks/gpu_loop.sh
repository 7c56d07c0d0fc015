#!/usr/bin/env bash
# A second device call (after benchmarks/gpu_check.sh): gemkit's real training loop at the
# paper's sizes for 100,000 steps with the whole step compiled and captured, fp32 and TF32.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
B="python3 benchmarks/train.py --device cuda --compile --cuda-graph --critic-modes bmm --threads 1"
L="--critics 10 --hidden 256 --steps 20 --rounds 1 --loop-steps 100000"
timeout 140 $B $L 2>&1 | grep -v -i warn | tee "$OUT/loop_paper_100k.txt"
timeout 140 $B $L --tf32 2>&1 | grep -v -i warn | tee "$OUT/loop_paper_100k_tf32.txt"
