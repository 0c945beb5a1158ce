#!/usr/bin/env bash
# The GPU checks of the RL jobs, as one script (run from the repository root on a GPU machine).
#
#   OUT=/tmp/device-out bash benchmarks/device_check.sh
#
# About 4 minutes on an H100 (figures in docs/rl.md, "On a GPU"). Needs torch with CUDA, numpy,
# pandas, pyarrow, click and tqdm (no lmfit: fit the store it leaves afterwards, anywhere).
# Writes into $OUT:
#   env.txt            GPU, driver, torch version
#   device_default.jsonl  benchmarks/rl_device.py at its defaults (10M and 50M, bf16): tokens/s, MFU
#   device_fp32.jsonl  the same for the 10M model in fp32
#   device_big.jsonl   10M and 50M with GPU-sized batches (1024 pretraining sequences, 256 prompts;
#                      2 timed steps)
#   run.log            the default `rlscale run` on the GPU (wall time, progress lines)
#   store.tgz          that run's store, to fit with
#                      `rlscale fit --store store --metric eval/mean@8 --x flops --r0 first`
set -u
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export RLSCALE_CACHE=${RLSCALE_CACHE:-/tmp/rlscale-cache}
PY=${PY:-python3}
{ nvidia-smi -L; nvidia-smi --query-gpu=driver_version,clocks.max.sm --format=csv;
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; } \
  2>&1 | tee "$OUT/env.txt"
timeout 90 $PY benchmarks/rl_device.py --steps 3 2>&1 | tee "$OUT/device_default.jsonl"
timeout 60 $PY benchmarks/rl_device.py --steps 3 --sizes 10M --precision fp32 2>&1 \
  | tee "$OUT/device_fp32.jsonl"
timeout 90 $PY benchmarks/rl_device.py --steps 2 --batch 1024 --prompts 256 2>&1 \
  | tee "$OUT/device_big.jsonl"
rm -rf /tmp/rlscale-device-store
{ time timeout 240 $PY -m rlscale run --store /tmp/rlscale-device-store --no-progress; } 2>&1 \
  | tee "$OUT/run.log"
tar czf "$OUT/store.tgz" -C /tmp rlscale-device-store
